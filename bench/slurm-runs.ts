/**
 * `npm run bench`, Slurm runs: a foreach of 100 no-op tasks with the foreach step on the one-node
 * test cluster — as one job array, and as one job per task (`METAFLOW_SLURM_ARRAYS=false`) —
 * beside the same flow run locally, each through `metaflow run` as a user types it. The per-task
 * overhead (wall minus a 3-step run's fixed cost, over 100) is compared with the plain
 * `sbatch --array` floor of the same cluster.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { TestSlurm } from "../test/helpers/slurm.js";
import { CLI, median, REPO, type BenchRow } from "./common.js";

const TASKS = 100;


/** Wall milliseconds of one `metaflow run`; throws with its output when it fails. */
function run(dir: string, env: Record<string, string>, args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [CLI, "run", ...args], {
    cwd: dir,
    env: { ...process.env, ...env },
    encoding: "utf8",
    maxBuffer: 1 << 28,
  });
  const ms = performance.now() - t0;
  if (r.status !== 0)
    throw new Error(`metaflow run ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
  return ms;
}

/** Reports the Slurm run rows, given the cluster and the plain array's per-task floor (ms). */
export function benchSlurmRuns(
  cluster: TestSlurm,
  floorPerTaskMs: number,
  report: (row: BenchRow) => void,
): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mf-bench-slurm-"));
  fs.mkdirSync(path.join(dir, ".metaflow"));
  const env = {
    ...cluster.env,
    METAFLOW_HOME: path.join(dir, "no-config"),
    METAFLOW_SLURM_POLL_INTERVAL: "0.5",
  };
  const flows = path.join(REPO, "bench", "flows");
  const n = ["--n", String(TASKS)];
  try {
    const fixed = median(
      [0, 1, 2].map(() => run(dir, env, [path.join(REPO, "examples", "helloworld.ts")])),
    );
    const local = median(
      [0, 1, 2].map(() => run(dir, env, [path.join(flows, "foreach.ts"), ...n])),
    );
    report({
      name: `foreach of ${TASKS} no-op tasks, all local, CLI wall`,
      value: local / 1000,
      unit: "s",
    });
    const array = median(
      [0, 1, 2].map(() => run(dir, env, [path.join(flows, "slurm_foreach.ts"), ...n])),
    );
    const perTask = (array - fixed) / TASKS;
    report({
      name: `foreach of ${TASKS} on Slurm, one job array, CLI wall`,
      value: array / 1000,
      unit: "s",
      note: "median of 3; start, join, end local; 0.5 s polls",
    });
    report({
      name: "  per-task overhead (array job)",
      value: perTask,
      unit: "ms",
      target: `≤ 3× floor (${(3 * floorPerTaskMs).toFixed(0)} ms)`,
      ok: perTask <= 3 * floorPerTaskMs,
      note: `${(perTask / floorPerTaskMs).toFixed(2)}× the plain sbatch --array floor of ${floorPerTaskMs.toFixed(1)} ms`,
    });
    const single = run(dir, { ...env, METAFLOW_SLURM_ARRAYS: "false" }, [
      path.join(flows, "slurm_foreach.ts"),
      ...n,
    ]);
    report({
      name: `foreach of ${TASKS} on Slurm, one job per task, CLI wall`,
      value: single / 1000,
      unit: "s",
      note: "METAFLOW_SLURM_ARRAYS=false; one run",
    });
    report({
      name: "  per-task overhead (a job per task)",
      value: (single - fixed) / TASKS,
      unit: "ms",
      note: `${((single - fixed) / TASKS / floorPerTaskMs).toFixed(2)}× the floor`,
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
