/** `metaflow dump PATHSPEC`: the artifacts of a task, or of every task of a step, pretty-printed. */
import { Command } from "commander";
import { inspect } from "node:util";
import type { DataArtifact } from "../client/artifact.js";
import { ArtifactNotFoundError, NotFinishedError } from "../client/errors.js";
import { Run, Task } from "../client/objects.js";
import { DatastoreError } from "../errors.js";
import { parsePathspec } from "../client/pathspec.js";
import { addNamespaceOptions, applyNamespace, exitOnClosedPipe, formatBytes, wholeNumber, type NamespaceFlags } from "./client-options.js";

interface DumpFlags extends NamespaceFlags {
  include?: string;
  private?: boolean;
  maxValueSize: string;
  maxLines: string;
}

/** Builds the `dump` command. */
export function dumpCommand(): Command {
  const cmd = new Command("dump")
    .argument("<pathspec>", "Flow/run/step (every task of the step) or Flow/run/step/task")
    .description("print the artifacts of a task or of every task of a step")
    .option("--include <names>", "only these artifacts, comma-separated")
    .option("--private", "show private artifacts (named _x) too")
    .option("--max-value-size <bytes>", "artifacts bigger than this are described, not loaded", String(1024 * 1024))
    .option("--max-lines <n>", "longest printed value, in lines; longer ones are cut", "40");
  return addNamespaceOptions(cmd).action(async (pathspec: string, flags: DumpFlags) => {
    exitOnClosedPipe();
    applyNamespace(flags);
    const maxSize = wholeNumber("--max-value-size", flags.maxValueSize);
    const maxLines = wholeNumber("--max-lines", flags.maxLines);
    const include = flags.include?.split(",").map((s) => s.trim()).filter(Boolean);
    const [flow, runId, stepName, taskId] = parsePathspec(pathspec, "step", "task") as [string, string, string, string | undefined];
    const tasks: Task[] = [];
    const unreadable: string[] = [];
    if (taskId !== undefined) {
      tasks.push(await Task.get(pathspec));
    } else {
      for await (const t of (await (await Run.get(`${flow}/${runId}`)).step(stepName)).tasks()) tasks.push(t);
    }
    for (const task of tasks) {
      const out = [`${task.pathspec} (${task.status}${task.index !== undefined ? `, foreach index ${task.index}` : ""}):`];
      const stored = await storedArtifacts(task);
      if (stored === undefined) {
        out.push(`  no artifacts: ${task.status === "running" ? "the task is still running" : `it failed (${task.exception?.name}: ${task.exception?.message})`}`);
        process.stdout.write(`${out.join("\n")}\n`);
        continue;
      }
      let artifacts = stored.sort((a, b) => a.name.localeCompare(b.name));
      if (task.artifactsFromFailedAttempt !== undefined) {
        const e = task.exception;
        out.push(`  artifacts of failed attempt ${task.artifactsFromFailedAttempt}${e ? ` (${e.name}: ${e.message})` : ""}, as assigned before it failed:`);
      }
      if (include) {
        const names = artifacts.map((a) => a.name);
        const missing = include.find((n) => !names.includes(n));
        if (missing !== undefined) throw new ArtifactNotFoundError(task.pathspec, missing, names.sort());
        artifacts = artifacts.filter((a) => include.includes(a.name));
      }
      const hidden = include || flags.private ? 0 : artifacts.filter((a) => a.isPrivate).length;
      if (hidden > 0) artifacts = artifacts.filter((a) => !a.isPrivate);
      for (const a of artifacts) {
        try {
          out.push(await describe(a, maxSize, maxLines));
        } catch (err) {
          // One missing or corrupt object must not hide the others: name it and go on.
          if (!(err instanceof DatastoreError)) throw err;
          out.push(`  ${a.name}: ${a.type}, ${formatBytes(a.size)} (cannot be read; see below)`);
          unreadable.push(`Artifact '${a.name}' of ${task.pathspec} cannot be read: ${err.message}`);
        }
      }
      if (hidden > 0) out.push(`  ${hidden} private artifact${hidden === 1 ? "" : "s"} hidden; --private shows them`);
      process.stdout.write(`${out.join("\n")}\n`);
    }
    for (const line of unreadable) process.stderr.write(`${line}\n`);
    if (unreadable.length > 0) process.exitCode = 1;
  });
}

/** The task's artifacts (private ones too), or undefined when it has none because it is running or failed. */
async function storedArtifacts(task: Task): Promise<DataArtifact[] | undefined> {
  try {
    return await task.artifacts({ private: true });
  } catch (err) {
    if (err instanceof NotFinishedError) return undefined;
    throw err;
  }
}

/**
 * One artifact: its value when small, else its type, size and hash; a value a serializer stored is
 * described by what the serializer recorded (an Arrow table: rows and columns), never loaded.
 */
async function describe(a: DataArtifact, maxSize: number, maxLines: number): Promise<string> {
  const head = `  ${a.name}: ${a.type}, ${formatBytes(a.size)}`;
  if (a.serializer !== undefined) return `${head}, serializer ${a.serializer}${summaryText(a.summary)}`;
  if (a.size > maxSize) return `${head} (sha256 ${a.hash.slice(0, 12)}…; not loaded, over --max-value-size)`;
  const text = inspect(await a.data(), {
    depth: 4,
    maxArrayLength: 20,
    maxStringLength: 400,
    breakLength: 100,
    colors: process.stdout.isTTY === true,
  });
  let lines = text.split("\n");
  if (lines.length > maxLines) lines = [...lines.slice(0, maxLines), `... (${lines.length - maxLines} more lines)`];
  return lines.length === 1 ? `${head} = ${lines[0]}` : `${head} =\n${lines.map((l) => `    ${l}`).join("\n")}`;
}

/** A serializer's summary on one line per entry, e.g. `rows: 3` and `columns: a: Float64, b: Utf8`. */
function summaryText(summary: Readonly<Record<string, unknown>> | undefined): string {
  if (summary === undefined) return "";
  const lines = Object.entries(summary).map(([k, v]) => {
    const text = Array.isArray(v) ? v.map(String).join(", ") : typeof v === "string" ? v : JSON.stringify(v);
    return `    ${k}: ${text}`;
  });
  return lines.length === 0 ? "" : `\n${lines.join("\n")}`;
}
