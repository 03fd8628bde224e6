/**
 * `npm run bench`, Slurm: the floor a runtime's job array is measured against — a plain
 * `sbatch --array=0-99 --wrap true` on the one-node test cluster, from submission until every
 * element has ended — and the same array submitted and followed through the Slurm layer; then
 * flows with a foreach on Slurm through `metaflow run` (bench/slurm-runs.ts).
 */
import { SlurmCli, SlurmPoller, submitArray, submitJob } from "../src/launchers/slurm/index.js";
import { slurmAvailability, startSlurm, type TestSlurm } from "../test/helpers/slurm.js";
import { benchSlurmRuns } from "./slurm-runs.js";
import { median, type BenchRow } from "./common.js";

const ELEMENTS = 100;
const ROUNDS = 3;


/** Milliseconds from `sbatch` until squeue shows none of the job's elements pending or running. */
async function plainArray(cluster: TestSlurm): Promise<number> {
  const t0 = performance.now();
  const id = cluster
    .run("sbatch", ["--parsable", `--array=0-${ELEMENTS - 1}`, "--output=/dev/null", "--wrap=true"])
    .trim();
  const active = () =>
    cluster
      .run("squeue", [
        "--noheader",
        "--array",
        `--jobs=${id}`,
        "--states=PENDING,RUNNING,COMPLETING,CONFIGURING",
        "--format=%i",
      ])
      .trim();
  while (active() !== "") await new Promise((r) => setTimeout(r, 50));
  return performance.now() - t0;
}

/** The same array through submitArray and one SlurmPoller following every element. */
async function layerArray(cli: SlurmCli): Promise<number> {
  const poller = new SlurmPoller(cli, { intervalMs: 250 });
  const t0 = performance.now();
  const { elements } = await submitArray(cli, {
    labels: { flow: "BenchFlow", runId: "1", step: "noop" },
    command: ["true"],
    size: ELEMENTS,
  });
  const outcomes = await Promise.all(elements.map((id) => poller.follow(id)));
  const ms = performance.now() - t0;
  const failed = outcomes.filter((o) => o.error);
  if (failed.length > 0)
    throw new Error(`${failed.length} elements failed: ${failed[0]!.error!.message}`);
  return ms;
}

/** Reports the Slurm rows, or prints why they are skipped when Slurm is not installed. */
export async function benchSlurm(report: (row: BenchRow) => void): Promise<void> {
  let availability: ReturnType<typeof slurmAvailability>;
  try {
    availability = slurmAvailability({ ...process.env, CI: "" });
  } catch (err) {
    console.log(`      Slurm rows skipped: ${(err as Error).message}`);
    return;
  }
  if ("skip" in availability) {
    console.log(`      Slurm rows skipped: ${availability.skip}`);
    return;
  }
  const t0 = performance.now();
  const cluster = await startSlurm(availability.bins);
  const startup = performance.now() - t0;
  try {
    report({
      name: "Slurm: one-node test cluster up (munge, ctld, slurmd)",
      value: startup / 1000,
      unit: "s",
    });
    const cli = new SlurmCli({ env: cluster.env });
    const one: number[] = [];
    const poller = new SlurmPoller(cli, { intervalMs: 50 });
    for (let i = 0; i < ROUNDS; i++) {
      const s = performance.now();
      const { jobId } = await submitJob(cli, {
        labels: { flow: "BenchFlow", runId: "0", step: "one" },
        command: ["true"],
      });
      await poller.follow(jobId);
      one.push(performance.now() - s);
    }
    report({
      name: "Slurm floor: one `true` job, submit to end",
      value: median(one),
      unit: "ms",
      note: `median of ${ROUNDS}`,
    });

    const plain: number[] = [];
    for (let i = 0; i < ROUNDS; i++) plain.push(await plainArray(cluster));
    const floor = median(plain);
    report({
      name: `Slurm floor: sbatch --array=0-${ELEMENTS - 1} --wrap true, wall`,
      value: floor / 1000,
      unit: "s",
      note: `median of ${ROUNDS}; ${cluster.cpus} slots on ${(await import("node:os")).cpus().length} cores`,
    });
    report({
      name: "  per-task overhead (floor)",
      value: floor / ELEMENTS,
      unit: "ms",
      note: "the runtime's array job must stay within 3×",
    });

    const layer: number[] = [];
    for (let i = 0; i < ROUNDS; i++) layer.push(await layerArray(cli));
    const viaLayer = median(layer);
    report({
      name: `Slurm layer: submitArray + poller, ${ELEMENTS} × true, wall`,
      value: viaLayer / 1000,
      unit: "s",
      note: `${(viaLayer / floor).toFixed(2)}× the floor; polls every 250 ms`,
    });
    benchSlurmRuns(cluster, floor / ELEMENTS, report);
  } finally {
    await cluster.stop();
  }
}
