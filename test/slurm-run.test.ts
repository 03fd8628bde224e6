/**
 * `@slurm` end to end on a real one-node Slurm cluster started by this file, with the local
 * datastore in each project's directory (shared with the node: it is this machine): flows run by
 * the real CLI, tasks run as real jobs (`metaflow task`), and what the user sees — the console,
 * the stored artifacts and logs, the jobs in the queue — is checked. A recording `sbatch` on PATH
 * counts submissions.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { listJobs, SlurmCli, type MetaflowJob } from "../src/launchers/slurm/index.js";
import { assertOk, type CliOptions, type CliResult, collect, Project, REPO, runCli, runIdOf, waitFor, waitForOutput } from "./helpers/project.js";
import { GRAPHS } from "./fixtures/graphs.js";
import { expected, observed, viaDump } from "./helpers/matrix.js";
import {
  recordSbatch,
  slurmAvailability,
  startSlurm,
  type SbatchRecorder,
  type TestSlurm,
} from "./helpers/slurm.js";

const availability = slurmAvailability();
const HEADER = `import { FlowSpec, step, slurm, retry, catchError, timeout, resources, current, type Inputs } from "metaflow-ts";\n`;

let cluster: TestSlurm;
const projects: SlurmProject[] = [];

/** A project whose CLI calls reach the test cluster through a recording sbatch. */
class SlurmProject {
  readonly p = new Project({ prefix: "mf-slurm-run-" });
  readonly sbatch: SbatchRecorder;
  readonly env: Record<string, string>;

  constructor(extra: Record<string, string> = {}) {
    if (!("bins" in availability)) throw new Error("no Slurm");
    this.sbatch = recordSbatch(this.p.dir, availability.bins.sbatch);
    this.env = {
      ...cluster.env,
      ...this.sbatch.env,
      METAFLOW_HOME: path.join(this.p.dir, "no-config"),
      METAFLOW_DEFAULT_DATASTORE: "local",
      METAFLOW_DEFAULT_METADATA: "local",
      METAFLOW_SLURM_POLL_INTERVAL: "0.5",
      ...extra,
    };
    projects.push(this);
  }

  cli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
    return this.p.cli(args, { ...options, env: { ...this.env, ...options.env } });
  }

  spawn(args: readonly string[], env: Record<string, string> = {}) {
    return this.p.spawn(args, { ...this.env, ...env });
  }
}

/** The jobs Slurm still holds for a run, finished ones included (run ids are unique per flow only). */
function jobsOf(flow: string, runId: string, includeFinished = true): Promise<MetaflowJob[]> {
  return listJobs(new SlurmCli({ env: cluster.env }), { flow, runId, includeFinished });
}



