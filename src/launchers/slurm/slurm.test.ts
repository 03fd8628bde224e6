/**
 * The pure parts of the Slurm layer: option and setting validation, the sbatch flags and job script
 * (run by a real /bin/sh), labels, and the meaning of end states and PENDING reasons.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import {
  ConfigError,
  loadConfig,
  parseSlurmOptions,
  parseSlurmTime,
  withSlurmDefaults,
} from "../../config/index.js";
import {
  ARRAY_INDEX,
  blockedReason,
  jobError,
  jobName,
  jobScript,
  outputFile,
  parseLabels,
  pollerOptions,
  sbatchArgs,
  SlurmCancelledError,
  SlurmExitCodeError,
  SlurmNodeFailError,
  SlurmOutOfMemoryError,
  SlurmSignalError,
  SlurmTimeoutError,
  type JobState,
} from "./index.js";

const homes: string[] = [];
const home = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mf-slurm-unit-"));
  homes.push(dir);
  return dir;
};
after(() => {
  for (const dir of homes) fs.rmSync(dir, { recursive: true, force: true });
});
const labels = { flow: "TrainFlow", runId: "1700000000123", step: "train" };

function state(partial: Partial<JobState>): JobState {
  return {
    id: "77",
    state: "COMPLETED",
    phase: "finished",
    reason: undefined,
    exitCode: 0,
    signal: 0,
    nodes: "n1",
    partition: "debug",
    timeLimit: "1:00",
    source: "squeue",
    ...partial,
  };
}

void describe("@slurm options and METAFLOW_SLURM_* settings", () => {
  void it("reads every Slurm time format and refuses the rest", () => {
    const seconds = (t: string) => {
      const r = parseSlurmTime(t);
      assert.ok(r.ok, t);
      return r.value.seconds;
    };
    assert.equal(seconds("90"), 5400);
    assert.equal(seconds("30:15"), 1815);
    assert.equal(seconds("02:00:00"), 7200);
    assert.equal(seconds("1-12"), 129_600);
    assert.equal(seconds("1-00:30"), 88_200);
    assert.equal(seconds("2-01:02:03"), 176_523);
    assert.equal(seconds("unlimited"), Infinity);
    for (const bad of [
      "",
      "0",
      "00:00:00",
      "2h",
      "1:60",
      "1:00:60",
      "1-24",
      "1-2-3",
      "-5",
      "1.5",
    ]) {
      assert.equal(parseSlurmTime(bad).ok, false, bad);
    }
  });

  void it("takes options from code and from --with, in the forms each gives", () => {
    assert.deepEqual(
      parseSlurmOptions(
        {
          partition: "gpu,cpu",
          account: "ml",
          qos: "high",
          time: "1-00:00:00",
          constraint: "intel&avx2",
          extraArgs: ["--exclusive"],
        },
        "code",
      ),
      {
        partition: "gpu,cpu",
        account: "ml",
        qos: "high",
        time: { text: "1-00:00:00", seconds: 86_400 },
        constraint: "intel&avx2",
        extraArgs: ["--exclusive"],
      },
    );
    assert.deepEqual(parseSlurmOptions({ extraArgs: "--exclusive  --nice=10" }, "cli").extraArgs, [
      "--exclusive",
      "--nice=10",
    ]);
    assert.deepEqual(
      parseSlurmOptions({ extraArgs: '["--exclusive","--nice=10"]' }, "cli").extraArgs,
      ["--exclusive", "--nice=10"],
    );
    assert.deepEqual(parseSlurmOptions({ partition: "3" }, "cli"), {
      partition: "3",
      extraArgs: [],
    });
    assert.throws(
      () => parseSlurmOptions({ account: "my account" }, "code"),
      /@slurm\.account must be a Slurm name/,
    );
    assert.throws(
      () => parseSlurmOptions({ constraint: "a b" }, "code"),
      /@slurm\.constraint must be node features/,
    );
    assert.throws(
      () => parseSlurmOptions({ extraArgs: ["exclusive"] }, "code"),
      /each starting with '-'/,
    );
    assert.throws(
      () => parseSlurmOptions({ extraArgs: ["-c4"] }, "code"),
      /must not set -c \(use @resources\(\{ cpu \}\)\)/,
    );
    assert.throws(
      () => parseSlurmOptions({ extraArgs: ["--job-name=x"] }, "code"),
      /must not set --job-name/,
    );
  });

  void it("reads defaults from the environment and the config file; the step's options win", () => {
    const dir = home();
    fs.mkdirSync(path.join(dir, ".metaflowconfig"));
    fs.writeFileSync(
      path.join(dir, ".metaflowconfig", "config.json"),
      JSON.stringify({ METAFLOW_SLURM_PARTITION: "cpu", METAFLOW_SLURM_TIME: "30" }),
    );
    const settings = loadConfig(
      {
        METAFLOW_SLURM_STUCK_TIMEOUT: "5",
        METAFLOW_SLURM_ACCOUNT: "ml",
        METAFLOW_SLURM_EXTRA_ARGS: "--nice=5",
        METAFLOW_SLURM_SETUP: "module load nodejs/20",
      },
      dir,
    ).slurm;
    assert.equal(settings.partition.origin, path.join(dir, ".metaflowconfig", "config.json"));
    assert.equal(settings.account.origin, "env METAFLOW_SLURM_ACCOUNT");
    assert.equal(settings.pollIntervalSeconds.value, 2);
    assert.deepEqual(pollerOptions(settings), { intervalMs: 2000, stuckAfterMs: 5000 });
    const resolved = withSlurmDefaults(
      parseSlurmOptions({ partition: "gpu", extraArgs: ["--exclusive"] }, "code"),
      settings,
    );
    assert.deepEqual(resolved, {
      partition: "gpu",
      account: "ml",
      qos: undefined,
      time: { text: "30", seconds: 1800 },
      constraint: undefined,
      extraArgs: ["--nice=5", "--exclusive"],
      setup: "module load nodejs/20",
    });
  });

  void it("refuses a malformed setting, naming the variable", () => {
    const dir = home();
    assert.throws(
      () => loadConfig({ METAFLOW_SLURM_TIME: "two hours" }, dir),
      (err: Error) =>
        err instanceof ConfigError &&
        /METAFLOW_SLURM_TIME \(from environment variable METAFLOW_SLURM_TIME\) must be a Slurm time/.test(
          err.message,
        ),
    );
    assert.throws(
      () => loadConfig({ METAFLOW_SLURM_PARTITION: "a b" }, dir),
      /METAFLOW_SLURM_PARTITION .* must name partitions/,
    );
    assert.throws(
      () => loadConfig({ METAFLOW_SLURM_EXTRA_ARGS: "--array=1-2" }, dir),
      /METAFLOW_SLURM_EXTRA_ARGS .* must not set --array/,
    );
    assert.throws(
      () => loadConfig({ METAFLOW_SLURM_POLL_INTERVAL: "0" }, dir),
      /METAFLOW_SLURM_POLL_INTERVAL .* from 0.1 to 600/,
    );
  });
});

void describe("what sbatch receives", () => {
  void it("turns resources and options into flags, and marks the job with its labels", () => {
    const args = sbatchArgs({
      labels: { ...labels, taskId: "3", attempt: 1 },
      command: ["true"],
      size: 100,
      maxConcurrent: 16,
      resources: { cpu: 1.5, memoryMb: 4096, gpu: 2 },
      options: {
        partition: "gpu",
        account: "ml",
        qos: "high",
        time: { text: "02:00:00", seconds: 7200 },
        constraint: "a100",
        extraArgs: ["--exclusive"],
      },
      stdout: "/logs/%A_%a.out",
    });
    assert.deepEqual(args, [
      "--parsable",
      "--job-name=metaflow-ts.TrainFlow.1700000000123.train",
      "--comment=metaflow-ts flow=TrainFlow run=1700000000123 step=train task=3 attempt=1",
      "--array=0-99%16",
      "--output=/logs/%A_%a.out",
      "--error=/dev/null",
      "--cpus-per-task=2",
      "--mem=4096M",
      "--gres=gpu:2",
      "--partition=gpu",
      "--account=ml",
      "--qos=high",
      "--time=02:00:00",
      "--constraint=a100",
      "--exclusive",
    ]);
    assert.throws(() => jobName({ ...labels, runId: "1 2" }), /labels must be/);
  });

  void it("writes a job script that a real shell runs with every word and value intact", () => {
    const tricky = `it's "quoted" $HOME \`id\` \\ ; * \n second line`;
    const script = jobScript({
      labels,
      command: ["printf", "%s|%s|%s|%s", tricky, ARRAY_INDEX],
      env: { VALUE: tricky },
      options: { setup: 'SETUP_RAN="yes"' },
    })
      // The script's last word reads VALUE and SETUP_RAN too, to show both reached the command.
      .replace(/\n$/, ' "$VALUE" "$SETUP_RAN"\n');
    const r = spawnSync("/bin/sh", ["-s"], {
      input: script,
      encoding: "utf8",
      env: { PATH: process.env.PATH, SLURM_ARRAY_TASK_ID: "41" },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${tricky}|41|${tricky}|yes`);
    const failing = jobScript({
      labels,
      command: ["echo", "not reached"],
      options: { setup: "exit 7" },
    });
    assert.equal(spawnSync("/bin/sh", ["-s"], { input: failing }).status, 7);
  });

  void it("names the output file of a job or an array element from its pattern", () => {
    assert.equal(outputFile("/logs/%A_%a.err", "1234_7"), "/logs/1234_7.err");
    assert.equal(outputFile("/logs/%j.err", "1234"), "/logs/1234.err");
    assert.equal(outputFile("/logs/100%%-%A.err", "1234"), "/logs/100%-1234.err");
    assert.equal(
      outputFile("/logs/%j.err", "1234_7"),
      undefined,
      "an element's own job id is not known",
    );
    assert.equal(outputFile("/logs/%N-%j.err", "1234"), undefined);
  });

  void it("reads labels back from the job name and comment", () => {
    assert.deepEqual(
      parseLabels(
        jobName(labels),
        "metaflow-ts flow=TrainFlow run=1700000000123 step=train task=9 attempt=2",
      ),
      { ...labels, taskId: "9", attempt: 2 },
    );
    assert.deepEqual(parseLabels(jobName(labels), undefined), labels);
    assert.equal(parseLabels("train.sh", "metaflow-ts flow=X"), undefined);
  });
});

void describe("what a job's state means", () => {
  void it("maps each end state to its error, naming the job and the state", () => {
    assert.equal(jobError(state({})), undefined);
    const exit = jobError(state({ state: "FAILED", exitCode: 2, reason: "NonZeroExitCode" }));
    assert.ok(
      exit instanceof SlurmExitCodeError &&
        exit.exitCode === 2 &&
        /Slurm job 77 FAILED: its command exited with code 2/.test(exit.message),
    );
    assert.ok(
      jobError(state({ state: "OUT_OF_MEMORY", exitCode: 0, signal: 125 }), {
        memoryMb: 100,
      }) instanceof SlurmOutOfMemoryError,
    );
    const timeout = jobError(state({ state: "TIMEOUT", signal: 15, timeLimit: "2:00:00" }));
    assert.ok(
      timeout instanceof SlurmTimeoutError && /time limit \(2:00:00\)/.test(timeout.message),
    );
    const node = jobError(state({ state: "NODE_FAIL", nodes: "gpu07" }));
    assert.ok(
      node instanceof SlurmNodeFailError &&
        /node gpu07 failed \(NODE_FAIL\).*@retry/.test(node.message),
    );
    assert.ok(jobError(state({ state: "CANCELLED", signal: 15 })) instanceof SlurmCancelledError);
    const killed = jobError(state({ state: "FAILED", exitCode: 0, signal: 9 }), { memoryMb: 512 });
    assert.ok(
      killed instanceof SlurmSignalError &&
        /signal 9 \(SIGKILL\).*memory request \(512 MiB\)/.test(killed.message),
    );
    const other = jobError(state({ state: "BOOT_FAIL" }));
    assert.match(
      other?.message ?? "",
      /Slurm job 77 ended in state BOOT_FAIL\. The node could not be booted/,
    );
  });

  void it("tells a PENDING job that waits its turn from one that cannot start", () => {
    const pending = (reason: string) =>
      state({ state: "PENDING", phase: "pending", reason, exitCode: undefined, signal: undefined });
    for (const waiting of [
      "Resources",
      "Priority",
      "JobArrayTaskLimit",
      "QOSMaxJobsPerUserLimit",
      "BeginTime",
    ]) {
      assert.equal(blockedReason(pending(waiting)), undefined, waiting);
    }
    assert.match(blockedReason(pending("PartitionDown")) ?? "", /partition is DOWN/);
    assert.match(
      blockedReason(pending("ReqNodeNotAvail, UnavailableNodes:n[1-4]")) ?? "",
      /down, drained or reserved/,
    );
    assert.match(blockedReason(pending("PartitionTimeLimit")) ?? "", /MaxTime/);
    assert.equal(
      blockedReason(state({ state: "RUNNING", phase: "running", reason: "PartitionDown" })),
      undefined,
    );
  });
});
