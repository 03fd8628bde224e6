/** `metaflow runs FLOW`: the recent runs of a flow, newest first, with status, duration and tags. */
import { Command } from "commander";
import { Flow, type Run } from "../client/objects.js";
import { UsageError } from "../errors.js";
import { addNamespaceOptions, applyNamespace, exitOnClosedPipe, formatDuration, formatTime, wholeNumber, type NamespaceFlags } from "./client-options.js";

interface RunsFlags extends NamespaceFlags {
  tag: string[];
  limit: string;
  json?: boolean;
}

const collect = (v: string, acc: string[]): string[] => [...acc, v];

/** Builds the `runs` command. */
export function runsCommand(): Command {
  const cmd = new Command("runs")
    .argument("<flow>", "the flow's name, e.g. HelloFlow")
    .description("list the recent runs of a flow: status, start, duration, user and tags")
    .option("--tag <tag>", "only runs with this tag (repeatable: runs with every one)", collect, [])
    .option("--limit <n>", "most runs to list", "20")
    .option("--json", "one JSON object per line instead of a table");
  return addNamespaceOptions(cmd).action(async (flowName: string, flags: RunsFlags) => {
    exitOnClosedPipe();
    applyNamespace(flags);
    if (/\.(m?[jt]s|cjs)$/.test(flowName)) {
      throw new UsageError(`'${flowName}' looks like a file; give the flow's class name, e.g. 'metaflow runs HelloFlow'`);
    }
    const limit = wholeNumber("--limit", flags.limit);
    const runs: Run[] = [];
    for await (const run of new Flow(flowName).runs(...flags.tag)) {
      if (runs.length >= limit) break;
      runs.push(run);
    }
    if (flags.json) {
      for (const r of runs) process.stdout.write(`${JSON.stringify(r)}\n`);
      return;
    }
    if (runs.length === 0) {
      process.stdout.write(`No runs of ${flowName}${flags.tag.length ? ` tagged ${flags.tag.join(", ")}` : ""} in this namespace (try --all-namespaces).\n`);
      return;
    }
    const now = Date.now();
    const rows = runs.map((r) => [
      r.id,
      r.status,
      formatTime(r.createdAt),
      r.finishedAt ? formatDuration(r.finishedAt.getTime() - r.createdAt.getTime()) : `${formatDuration(now - r.createdAt.getTime())}…`,
      r.user,
      r.userTags.join(", "),
    ]);
    const header = ["RUN", "STATUS", "STARTED", "DURATION", "USER", "TAGS"];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
    for (const row of [header, ...rows]) {
      process.stdout.write(`${row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd()}\n`);
    }
  });
}