void describe(
  "@slurm runs on a real cluster",
  { skip: "skip" in availability ? availability.skip : false, concurrency: true },
  () => {
    before(async () => {
      if ("bins" in availability) cluster = await startSlurm(availability.bins);
    });
    after(async () => {
      for (const s of projects) s.p.cleanup();
      await cluster?.stop();
    });

    void test("a linear flow with one @slurm step: the job gets the step's resources and options, the client reads its artifacts", async () => {
      const s = new SlurmProject();
      s.p.write(
        "linear.ts",
        `${HEADER}
export default class LinearSlurmFlow extends FlowSpec {
  declare numbers: number[]; declare job: Record<string, string | undefined>; declare sum: number; declare blob: Buffer;
  @step start() { this.numbers = [1, 2, 3, 4]; this.next(this.compute); }
  @resources({ cpu: 2, memory: 700 }) @slurm({ time: "10" }) @step compute() {
    const e = process.env;
    this.job = { id: e.SLURM_JOB_ID, cpus: e.SLURM_CPUS_PER_TASK, mem: e.SLURM_MEM_PER_NODE, pathspec: current.pathspec };
    this.sum = this.numbers.reduce((a, b) => a + b, 0);
    this.blob = Buffer.alloc(1 << 20, 7);
    console.log(\`sum is \${this.sum}\`);
    this.next(this.end);
  }
  @step end() { console.log(\`end sees \${this.sum} and \${this.blob.length} bytes\`); }
}
`,
      );
      const r = await s.cli(["run", "linear.ts"]);
      assertOk(r);
      const runId = runIdOf(r.stdout);
      const [sub] = s.sbatch.submissions();
      assert.equal(s.sbatch.submissions().length, 1, "only the @slurm step is submitted");
      assert.ok(
        sub!.includes("--cpus-per-task=2") &&
          sub!.includes("--mem=700M") &&
          sub!.includes("--time=10"),
        sub!.join(" "),
      );
      const job = /\/compute\/2 \(slurm job (\d+)\)\] sum is 10/.exec(r.stdout);
      assert.ok(job, `the step's output with its job id:\n${r.stdout}`);
      assert.match(r.stdout, /\/start\/1 \(pid \d+\)\] Task finished successfully/);
      assert.match(r.stdout, /\/end\/3 \(pid \d+\)\] end sees 10 and 1048576 bytes/);
      const dump = await s.cli([
        "dump",
        `LinearSlurmFlow/${runId}/compute`,
        "--include",
        "job,sum",
      ]);
      assertOk(dump);
      assert.match(
        dump.stdout,
        new RegExp(
          `id: '${job[1]}', cpus: '2', mem: '700', pathspec: 'LinearSlurmFlow/${runId}/compute/2'`,
        ),
      );
      assert.match(dump.stdout, /sum: number, \d+ B = 10/);
      const [listed] = await jobsOf("LinearSlurmFlow", runId);
      assert.equal(listed?.jobId, job[1]);
      assert.deepEqual(listed?.labels, {
        flow: "LinearSlurmFlow",
        runId,
        step: "compute",
        taskId: "2",
        attempt: 0,
      });
    });

    void test("a foreach of 50 over a @slurm step is ONE job array (one sbatch), joined locally", async () => {
      const s = new SlurmProject();
      s.p.write(
        "fan.ts",
        `${HEADER}
export default class FanSlurmFlow extends FlowSpec {
  declare items: number[]; declare square: number; declare element: string | undefined; declare total: number;
  @step start() { this.items = Array.from({ length: 50 }, (_, i) => i); this.next(this.square_it, { foreach: "items" }); }
  @slurm @step square_it() {
    this.square = (this.input as number) ** 2;
    this.element = process.env.SLURM_ARRAY_TASK_ID;
    this.next(this.join);
  }
  @step join(inputs: Inputs<FanSlurmFlow>) {
    this.total = inputs.reduce((a, i) => a + i.square, 0);
    if (inputs.some((i, k) => i.element !== String(k))) throw new Error("element order");
    this.next(this.end);
  }
  @step end() {}
}
`,
      );
      const r = await s.cli(["run", "fan.ts", "--max-workers", "8"]);
      assertOk(r);
      const subs = s.sbatch.submissions();
      assert.equal(subs.length, 1, `one sbatch for 50 tasks, got ${subs.length}`);
      assert.ok(subs[0]!.includes("--array=0-49%8"), subs[0]!.join(" "));
      const array =
        /50 tasks \(2\.\.51\) submitted as Slurm job array (\d+), at most 8 running at once/.exec(
          r.stdout,
        );
      assert.ok(array, r.stdout);
      for (const i of [0, 17, 49])
        assert.match(
          r.stdout,
          new RegExp(
            `/square_it/${i + 2} \\(slurm job ${array[1]}_${i}\\)\\] Task finished successfully`,
          ),
        );
      const dump = await s.cli([
        "dump",
        `FanSlurmFlow/${runIdOf(r.stdout)}/join`,
        "--include",
        "total",
      ]);
      assert.match(dump.stdout, /total: number, \d+ B = 40425/);
    });

    void test("logs stream to the console and to `metaflow logs` while the job runs, and stay after", async () => {
      const s = new SlurmProject();
      const gate = s.p.path("release");
      s.p.write(
        "chatty.ts",
        `${HEADER}
import * as fs from "node:fs";
export default class ChattySlurmFlow extends FlowSpec {
  @step start() { this.next(this.talk); }
  @slurm @step async talk() {
    console.log("first line from the cluster");
    console.error("a warning on stderr");
    while (!fs.existsSync(${JSON.stringify(gate)})) await new Promise((r) => setTimeout(r, 100));
    console.log("released");
    this.next(this.end);
  }
  @step end() {}
}
`,
      );
      const child = s.spawn(["run", "chatty.ts"]);
      const done = collect(child);
      let out = "";
      child.stdout.on("data", (t: Buffer) => (out += t.toString()));
      await waitForOutput(() => out, /\/talk\/2 \(slurm job \d+\)\] first line from the cluster/);
      const runId = runIdOf(out);
      // The job is still running: the line came from its stored log, not from its end.
      assert.deepEqual(
        (await jobsOf("ChattySlurmFlow", runId, false)).map((j) => j.state),
        ["RUNNING"],
      );
      const during = await s.cli(["logs", `ChattySlurmFlow/${runId}/talk/2`, "--no-follow"]);
      assert.match(during.stdout, /first line from the cluster/);
      assert.match(during.stderr, /a warning on stderr/);
      fs.writeFileSync(gate, "");
      assertOk(await done);
      const afterRun = await s.cli(["logs", `ChattySlurmFlow/${runId}/talk/2`]);
      assert.equal(afterRun.stdout, "first line from the cluster\nreleased\n");
    });

    void test("@retry resubmits a failed attempt as a new job with the next attempt number", async () => {
      const s = new SlurmProject();
      s.p.write(
        "flaky.ts",
        `${HEADER}
export default class FlakySlurmFlow extends FlowSpec {
  declare attempt: number;
  @step start() { this.next(this.flaky); }
  @retry({ times: 2 }) @slurm @step flaky() {
    console.log(\`attempt \${current.retryCount}\`);
    if (current.retryCount === 0) throw new Error("the first attempt fails");
    this.attempt = current.retryCount;
    this.next(this.end);
  }
  @step end() {}
}
`,
      );
      const r = await s.cli(["run", "flaky.ts"]);
      assertOk(r);
      const subs = s.sbatch.submissions();
      assert.equal(subs.length, 2);
      assert.ok(
        subs[1]!.some((a) => a.includes("task=2 attempt=1")),
        subs[1]!.join(" "),
      );
      assert.match(r.stderr, /\/flaky\/2 \(slurm job \d+\)\] Error: the first attempt fails/);
      assert.match(r.stderr, /Task failed; retrying \(attempt 2 of 3\)/);
      assert.match(r.stdout, /\/flaky\/2 \(slurm job \d+\)\] Task is starting\. \(retry 1\)/);
      const runId = runIdOf(r.stdout);
      const task = await s.p.metadata.getTask("FlakySlurmFlow", runId, "flaky", "2");
      assert.deepEqual(
        task?.attempts.map((a) => a.end?.status),
        ["failed", "completed"],
      );
      assert.equal(await s.p.value("FlakySlurmFlow", runId, "flaky", "attempt"), 1);
    });

    void test("a job over its memory is reported as out of memory by Slurm's verdict, with the job id", async () => {
      const s = new SlurmProject();
      s.p.write(
        "hog.ts",
        `${HEADER}
export default class HogSlurmFlow extends FlowSpec {
  @step start() { this.next(this.hog); }
  @resources({ memory: 300 }) @slurm @step async hog() {
    const keep: Buffer[] = [];
    for (let i = 0; i < 150; i++) { keep.push(Buffer.alloc(20 << 20, 1)); await new Promise((r) => setTimeout(r, 50)); }
    this.next(this.end);
  }
  @step end() {}
}
`,
      );
      const r = await s.cli(["run", "hog.ts"]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const job = /Submitted as Slurm job (\d+)/.exec(r.stdout)?.[1];
      assert.match(
        r.stderr,
        new RegExp(
          `SlurmOutOfMemoryError: Slurm job ${job} ran out of memory \\(FAILED: slurmstepd saw \\d+ MiB in use, over the limit of 300 MiB`,
        ),
      );
      assert.match(r.stderr, /@resources\(\{ memory: MiB \}\)/);
      const task = await s.p.metadata.getTask("HogSlurmFlow", runIdOf(r.stdout), "hog", "2");
      assert.equal(
        task?.attempts[0]?.end?.error?.name,
        "SlurmOutOfMemoryError",
        "the scheduler recorded the job's end",
      );
    });

    void test("@timeout cancels the job at its limit (scancel) and fails the task with a TimeoutError", async () => {
      const s = new SlurmProject();
      s.p.write(
        "slow.ts",
        `${HEADER}
export default class SlowSlurmFlow extends FlowSpec {
  @step start() { this.next(this.slow); }
  @timeout({ seconds: 2 }) @slurm @step async slow() {
    console.log("sleeping");
    await new Promise((r) => setTimeout(r, 120_000));
    this.next(this.end);
  }
  @step end() {}
}
`,
      );
      const r = await s.cli(["run", "slow.ts"]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const runId = runIdOf(r.stdout);
      assert.match(r.stderr, /TimeoutError: Step 'slow' timed out after 2 s/);
      assert.deepEqual(
        (await jobsOf("SlowSlurmFlow", runId)).map((j) => j.state),
        ["CANCELLED"],
      );
      const task = await s.p.metadata.getTask("SlowSlurmFlow", runId, "slow", "2");
      assert.equal(task?.attempts[0]?.end?.error?.name, "TimeoutError");
    });

    void test("Ctrl-C cancels every job of the run, queued ones too, and prints the resume command", async () => {
      const s = new SlurmProject();
      s.p.write(
        "wait.ts",
        `${HEADER}
export default class WaitSlurmFlow extends FlowSpec {
  declare items: number[];
  @step start() { this.items = [1, 2, 3, 4, 5, 6]; this.next(this.wait, { foreach: "items" }); }
  @slurm @step async wait() { console.log("waiting"); await new Promise((r) => setTimeout(r, 300_000)); this.next(this.join); }
  @step join(inputs: Inputs<WaitSlurmFlow>) { this.next(this.end); }
  @step end() {}
}
`,
      );
      const child = s.spawn(["run", "wait.ts", "--max-workers", "2"]);
      const done = collect(child);
      let out = "";
      child.stdout.on("data", (t: Buffer) => (out += t.toString()));
      await waitForOutput(() => out, /\(slurm job \d+_\d\)\] waiting/);
      const runId = runIdOf(out);
      assert.ok(
        (await jobsOf("WaitSlurmFlow", runId, false)).some((j) => j.phase === "pending"),
        "some elements wait for their turn",
      );
      child.kill("SIGINT");
      const r = await done;
      assert.equal(r.code, 130, r.stdout + r.stderr);
      assert.match(r.stderr, /Cancelling Slurm job \d+\./);
      assert.match(
        r.stderr,
        new RegExp(`To resume it: npx metaflow resume wait.ts --origin-run-id ${runId}`),
      );
      assert.deepEqual(
        await jobsOf("WaitSlurmFlow", runId, false),
        [],
        "no job of the run is left in the queue",
      );
    });

    void test("resume after a failure on Slurm clones the finished tasks and resubmits only the rest", async () => {
      const s = new SlurmProject();
      const fixed = s.p.path("fixed");
      s.p.write(
        "brittle.ts",
        `${HEADER}
import * as fs from "node:fs";
export default class BrittleSlurmFlow extends FlowSpec {
  declare items: number[]; declare out: number; declare outs: number[];
  @step start() { this.items = [1, 2, 3]; this.next(this.work, { foreach: "items" }); }
  @slurm @step work() {
    if (this.input === 2 && !fs.existsSync(${JSON.stringify(fixed)})) throw new Error("element 2 is broken");
    this.out = (this.input as number) * 10;
    this.next(this.join);
  }
  @step join(inputs: Inputs<BrittleSlurmFlow>) { this.outs = inputs.map((i) => i.out); this.next(this.end); }
  @step end() {}
}
`,
      );
      const first = await s.cli(["run", "brittle.ts"]);
      assert.equal(first.code, 1, first.stdout + first.stderr);
      assert.match(first.stderr, /\/work\/3 \(slurm job \d+_1\)\] Error: element 2 is broken/);
      const origin = runIdOf(first.stdout);
      fs.writeFileSync(fixed, "");
      const resumed = await s.cli(["resume", "brittle.ts", "--origin-run-id", origin]);
      assertOk(resumed);
      assert.equal(
        (resumed.stdout.match(/Cloned from/g) ?? []).length,
        3,
        "start and two work tasks",
      );
      const subs = s.sbatch.submissions();
      assert.equal(subs.length, 2, "the first run's array, then one job for the failed element");
      assert.ok(!subs[1]!.some((a) => a.startsWith("--array")), subs[1]!.join(" "));
      const dump = await s.cli([
        "dump",
        `BrittleSlurmFlow/${runIdOf(resumed.stdout)}/join`,
        "--include",
        "outs",
      ]);
      assert.match(dump.stdout, /outs: Array.*\n?.*10.*20.*30/s);
    });

    void test("@catchError stores a cluster failure (a job stuck PENDING) through a local recovery, and the flow goes on", async () => {
      const s = new SlurmProject({ METAFLOW_SLURM_STUCK_TIMEOUT: "1" });
      s.p.write(
        "stuck.ts",
        `${HEADER}
export default class StuckSlurmFlow extends FlowSpec {
  declare failure: { name: string; message: string };
  @step start() { this.next(this.train); }
  @catchError({ var: "failure" }) @slurm({ partition: ${JSON.stringify(cluster?.downPartition ?? "closed")} }) @step train() { this.next(this.end); }
  @step end() { console.log(\`caught \${this.failure.name}\`); }
}
`,
      );
      const r = await s.cli(["run", "stuck.ts"]);
      assertOk(r);
      const runId = runIdOf(r.stdout);
      assert.match(
        r.stderr,
        /SlurmStuckPendingError: Slurm job \d+ cannot start: it has been PENDING for \d+ s with reason PartitionDown/,
      );
      assert.match(r.stdout, /\/train\/2 \(pid \d+\)\] Storing the caught error/);
      assert.match(r.stdout, /caught SlurmStuckPendingError/);
      assert.deepEqual(
        await jobsOf("StuckSlurmFlow", runId, false),
        [],
        "the stuck job was cancelled",
      );
    });

    void test("a runtime killed with SIGKILL leaves its jobs, which `metaflow slurm list` shows and `metaflow slurm kill --run-id` stops", async () => {
      const s = new SlurmProject();
      s.p.write(
        "orphan.ts",
        `${HEADER}
export default class OrphanSlurmFlow extends FlowSpec {
  declare items: number[];
  @step start() { this.items = [1, 2, 3]; this.next(this.wait, { foreach: "items" }); }
  @slurm @step async wait() { console.log("waiting"); await new Promise((r) => setTimeout(r, 300_000)); this.next(this.join); }
  @step join(inputs: Inputs<OrphanSlurmFlow>) { this.next(this.end); }
  @step end() {}
}
`,
      );
      const child = s.spawn(["run", "orphan.ts"]);
      const done = collect(child);
      let out = "";
      child.stdout.on("data", (t: Buffer) => (out += t.toString()));
      for (const i of [0, 1, 2])
        await waitForOutput(() => out, new RegExp(`\\(slurm job \\d+_${i}\\)\\] waiting`));
      const runId = runIdOf(out);
      child.kill("SIGKILL");
      await done;
      const list = await s.cli(["slurm", "list", "--run-id", runId]);
      assertOk(list);
      for (const [i, task] of [
        [0, 2],
        [1, 3],
        [2, 4],
      ])
        assert.match(
          list.stdout,
          new RegExp(`\\d+_${i} +RUNNING +OrphanSlurmFlow/${runId}/wait +${task} `),
          list.stdout,
        );
      // Cancelling every run's jobs has to be asked for: no filter, or --all with one, is refused.
      for (const [args, message] of [
        [[], /slurm kill: say whose jobs to cancel: --run-id ID .*--flow NAME, or --all/],
        [
          ["--all", "--run-id", runId],
          /--all cancels the jobs of every run; give it without --run-id/,
        ],
      ] as const) {
        const refused = await s.cli(["slurm", "kill", ...args]);
        assert.equal(refused.code, 2, refused.stdout + refused.stderr);
        assert.match(refused.stderr, message);
      }
      // Run ids are unique per flow: --flow keeps a same-numbered run of another test's flow out.
      const kill = await s.cli(["slurm", "kill", "--run-id", runId, "--flow", "OrphanSlurmFlow"]);
      assertOk(kill);
      assert.match(
        kill.stdout,
        new RegExp(
          `Cancelled Slurm job \\d+ \\(3 queued or running, of OrphanSlurmFlow/${runId}\\)`,
        ),
      );
      // Cancelled jobs end once slurmd has stopped their processes (COMPLETING until then).
      await waitFor(
        "the run's jobs to leave the queue",
        async () =>
          (await jobsOf("OrphanSlurmFlow", runId, false)).length === 0 ? true : undefined,
        60_000,
        200,
      );
      const again = await s.cli(["slurm", "list", "--run-id", runId, "--flow", "OrphanSlurmFlow"]);
      assert.equal(
        again.stdout,
        `No queued or running Slurm jobs of run OrphanSlurmFlow/${runId}.\n`,
      );
    });
    void test("bad options and set-ups are refused before anything is submitted or recorded, naming what to change", async () => {
      const s = new SlurmProject();
      s.p.write(
        "numeric.ts",
        `${HEADER}
export default class NumericSlurmFlow extends FlowSpec {
  @slurm({ partition: 3 as unknown as string }) @step start() { this.next(this.end); }
  @step end() {}
}
`,
      );
      const numeric = await s.cli(["run", "numeric.ts"]);
      assert.equal(numeric.code, 1, numeric.stdout + numeric.stderr);
      assert.match(
        numeric.stderr,
        /step 'start': @slurm\.partition must be a string naming a partition \(see `sinfo`\), got 3/,
      );
      s.p.write(
        "unknown.ts",
        `${HEADER}
export default class UnknownPartitionFlow extends FlowSpec {
  @step start() { this.next(this.train); }
  @slurm({ partition: "nope" }) @step train() { this.next(this.end); }
  @step end() {}
}
`,
      );
      const unknown = await s.cli(["run", "unknown.ts"]);
      assert.equal(unknown.code, 1, unknown.stdout + unknown.stderr);
      assert.match(unknown.stderr, /Bad @slurm option 'partition'/);
      assert.match(
        unknown.stderr,
        /step 'train': the partition 'nope' does not exist on this cluster; its partitions are: debug \(default\), closed\./,
      );
      const badWith = await s.cli(["run", "unknown.ts", "--with", "slurm:time=2 hours"]);
      assert.equal(badWith.code, 2, badWith.stdout + badWith.stderr);
      assert.match(
        badWith.stderr,
        /--with slurm:time=2 hours: @slurm\.time must be a Slurm time such as "30" \(minutes\)/,
      );
      s.p.write(
        "plain.ts",
        `${HEADER}\nexport default class PlainFlow extends FlowSpec {\n  @step start() { this.next(this.end); }\n  @step end() {}\n}\n`,
      );
      const strict = await s.cli(["run", "plain.ts", "--with", "slurm"], {
        env: { METAFLOW_SLURM_DATASTORE_CHECK: "strict" },
      });
      assert.equal(strict.code, 1, strict.stdout + strict.stderr);
      assert.match(strict.stderr, /The Slurm compute nodes cannot reach this run's datastore/);
      assert.match(
        strict.stderr,
        new RegExp(
          `The local datastore ${s.p.root.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} is under /tmp, this machine's temporary directory, which the compute nodes \\(n1\\) do not share`,
        ),
      );
      assert.match(
        strict.stderr,
        /Set METAFLOW_DATASTORE_SYSROOT_LOCAL to a directory on a shared filesystem/,
      );
      assert.deepEqual(s.sbatch.submissions(), [], "nothing was submitted");
      assert.deepEqual(await s.p.metadata.listFlows(), [], "no run was recorded");
    });

    void test("a compute node without the command that starts metaflow-ts fails the task with what to install", async () => {
      const s = new SlurmProject({
        METAFLOW_SLURM_COMMAND: "/nonexistent/node /nonexistent/metaflow.js",
      });
      s.p.write(
        "nonode.ts",
        `${HEADER}
export default class NoNodeSlurmFlow extends FlowSpec {
  @slurm @step start() { this.next(this.end); }
  @step end() {}
}
`,
      );
      const r = await s.cli(["run", "nonode.ts"]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(
        r.stderr,
        /Slurm job \d+ FAILED: its command could not be started on the compute node \(exit code 127/,
      );
      assert.match(r.stderr, /METAFLOW_SLURM_SETUP .* METAFLOW_SLURM_COMMAND/);
      assert.match(r.stderr, /The job's output ends with: .*nonexistent\/node/);
    });

    // Every graph shape of the test matrix with every step on Slurm: split indexes, joins,
    // branches, a switch that repeats a step, a caught failure in a foreach and a retry.
    for (const [name, g] of Object.entries(GRAPHS)) {
      void test(`the ${name} graph with --with slurm: every task a job, the same artifacts as locally`, async () => {
        const s = new SlurmProject();
        s.p.write(`${g.flow}.ts`, g.source);
        const r = await s.cli(["run", `${g.flow}.ts`, "--with", "slurm"]);
        assertOk(r);
        assert.doesNotMatch(
          r.stdout,
          /\(pid \d+\)\] Task is starting\.\n/,
          "no task ran locally but a recovery",
        );
        assert.deepEqual(observed(await viaDump(s.p, s.env, g, runIdOf(r.stdout))), expected(g));
      });
    }

    void test("examples/slurm_train.ts runs as docs/slurm.md says: one job array for the sweep, the best model chosen locally", async () => {
      const s = new SlurmProject();
      const env = { ...s.env, METAFLOW_DATASTORE_SYSROOT_LOCAL: s.p.root };
      const r = await runCli(
        ["run", "examples/slurm_train.ts", "--rates", "[0.01, 0.3]", "--epochs", "200"],
        { cwd: REPO, env },
      );
      assertOk(r);
      assert.equal(s.sbatch.submissions().length, 1);
      assert.match(
        r.stdout,
        /\/train\/3 \(slurm job (\d+)_1\)\] rate 0\.3: loss 0\.00\d+, y = [23]\.\d+x - 2\.\d+, on n1 \(Slurm job \1_1\)/,
      );
      assert.match(r.stdout, /\/end\/5 \(pid \d+\)\] Best learning rate 0\.3: loss 0\.00\d+/);
    });
  },
);
