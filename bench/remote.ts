/**
 * `npm run bench`, team setup: the 100-task foreach on S3 (s3rver) + the metadata service
 * (PostgreSQL), against the same flow on local storage and metadata on this machine, with S3 +
 * local metadata in between to show which part the overhead comes from.
 */
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { remoteAvailability, startRemoteStack, type RemoteStack } from "../test/helpers/remote.js";
import { Project } from "../test/helpers/project.js";
import { median, type BenchRow } from "./common.js";

const FLOW = path.join(path.dirname(fileURLToPath(import.meta.url)), "flows", "foreach.ts");
/** Measured rounds; each figure is the median. */
const RUNS = 5;



/** Wall time in ms of one `metaflow run foreach.ts --n 100` in `work` with `env`. */
async function foreach100(work: Project, env: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  const r = await work.cli(["run", FLOW, "--n", "100"], { env, timeoutMs: 300_000 });
  const ms = performance.now() - t0;
  if (r.code !== 0) throw new Error(`metaflow run foreach.ts --n 100 failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  return ms;
}

/** Runs the foreach-100 benchmark on local, S3 + local metadata, and S3 + service; reports a row with the reason instead of throwing when a server cannot start. */
export async function benchRemote(report: (row: BenchRow) => void): Promise<void> {
  const name = "foreach of 100 tasks, S3 + service, CLI wall";
  let reason: string | undefined;
  try {
    const a = remoteAvailability();
    reason = a.s3 ?? a.postgres;
  } catch (err) {
    reason = (err as Error).message;
  }
  if (reason) {
    report({ name, value: NaN, unit: "s", note: `not measured: ${reason}` });
    return;
  }
  let stack: RemoteStack;
  try {
    stack = await startRemoteStack();
  } catch (err) {
    report({ name, value: NaN, unit: "s", note: `not measured: ${(err as Error).message.split("\n")[0]}` });
    return;
  }
  const work = new Project({ prefix: "mf-bench-remote-" });
  try {
    const cacheDir = path.join(work.dir, "s3cache");
    const setups = {
      local: { METAFLOW_HOME: path.join(work.dir, "no-config"), METAFLOW_DEFAULT_DATASTORE: "local", METAFLOW_DEFAULT_METADATA: "local" },
      s3: stack.env({ prefix: "bench", cacheDir, metadata: "local" }),
      service: stack.env({ prefix: "bench", cacheDir, metadata: "service" }),
    };
    const times: Record<keyof typeof setups, number[]> = { local: [], s3: [], service: [] };
    // One unmeasured run each (first code upload, first connections), then rounds that interleave
    // the setups, so a change in the machine's load shifts all three alike.
    for (let round = 0; round <= RUNS; round++) {
      for (const key of ["local", "s3", "service"] as const) {
        const ms = await foreach100(work, setups[key]);
        if (round > 0) times[key].push(ms);
      }
    }
    const local = median(times.local);
    const s3Only = median(times.s3);
    const remote = median(times.service);
    report({ name: "foreach of 100 tasks, local, CLI wall", value: local / 1000, unit: "s", note: `median of ${RUNS}` });
    report({ name: "foreach of 100 tasks, S3 + local metadata, CLI wall", value: s3Only / 1000, unit: "s", note: "s3rver on loopback" });
    report({ name, value: remote / 1000, unit: "s", note: "s3rver + PostgreSQL 15 service on loopback" });
    report({ name: "  overhead of S3 + service vs local", value: (remote - local) / 1000, unit: "s", note: `${((remote / local - 1) * 100).toFixed(0)}% slower` });
    report({ name: "  overhead per task (103 tasks)", value: (remote - local) / 103, unit: "ms" });
  } catch (err) {
    report({ name, value: NaN, unit: "s", note: `failed: ${(err as Error).message.split("\n")[0]}` });
  } finally {
    work.cleanup();
    await stack.stop();
  }
}
