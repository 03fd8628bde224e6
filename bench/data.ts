/**
 * `npm run bench`, data (issue 13): a 10-million-row table (x float64, n int32, cat one of three
 * strings) written in one step and read in the next, as an Arrow table and as an array of plain
 * objects through the default serializer: MB/s each way (MB = 2^20 bytes of the stored value) and
 * the peak RSS of the worker host, which ran both steps. Runs in-process through `runFlow`, like the
 * 100 MB Buffer rows, to read the tasks' own timings.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { ContentStore } from "../src/datastore/cas.js";
import { LocalStorage } from "../src/datastore/local.js";
import type { ArtifactRef } from "../src/datastore/types.js";
import * as library from "../src/index.js";
import { LocalMetadata } from "../src/metadata/local.js";
import { runFlow } from "../src/runtime/run.js";
import { median, type BenchRow } from "./common.js";

const FLOW = path.join(path.dirname(fileURLToPath(import.meta.url)), "flows", "table.ts");
const ROWS = 10_000_000;

/** Write and read figures of one run of the table flow. */
interface TableRun {
  readonly mb: number;
  readonly writeMs: number;
  readonly readMs: number;
  readonly peakRssMb: number;
}


async function tableRun(kind: "arrow" | "objects", seed: number, root: string): Promise<TableRun> {
  const s = await runFlow(
    { flowFile: FLOW, parameters: { kind, seed, rows: ROWS }, maxWorkers: 1, output: () => undefined },
    library as unknown as Record<string, unknown>,
  );
  if (s.status !== "completed") throw new Error(`the ${kind} table flow failed: ${s.error?.message}`);
  const start = s.stats.find((t) => t.step === "start")!.timings!;
  const read = s.stats.find((t) => t.step === "read")!.timings!;
  const table = (await stepRefs(root, "TableFlow", s.runId, "read")).find((a) => a.name === "table")!;
  return {
    mb: table.size / 2 ** 20,
    writeMs: start.persistMs,
    readMs: read.loadMs,
    // Recorded by the read step: the host's peak so far, and both steps ran in that one host.
    peakRssMb: (await stepArtifact(root, "TableFlow", s.runId, "read", "peakRssMb")) as number,
  };
}

async function stepRefs(root: string, flow: string, runId: string, step: string): Promise<readonly ArtifactRef[]> {
  const metadata = new LocalMetadata(root);
  const [taskId] = await metadata.listTasks(flow, runId, step);
  return (await metadata.getTask(flow, runId, step, taskId!))!.attempts.at(-1)!.end!.artifacts;
}

/** One artifact's value from the first task of a step of a run in the local datastore `root`. */
export async function stepArtifact(root: string, flow: string, runId: string, step: string, name: string): Promise<unknown> {
  const ref = (await stepRefs(root, flow, runId, step)).find((a) => a.name === name);
  if (!ref) throw new Error(`${flow}/${runId}/${step} has no artifact ${name}`);
  return new ContentStore(new LocalStorage(root)).getValue(ref);
}

/** Runs the table benchmarks in a temp project and reports each figure. */
export async function benchData(report: (row: BenchRow) => void): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mf-bench-data-"));
  const root = path.join(dir, ".metaflow");
  fs.mkdirSync(root);
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    const arrow: TableRun[] = [];
    for (const seed of [1, 2, 3]) {
      const r = await tableRun("arrow", seed, root);
      arrow.push(r);
      report({
        name: `10M-row Arrow table, run ${seed}: write / read`,
        value: r.mb / (r.writeMs / 1000),
        unit: "MB/s",
        note: `${r.mb.toFixed(0)} MB; write ${r.writeMs.toFixed(0)} ms, read ${r.readMs.toFixed(0)} ms = ${(r.mb / (r.readMs / 1000)).toFixed(0)} MB/s; peak RSS ${r.peakRssMb.toFixed(0)} MB`,
      });
    }
    const write = median(arrow.map((r) => r.mb / (r.writeMs / 1000)));
    const read = median(arrow.map((r) => r.mb / (r.readMs / 1000)));
    report({ name: "10M-row Arrow table: written in one step", value: write, unit: "MB/s", target: "≥ 500 MB/s", ok: write >= 500, note: "median of 3" });
    report({ name: "10M-row Arrow table: read in the next", value: read, unit: "MB/s", target: "≥ 1000 MB/s", ok: read >= 1000, note: "median of 3" });
    report({ name: "10M-row Arrow table: peak RSS of the host", value: median(arrow.map((r) => r.peakRssMb)), unit: "MB", note: "both steps, one host" });

    const objects = await tableRun("objects", 1, root);
    report({
      name: "same data as 10M plain objects: write",
      value: objects.mb / (objects.writeMs / 1000),
      unit: "MB/s",
      note: `${objects.mb.toFixed(0)} MB of v8 data in ${(objects.writeMs / 1000).toFixed(2)} s; Arrow: ${(arrow[0]!.writeMs / 1000).toFixed(2)} s`,
    });
    report({
      name: "same data as 10M plain objects: read",
      value: objects.mb / (objects.readMs / 1000),
      unit: "MB/s",
      note: `${(objects.readMs / 1000).toFixed(2)} s; Arrow: ${(arrow[0]!.readMs / 1000).toFixed(2)} s`,
    });
    report({ name: "same data as 10M plain objects: peak RSS", value: objects.peakRssMb, unit: "MB" });
  } finally {
    process.chdir(cwd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
