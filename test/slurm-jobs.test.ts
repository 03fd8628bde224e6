/**
 * The Slurm layer against a real one-node Slurm 22.05 cluster started by this file: a job and an
 * array of 50 each submitted with one sbatch, states followed with one squeue per poll, exit codes,
 * cancel, stuck PENDING requests, listing and killing a run's jobs, and bad requests refused.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import {
  ARRAY_INDEX,
  cancelJobs,
  killJobs,
  listJobs,
  SlurmCancelledError,
  SlurmCli,
  SlurmExitCodeError,
  SlurmPoller,
  SlurmStuckPendingError,
  SlurmSubmitError,
  SlurmUnavailableError,
  submitArray,
  submitJob,
  type CommandResult,
  type JobLabels,
  type JobState,
} from "../src/launchers/slurm/index.js";
import { parseSlurmOptions, SlurmOptionError } from "../src/config/index.js";
import { alive } from "./helpers/project.js";
import { slurmAvailability, startSlurm, type TestSlurm } from "./helpers/slurm.js";

/** A SlurmCli that records every command it runs, to count sbatch and squeue calls. */
class RecordingCli extends SlurmCli {
  readonly calls: { tool: string; args: readonly string[] }[] = [];
  override run(tool: string, args: readonly string[], input?: string): Promise<CommandResult> {
    this.calls.push({ tool, args });
    return super.run(tool, args, input);
  }
  count(tool: string): number {
    return this.calls.filter((c) => c.tool === tool).length;
  }
}

const availability = slurmAvailability();
const labels = (runId: string, step = "train"): JobLabels => ({
  flow: "SlurmTestFlow",
  runId,
  step,
});

