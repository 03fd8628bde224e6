/** Maps stack frames of a bundled flow back to the flow's own files and lines. */
import * as fs from "node:fs";
import { SourceMap } from "node:module";
import * as path from "node:path";

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
