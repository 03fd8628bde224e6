/** Maps stack frames of a bundled flow back to the flow's own files and lines; how a task error reads. */
import * as fs from "node:fs";
import { SourceMap } from "node:module";
import * as path from "node:path";
import { toPlainError, type PlainError } from "../errors.js";

const maps = new Map<string, SourceMap | null>();

function mapFor(bundlePath: string): SourceMap | null {
  if (!maps.has(bundlePath)) {
    try {
      maps.set(bundlePath, new SourceMap(JSON.parse(fs.readFileSync(`${bundlePath}.map`, "utf8"))));
    } catch {
      maps.set(bundlePath, null);
    }
  }
  return maps.get(bundlePath) ?? null;
}

/**
 * Rewrites `bundle.js:L:C` frames to `src/file.ts:L:C` (relative to the working directory), drops
 * the runtime's own frames, and returns the first user frame as `location`.
 */
export function mapStack(stack: string, bundlePath: string): { stack: string; location?: string } {
  const map = mapFor(bundlePath);
  const base = path.dirname(bundlePath);
  let location: string | undefined;
  const lines: string[] = [];
  for (const line of stack.split("\n")) {
    if (!line.includes(bundlePath)) {
      // Frames of the runtime itself say nothing to the user.
      if (/^\s+at /.test(line) && /metaflow-ts|\(node:|at node:|\/dist\/|\/src\/runtime\//.test(line)) continue;
      lines.push(line);
      continue;
    }
    const mapped = line.replace(new RegExp(`${escape(bundlePath)}:(\\d+):(\\d+)`), (whole, l: string, c: string) => {
      const entry = map?.findEntry(Number(l) - 1, Number(c) - 1) as
        | { originalSource?: string; originalLine?: number; originalColumn?: number }
        | undefined;
      if (!entry?.originalSource) return whole;
      const abs = entry.originalSource.startsWith("file://")
        ? new URL(entry.originalSource).pathname
        : path.resolve(base, entry.originalSource);
      const rel = path.relative(process.cwd(), abs) || abs;
      const where = `${rel}:${(entry.originalLine ?? 0) + 1}:${(entry.originalColumn ?? 0) + 1}`;
      if (!location && !rel.includes("node_modules")) location = where;
      return where;
    });
    lines.push(mapped);
  }
  return location ? { stack: lines.join("\n"), location } : { stack: lines.join("\n") };
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Anything a task threw, as plain data with its stack mapped to the flow's sources. */
export function mapError(err: unknown, bundlePath: string): PlainError {
  const plain = toPlainError(err);
  if (plain.stack) {
    const mapped = mapStack(plain.stack, bundlePath);
    plain.stack = mapped.stack;
    if (mapped.location) plain.location = mapped.location;
  }
  return plain;
}

/** The lines a failed task adds to its stderr log and the console. */
export function formatTaskError(error: PlainError): string[] {
  const lines = [`${error.name}: ${error.message}`];
  if (error.location) lines.push(`    at ${error.location}`);
  if (error.stack) {
    const frames = error.stack.split("\n").filter((l) => /^\s+at /.test(l));
    for (const f of frames.slice(0, 8)) if (!error.location || !f.includes(error.location)) lines.push(f);
  }
  return lines;
}
