/** What the read-only commands (logs, dump, runs, tag) share: the namespace flags and formatting. */
import type { Command } from "commander";
import { namespace } from "../client/namespace.js";
import { UsageError } from "../errors.js";

/** Flags that pick the namespace a command reads in. */
export interface NamespaceFlags {
  namespace?: string;
  allNamespaces?: boolean;
}

/** Adds `--namespace <tag>` and `-A, --all-namespaces`. */
export function addNamespaceOptions(cmd: Command): Command {
  return cmd
    .option("--namespace <tag>", "read runs tagged <tag> (default: user:<you>); an empty string means every run")
    .option("-A, --all-namespaces", "read every user's runs (the same as --namespace '')");
}

/** Switches the client to the namespace the flags ask for. */
export function applyNamespace(flags: NamespaceFlags): void {
  if (flags.allNamespaces || flags.namespace === "") namespace(null);
  else if (flags.namespace !== undefined) namespace(flags.namespace);
}

/** Parses a whole-number flag. */
export function wholeNumber(flag: string, v: string): number {
  const n = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(n)) throw new UsageError(`${flag} expects a whole number, got ${JSON.stringify(v)}`);
  return n;
}

/** A duration for people: `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

/** A byte count for people: `512 B`, `3.2 KB`, `100.0 MB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** A local date and time, `2024-05-01 14:03:22`. */
export function formatTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Ends quietly when the reader of stdout goes away (`metaflow logs ... | head`). */
export function exitOnClosedPipe(): void {
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(0);
    throw err;
  });
}