void describe(
  "Slurm jobs on a real cluster",
  { skip: "skip" in availability ? availability.skip : false },
  () => {
    let cluster: TestSlurm;
    let cli: RecordingCli;
    let poller: SlurmPoller;
    let work: string;

    before(async () => {
      if (!("bins" in availability)) return;
      cluster = await startSlurm(availability.bins);
      cli = new RecordingCli({ env: cluster.env });
      poller = new SlurmPoller(cli, { intervalMs: 200, stuckAfterMs: 1500 });
      work = fs.mkdtempSync(path.join(os.tmpdir(), "mf-slurm-work-"));
    });

    after(async () => {
      poller?.close();
      await cluster?.stop();
      if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    void it("runs one job with its environment, setup, resources and labels, and reports COMPLETED", async () => {
      const tricky = `it's "quoted" $HOME \\ and ;`;
      const job = await submitJob(cli, {
        labels: { ...labels("101"), taskId: "7", attempt: 0 },
        command: [
          "sh",
          "-c",
          'printf "%s|%s|%s" "$GREETING" "$FROM_SETUP" "$SLURM_JOB_NAME" > job.out',
        ],
        env: { GREETING: tricky },
        workdir: work,
        resources: { cpu: 2, memoryMb: 256 },
        options: {
          time: { text: "10:00", seconds: 600 },
          setup: "FROM_SETUP=yes; export FROM_SETUP",
        },
      });
      assert.match(job.jobId, /^\d+$/);
      const outcome = await poller.follow(job.jobId);
      assert.equal(outcome.error, undefined);
      assert.equal(outcome.state?.state, "COMPLETED");
      assert.equal(outcome.state?.nodes, "n1");
      assert.equal(
        fs.readFileSync(path.join(work, "job.out"), "utf8"),
        `${tricky}|yes|metaflow-ts.SlurmTestFlow.101.train`,
      );
      const shown = cluster.run("scontrol", ["--oneliner", "show", "job", job.jobId]);
      assert.match(shown, /NumCPUs=2 /);
      assert.match(shown, /MinMemoryNode=256M /);
      assert.match(shown, /TimeLimit=00:10:00 /);
      assert.match(
        shown,
        /Comment=metaflow-ts flow=SlurmTestFlow run=101 step=train task=7 attempt=0/,
      );
    });

    void it("submits a foreach of 50 as one job array (one sbatch) and follows it with one squeue per poll", async () => {
      const sbatchBefore = cli.count("sbatch");
      const squeueBefore = cli.count("squeue");
      const queriesBefore = poller.queries;
      const array = await submitArray(cli, {
        labels: labels("102"),
        command: ["sh", "-c", 'echo "element $0 of $SLURM_ARRAY_JOB_ID" > "out-$0"', ARRAY_INDEX],
        workdir: work,
        size: 50,
        maxConcurrent: 10,
      });
      assert.equal(cli.count("sbatch") - sbatchBefore, 1);
      assert.ok(cli.calls.at(-1)!.args.includes("--array=0-49%10"));
      assert.equal(array.elements.length, 50);
      assert.deepEqual(array.elements.slice(0, 2), [`${array.jobId}_0`, `${array.jobId}_1`]);
      const outcomes = await Promise.all(array.elements.map((id) => poller.follow(id)));
      assert.deepEqual(
        outcomes.filter((o) => o.error || o.state?.state !== "COMPLETED").map((o) => o.id),
        [],
      );
      for (let i = 0; i < 50; i++) {
        assert.equal(
          fs.readFileSync(path.join(work, `out-${i}`), "utf8"),
          `element ${i} of ${array.jobId}\n`,
        );
      }
      // Fifty jobs followed at once cost one squeue per round, not one per job.
      const rounds = poller.queries - queriesBefore;
      assert.ok(rounds >= 1);
      assert.equal(cli.count("squeue") - squeueBefore, rounds);
    });

    void it("follows a job's states as they change: PENDING or RUNNING, then COMPLETED", async () => {
      const job = await submitJob(cli, { labels: labels("103"), command: ["sleep", "1"] });
      const seen: JobState[] = [];
      const outcome = await poller.follow(job.jobId, { onUpdate: (s) => seen.push(s) });
      assert.equal(outcome.error, undefined);
      const names = seen.map((s) => s.state);
      assert.ok(names.includes("RUNNING"), `states seen: ${names.join(", ")}`);
      assert.equal(names.at(-1), "COMPLETED");
      assert.ok(names.indexOf("RUNNING") < names.indexOf("COMPLETED"));
      assert.deepEqual(seen.map((s) => s.phase).at(-1), "finished");
    });

    void it("reports a non-zero exit with the job id, FAILED and the exit code", async () => {
      const job = await submitJob(cli, { labels: labels("104"), command: ["sh", "-c", "exit 3"] });
      const outcome = await poller.follow(job.jobId);
      assert.ok(outcome.error instanceof SlurmExitCodeError);
      assert.equal(outcome.error.exitCode, 3);
      assert.equal(outcome.error.state, "FAILED");
      assert.match(
        outcome.error.message,
        new RegExp(`Slurm job ${job.jobId} FAILED: its command exited with code 3`),
      );
      assert.match(outcome.error.message, /metaflow logs/);
    });

    void it("cancels a running job: it reports CANCELLED and its process is gone", async () => {
      const pidFile = path.join(work, "cancel.pid");
      const job = await submitJob(cli, {
        labels: labels("105"),
        command: ["sh", "-c", `echo $$ > ${pidFile}; exec sleep 300`],
      });
      let cancelled: Promise<void> | undefined;
      const outcome = await poller.follow(job.jobId, {
        onUpdate: (s) => {
          if (s.state === "RUNNING") cancelled ??= cancelJobs(cli, [job.jobId]);
        },
      });
      await cancelled;
      assert.ok(outcome.error instanceof SlurmCancelledError);
      assert.match(outcome.error.message, new RegExp(`Slurm job ${job.jobId} was CANCELLED`));
      const pid = Number(fs.readFileSync(pidFile, "utf8"));
      await until(() => !alive(pid));
      // Cancelling what has already ended is not an error.
      await cancelJobs(cli, [job.jobId, "999999"]);
    });

    void it("fails a job stuck PENDING on a down partition or an impossible request, naming the reason", async () => {
      const down = await submitJob(cli, {
        labels: labels("106"),
        command: ["true"],
        options: { partition: cluster.downPartition },
      });
      const huge = await submitJob(cli, {
        labels: labels("106"),
        command: ["true"],
        resources: { cpu: cluster.cpus * 8 },
      });
      const [a, b] = await Promise.all([poller.follow(down.jobId), poller.follow(huge.jobId)]);
      assert.ok(a.error instanceof SlurmStuckPendingError);
      assert.equal(a.error.reason, "PartitionDown");
      assert.match(
        a.error.message,
        new RegExp(
          `Slurm job ${down.jobId} cannot start: .*PENDING.*PartitionDown.*partition is DOWN`,
        ),
      );
      assert.ok(b.error instanceof SlurmStuckPendingError);
      assert.equal(b.error.reason, "PartitionConfig");
      assert.match(b.error.message, /lower @resources/);
      // The poller reports; the jobs are still queued until cancelled.
      assert.deepEqual(
        (await listJobs(cli, { runId: "106" })).map((j) => j.state),
        ["PENDING", "PENDING"],
      );
      await cancelJobs(cli, [down.jobId, huge.jobId]);
      assert.deepEqual(await listJobs(cli, { runId: "106" }), []);
    });

    void it("lists a run's jobs by run id and kills only that run's", async () => {
      const single = await submitJob(cli, {
        labels: { ...labels("201", "start"), taskId: "1" },
        command: ["sleep", "300"],
      });
      const array = await submitArray(cli, {
        labels: labels("201"),
        command: ["sleep", "300"],
        size: 3,
        maxConcurrent: 1,
      });
      const other = await submitJob(cli, { labels: labels("202"), command: ["sleep", "300"] });
      const foreign = cluster
        .run("sbatch", [
          "--parsable",
          "--job-name=not-metaflow",
          "--output=/dev/null",
          "--wrap=sleep 300",
        ])
        .trim();

      const listed = await listJobs(cli, { runId: "201" });
      assert.deepEqual(
        [...new Set(listed.map((j) => j.jobId))].sort(),
        [single.jobId, array.jobId].sort(),
      );
      assert.ok(listed.every((j) => j.labels.flow === "SlurmTestFlow" && j.labels.runId === "201"));
      assert.deepEqual(listed.find((j) => j.jobId === single.jobId)?.labels, {
        ...labels("201", "start"),
        taskId: "1",
      });
      const all = await listJobs(cli);
      assert.ok(
        !all.some((j) => j.jobId === foreign),
        "a job not named by Metaflow.ts is never listed",
      );
      assert.ok(all.some((j) => j.jobId === other.jobId));

      const killed = await killJobs(cli, { runId: "201" });
      assert.deepEqual(
        [...new Set(killed.map((j) => j.jobId))].sort(),
        [single.jobId, array.jobId].sort(),
      );
      const outcomes = await Promise.all(
        [single.jobId, ...array.elements].map((id) => poller.follow(id)),
      );
      assert.ok(
        outcomes.every((o) => o.error instanceof SlurmCancelledError),
        outcomes.map((o) => o.state?.state).join(),
      );
      assert.deepEqual(await listJobs(cli, { runId: "201" }), []);
      assert.deepEqual(
        (await listJobs(cli, { runId: "202" })).map((j) => j.jobId),
        [other.jobId],
      );
      await killJobs(cli, { runId: "202" });
      assert.ok((await poller.follow(other.jobId)).error instanceof SlurmCancelledError);
      await cancelJobs(cli, [foreign]);
      assert.deepEqual(await listJobs(cli), []);
    });

    void it("refuses bad @slurm options before submission, naming the field", () => {
      const refused = (raw: Record<string, unknown>, source: "code" | "cli" = "code") => {
        try {
          parseSlurmOptions(raw, source);
        } catch (err) {
          assert.ok(err instanceof SlurmOptionError);
          return err;
        }
        assert.fail(`accepted ${JSON.stringify(raw)}`);
      };
      const p = refused({ partition: 3 });
      assert.equal(p.field, "partition");
      assert.match(p.message, /@slurm\.partition must be a string naming a partition .* got 3/);
      assert.match(
        refused({ time: "2 hours" }).message,
        /@slurm\.time must be a Slurm time .*"02:00:00".* got "2 hours"/,
      );
      assert.match(refused({ time: 90 }).message, /write "90" for 90 minutes/);
      assert.match(
        refused({ time: "1:75:00" }).message,
        /@slurm\.time has minutes or seconds ≥ 60/,
      );
      assert.match(
        refused({ queue: "gpu" }).message,
        /@slurm has no option 'queue'; its options are: partition, account/,
      );
      assert.match(
        refused({ extraArgs: ["--array=1-3"] }).message,
        /@slurm\.extraArgs must not set --array/,
      );
      assert.match(
        refused({ extraArgs: "--exclusive" }).message,
        /@slurm\.extraArgs must be a list of sbatch flags/,
      );
      assert.match(
        refused({ extraArgs: "--mem=1G" }, "cli").message,
        /must not set --mem \(use @resources/,
      );
    });

    void it("refuses an unknown partition, a GPU request and too much memory at submission, leaving nothing queued", async () => {
      const submit = (extra: object) =>
        submitJob(cli, { labels: labels("301"), command: ["true"], ...extra });
      await assert.rejects(submit({ options: { partition: "nope" } }), (err: Error) => {
        assert.ok(err instanceof SlurmSubmitError);
        assert.match(
          err.message,
          /Invalid partition name specified.*The partition 'nope' does not exist.*partitions are: debug \(default\), closed/,
        );
        return true;
      });
      await assert.rejects(
        submit({ resources: { gpu: 1 } }),
        /asks for 1 GPU\(s\) \(--gres=gpu:1\), which this cluster or partition does not offer/,
      );
      await assert.rejects(
        submit({ resources: { memoryMb: cluster.memoryMb * 4 } }),
        /asks for \d+ MiB of memory, more than a node of the partition has/,
      );
      // (slurmctld records a refused memory request as a FAILED job; nothing is pending or running.)
      assert.deepEqual(await listJobs(cli, { runId: "301" }), []);
    });

    void it("says clearly when Slurm is not installed, not configured, or its controller does not answer", async () => {
      const empty = fs.mkdtempSync(path.join(os.tmpdir(), "mf-noslurm-"));
      try {
        await assert.rejects(
          new SlurmCli({ binDir: empty }).check(),
          (err: Error) =>
            err instanceof SlurmUnavailableError && /`sbatch` is not installed/.test(err.message),
        );
        await assert.rejects(
          new SlurmCli({ env: { SLURM_CONF: path.join(empty, "slurm.conf") } }).check(),
          /SLURM_CONF=.*names a file that does not exist/,
        );
        // A copy of the cluster's configuration with the controller on a port nobody listens on.
        const dead = path.join(empty, "dead.conf");
        const conf = fs
          .readFileSync(cluster.env.SLURM_CONF!, "utf8")
          .replace(/^SlurmctldPort=\d+$/m, "SlurmctldPort=1");
        fs.writeFileSync(dead, conf);
        await assert.rejects(
          new SlurmCli({ env: { SLURM_CONF: dead } }).check(),
          /The Slurm controller does not answer/,
        );
      } finally {
        fs.rmSync(empty, { recursive: true, force: true });
      }
    });
  },
);


async function until(ok: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 100));
  }
}
