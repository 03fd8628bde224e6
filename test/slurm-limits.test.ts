/**
 * Jobs that Slurm stops at a limit, on a real one-node cluster of this file's own (it runs beside
 * slurm-jobs.test.ts, each file with its cluster): a time limit (TIMEOUT) and a memory limit. The
 * test cluster has no cgroups, so Slurm enforces memory by sampling (jobacct_gather/linux with
 * OverMemoryKill): it kills the job with SIGKILL and reports it FAILED, and slurmstepd writes
 * "exceeded memory limit" into the job's stderr, which is what tells the two apart.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import {
  outputFile,
  SlurmCli,
  SlurmOutOfMemoryError,
  SlurmPoller,
  SlurmSignalError,
  SlurmTimeoutError,
  submitJob,
  type JobLabels,
} from "../src/launchers/slurm/index.js";
import { loadConfig, parseSlurmOptions, withSlurmDefaults } from "../src/config/index.js";
import { slurmAvailability, startSlurm, type TestSlurm } from "./helpers/slurm.js";

const availability = slurmAvailability();
const labels = (runId: string): JobLabels => ({ flow: "SlurmLimitsFlow", runId, step: "train" });

/** Grows its resident memory by 20 MiB every 50 ms, up to 3 GiB, filling each buffer so the pages are real. */
const MEMORY_HOG = `const keep = []; const t = setInterval(() => { keep.push(Buffer.alloc(20 << 20, 1)); if (keep.length > 150) clearInterval(t); }, 50);`;

// The tests run at once: each waits on its own job, and the time limit alone takes a minute.
void describe(
  "Slurm limits on a real cluster",
  { skip: "skip" in availability ? availability.skip : false, concurrency: true },
  () => {
    let cluster: TestSlurm;
    let cli: SlurmCli;
    let poller: SlurmPoller;

    before(async () => {
      if (!("bins" in availability)) return;
      cluster = await startSlurm(availability.bins);
      cli = new SlurmCli({ env: cluster.env });
      poller = new SlurmPoller(cli, { intervalMs: 500 });
    });

    after(async () => {
      poller?.close();
      await cluster?.stop();
    });

    void it("reports a job over its time limit as TIMEOUT, naming the job and the limit", async () => {
      // Slurm counts time limits in whole minutes and checks them every 30 s: this takes 60-90 s.
      const settings = loadConfig({ METAFLOW_SLURM_TIME: "1" }, cluster.dir).slurm;
      const options = withSlurmDefaults(parseSlurmOptions({}, "code"), settings);
      assert.equal(options.time?.seconds, 60);
      const job = await submitJob(cli, { labels: labels("1"), command: ["sleep", "600"], options });
      const outcome = await poller.follow(job.jobId);
      assert.ok(
        outcome.error instanceof SlurmTimeoutError,
        `${outcome.state?.state}: ${outcome.error?.message}`,
      );
      assert.equal(outcome.state?.state, "TIMEOUT");
      assert.match(
        outcome.error.message,
        new RegExp(`Slurm job ${job.jobId} was stopped at its time limit \\(1:00\\) \\(TIMEOUT\\)`),
      );
      assert.match(
        outcome.error.message,
        /@slurm\(\{ time: "HH:MM:SS" \}\) or METAFLOW_SLURM_TIME/,
      );
    });

    void it("reports a job over its memory request as out of memory, from Slurm's own verdict", async () => {
      const stderr = path.join(cluster.dir, "oom-%j.err");
      const job = await submitJob(cli, {
        labels: labels("2"),
        command: [process.execPath, "-e", MEMORY_HOG],
        resources: { memoryMb: 200 },
        stderr,
      });
      const outcome = await poller.follow(job.jobId, {
        stderrFile: outputFile(stderr, job.jobId),
        memoryMb: 200,
      });
      assert.equal(outcome.state?.state, "FAILED");
      assert.equal(outcome.state?.signal, 9);
      assert.ok(outcome.error instanceof SlurmOutOfMemoryError, outcome.error?.message);
      assert.match(
        outcome.error.message,
        new RegExp(
          `Slurm job ${job.jobId} ran out of memory \\(FAILED: slurmstepd saw \\d+ MiB in use, over the limit of 200 MiB, and killed it\\)`,
        ),
      );
      assert.match(outcome.error.message, /@resources\(\{ memory: MiB \}\)/);
    });

    void it("without the job's stderr, a SIGKILL names the signal and points at the memory request", async () => {
      const job = await submitJob(cli, {
        labels: labels("3"),
        command: [process.execPath, "-e", MEMORY_HOG],
        resources: { memoryMb: 200 },
      });
      const outcome = await poller.follow(job.jobId, { memoryMb: 200 });
      assert.ok(outcome.error instanceof SlurmSignalError, outcome.error?.message);
      assert.equal(outcome.error.signal, 9);
      assert.match(
        outcome.error.message,
        new RegExp(`Slurm job ${job.jobId} FAILED: it was killed by signal 9 \\(SIGKILL\\)`),
      );
      assert.match(outcome.error.message, /more than its memory request \(200 MiB\)/);
    });

    void it("leaves a job within its memory request alone", async () => {
      const job = await submitJob(cli, {
        labels: labels("4"),
        command: [
          process.execPath,
          "-e",
          "const b = Buffer.alloc(50 << 20, 1); setTimeout(() => console.log(b.length), 1500);",
        ],
        resources: { memoryMb: 400 },
      });
      const outcome = await poller.follow(job.jobId, { memoryMb: 400 });
      assert.equal(outcome.error, undefined, outcome.error?.message);
      assert.equal(outcome.state?.state, "COMPLETED");
    });
  },
);

void describe("the test cluster helper", () => {
  void it(
    "stops every daemon and job process of a cluster and removes its files",
    { skip: "skip" in availability ? availability.skip : false },
    async () => {
      if (!("bins" in availability)) return;
      const c = await startSlurm(availability.bins);
      const conf = c.env.SLURM_CONF!;
      const job = c.run("sbatch", ["--parsable", "--output=/dev/null", "--wrap=sleep 300"]).trim();
      const running = () => c.run("squeue", ["--noheader", "--format=%T", `--jobs=${job}`]).trim();
      while (running() !== "RUNNING") await new Promise((r) => setTimeout(r, 100));
      assert.ok(processesOf(conf).length >= 4, "munged, slurmctld, slurmd, slurmstepd and the job");
      await c.stop();
      assert.deepEqual(processesOf(conf), []);
      assert.ok(!fs.existsSync(c.dir));
    },
  );
});

/** Processes whose environment names this cluster's slurm.conf (munged's does not: it is found by its arguments). */
function processesOf(conf: string): string[] {
  const found: string[] = [];
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const environ = fs.readFileSync(`/proc/${pid}/environ`, "utf8");
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (environ.includes(`SLURM_CONF=${conf}\0`) || cmdline.includes(path.dirname(conf)))
        found.push(`${pid} ${cmdline.replace(/\0/g, " ")}`);
    } catch {
      // ended meanwhile
    }
  }
  return found;
}
