/**
 * Reliability of the team setup (S3 + metadata service on PostgreSQL), with real `metaflow run`
 * processes: PostgreSQL or the S3 server restarted in the middle of a run, 20 runs at once against
 * one service and one bucket, two users on two "machines", and a run whose runtime is SIGKILLed.
 * s3rver, PostgreSQL and the service are started once for the file; in CI a missing one fails.
 */
import assert from "node:assert/strict";
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import type { ServiceMetadata } from "../src/metadata/service.js";
import { openBackends, type Backends } from "../src/backends.js";
import { remoteAvailability, startRemoteStack, type RemoteStack } from "./helpers/remote.js";
import { alive, type CliResult, collect, Project } from "./helpers/project.js";

const availability = remoteAvailability();
const skip = availability.s3 ?? availability.postgres;
/** Short, so the SIGKILL test does not wait a minute; longer than the runtime's 5 s heartbeat interval. */
const HEARTBEAT_TIMEOUT_S = 8;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const FLOW = `import { FlowSpec, step, Parameter, type Inputs } from "metaflow-ts";
export default class SleepyFlow extends FlowSpec {
  n = Parameter("n", { default: 30 });
  pause = Parameter("pause", { default: 0 });
  seed = Parameter("seed", { default: 1 });
  declare items: number[]; declare v: number; declare values: number[]; declare total: number; declare seedSeen: number;
  @step start() { this.items = Array.from({ length: this.n }, (_, i) => i); this.next(this.work, { foreach: "items" }); }
  @step async work() {
    if (this.pause > 0) await new Promise((r) => setTimeout(r, this.pause));
    this.v = (this.input as number) * this.seed;
    console.log("v=" + this.v);
    this.next(this.join);
  }
  @step join(inputs: Inputs<SleepyFlow>) {
    this.values = inputs.map((i) => i.v);
    this.total = this.values.reduce((a, b) => a + b, 0);
    this.next(this.end);
  }
  @step end() { this.seedSeen = this.seed; }
}
`;

const HANG = `import { FlowSpec, step } from "metaflow-ts";
export default class HangFlow extends FlowSpec {
  @step start() { this.next(this.wait); }
  @step async wait() { console.log("waiting"); await new Promise((r) => setTimeout(r, 120000)); this.next(this.end); }
  @step end() {}
}
`;

/** A `metaflow run` in progress, with its output so far. */
interface LiveRun {
  readonly child: ChildProcessWithoutNullStreams;
  output(): string;
  /** How many tasks printed "Task finished successfully" so far. */
  finished(): number;
  readonly done: Promise<CliResult>;
}

void describe("S3 + metadata service under failures and load", { skip }, () => {
  let stack: RemoteStack;
  const projects: Project[] = [];
  const opened: Backends[] = [];

  before(async () => {
    stack = await startRemoteStack({ heartbeatTimeoutSeconds: HEARTBEAT_TIMEOUT_S });
  });
  after(async () => {
    for (const p of projects) p.kill();
    for (const b of opened) b.close();
    await stack?.stop();
    for (const p of projects) p.cleanup();
  });

  /** A project ("machine") with its own home, cache and user, pointed at the shared service and bucket. */
  function machine(user = "tester"): { project: Project; env: Record<string, string>; backends: Backends } {
    const project = new Project();
    projects.push(project);
    project.write("sleepy.ts", FLOW);
    project.write("hang.ts", HANG);
    const home = path.join(project.dir, "home");
    fs.mkdirSync(home);
    const env = {
      ...stack.env({ prefix: "team", cacheDir: path.join(home, "s3cache"), metadata: "service" }),
      HOME: home,
      METAFLOW_USER: user,
    };
    const backends = openBackends({ env: { ...process.env, ...env }, cwd: project.dir });
    opened.push(backends);
    return { project, env, backends };
  }

  function startRun(project: Project, args: string[], env: Record<string, string>): LiveRun {
    const child = project.spawn(["run", ...args], env);
    let seen = "";
    child.stdout.on("data", (d: string | Buffer) => (seen += d.toString()));
    child.stderr.on("data", (d: string | Buffer) => (seen += d.toString()));
    return {
      child,
      output: () => seen,
      finished: () => (seen.match(/Task finished successfully/g) ?? []).length,
      done: collect(child),
    };
  }

  async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(50);
    }
  }

  function runIdOf(r: CliResult): string {
    const m = /Done! SleepyFlow\/(\d+):/.exec(r.stdout);
    assert.ok(m, `no "Done!" line:\n${r.stdout}\n${r.stderr}`);
    return m[1]!;
  }

  async function value(b: Backends, flow: string, runId: string, step: string, name: string, taskId?: string): Promise<unknown> {
    const id = taskId ?? (await b.metadata.listTasks(flow, runId, step))[0];
    assert.ok(id, `no task of ${flow}/${runId}/${step}`);
    const task = await b.metadata.getTask(flow, runId, step, id);
    const ref = task?.attempts.at(-1)?.end?.artifacts.find((a) => a.name === name);
    assert.ok(ref, `no artifact ${name} in ${flow}/${runId}/${step}/${id}`);
    return b.store.getValue(ref);
  }

  /** Asserts a SleepyFlow run completed with its own parameters' results, every task and log in place. */
  async function checkRun(b: Backends, runId: string, n: number, seed: number): Promise<void> {
    const where = `SleepyFlow/${runId} (seed ${seed})`;
    assert.equal((await b.metadata.getRunEnd("SleepyFlow", runId))?.status, "completed", where);
    assert.equal((await b.metadata.listTasks("SleepyFlow", runId, "work")).length, n, where);
    const expected = Array.from({ length: n }, (_, i) => i * seed);
    assert.deepEqual(await value(b, "SleepyFlow", runId, "end", "values"), expected, where);
    assert.equal(await value(b, "SleepyFlow", runId, "end", "total"), expected.reduce((a, x) => a + x, 0), where);
    assert.equal(await value(b, "SleepyFlow", runId, "end", "seedSeen"), seed, where);
    // Every task's log is stored, and says what that task computed.
    const logged = await Promise.all(
      (await b.metadata.listTasks("SleepyFlow", runId, "work")).map(async (id) => {
        const log = await b.storage.get(`flows/SleepyFlow/${runId}/work/${id}/attempt-0.stdout.log`);
        assert.ok(log, `${where}: no log of work/${id}`);
        return Number(/\tv=(-?\d+)$/m.exec(log.toString())?.[1]);
      }),
    );
    assert.deepEqual(logged.sort((x, y) => x - y), expected, `${where}: logged values`);
  }

  /** Runs a 30-task foreach and does `disrupt` once a few tasks have finished; the run must still succeed. */
  async function runThrough(disrupt: () => Promise<void>, seed: number): Promise<void> {
    const { project, env, backends } = machine();
    const live = startRun(project, ["sleepy.ts", "--n", "30", "--pause", "500", "--seed", String(seed), "--max-workers", "4"], env);
    await until("4 finished tasks", () => live.finished() >= 4 || live.child.exitCode !== null, 60_000);
    assert.equal(live.child.exitCode, null, `the run ended before the disruption:\n${live.output()}`);
    const before = live.finished();
    await disrupt();
    // Still running when the server came back, so the outage really fell in the middle of the run.
    assert.equal(live.child.exitCode, null, `the run ended during the disruption:\n${live.output()}`);
    assert.ok(before < 30, `${before} tasks had already finished`);
    const r = await live.done;
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    await checkRun(backends, runIdOf(r), 30, seed);
  }

  void test("PostgreSQL restarted for 2 s in the middle of a run: the run finishes", async () => {
    const logged = stack.service!.output().length;
    await runThrough(() => stack.pg!.restart(2000), 3);
    // The run's calls met the outage (503 answers, retried), and the service reconnected by itself.
    assert.match(stack.service!.output().slice(logged), / 503 /);
  });

  void test("the S3 server restarted for 2 s in the middle of a run: the run finishes", async () => {
    await runThrough(() => stack.s3.restart(2000), 5);
  });

  void test("20 concurrent runs against one service and one bucket: all succeed, each with its own results", async () => {
    const { project, env, backends } = machine();
    const before = new Set(await backends.metadata.listRuns("SleepyFlow"));
    const seeds = Array.from({ length: 20 }, (_, i) => 100 + i);
    const t0 = Date.now();
    const results = await Promise.all(seeds.map((seed) => startRun(project, ["sleepy.ts", "--n", "5", "--seed", String(seed)], env).done));
    const seconds = (Date.now() - t0) / 1000;
    results.forEach((r, i) => assert.equal(r.code, 0, `run with seed ${seeds[i]} failed:\n${r.stdout}\n${r.stderr}`));
    const ids = results.map(runIdOf);
    assert.equal(new Set(ids).size, 20, `run ids are not unique: ${ids.join(", ")}`);
    const listed = (await backends.metadata.listRuns("SleepyFlow")).filter((id) => !before.has(id));
    assert.deepEqual([...listed].sort(), [...ids].sort(), "the service lists exactly the 20 new runs");
    await Promise.all(ids.map((id, i) => checkRun(backends, id, 5, seeds[i]!)));
    // For the record when the suite is slow: 20 runtimes and their hosts share the machine's cores.
    console.log(`# 20 concurrent runs took ${seconds.toFixed(1)} s`);
  });

  void test("two users on two machines share one service and bucket and see each other's runs", async () => {
    const ann = machine("ann");
    const bob = machine("bob");
    const [a, b] = await Promise.all([
      startRun(ann.project, ["sleepy.ts", "--n", "3", "--seed", "7"], ann.env).done,
      startRun(bob.project, ["sleepy.ts", "--n", "4", "--seed", "11"], bob.env).done,
    ]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const annRun = runIdOf(a);
    const bobRun = runIdOf(b);
    for (const [viewer, name] of [[ann, "ann"], [bob, "bob"]] as const) {
      const runs = await viewer.backends.metadata.listRuns("SleepyFlow");
      assert.ok(runs.includes(annRun) && runs.includes(bobRun), `${name} sees both runs`);
      assert.equal((await viewer.backends.metadata.getRun("SleepyFlow", annRun))?.user, "ann");
      assert.equal((await viewer.backends.metadata.getRun("SleepyFlow", bobRun))?.user, "bob");
      assert.ok((await viewer.backends.metadata.getRun("SleepyFlow", bobRun))?.systemTags.includes("user:bob"));
      // Artifacts written on the other machine are read from the bucket into this machine's cache.
      await checkRun(viewer.backends, annRun, 3, 7);
      await checkRun(viewer.backends, bobRun, 4, 11);
    }
  });

  void test("a run whose runtime is SIGKILLed shows as failed once its heartbeats stop", async () => {
    const { project, env, backends } = machine();
    const provider = backends.metadata as ServiceMetadata;
    const live = startRun(project, ["hang.ts"], env);
    await until("the wait step to start", () => /\/wait\/\d+ .*waiting/.test(live.output()) || live.child.exitCode !== null, 60_000);
    const m = /HangFlow\/(\d+)|run-id (\d+)/.exec(live.output());
    const runId = m?.[1] ?? m?.[2];
    assert.ok(runId, live.output());
    // Alive and beating: running, even after more than the timeout has passed since it started.
    await sleep((HEARTBEAT_TIMEOUT_S + 1) * 1000);
    assert.equal((await provider.getRunStatus("HangFlow", runId))?.status, "running");
    assert.equal(await provider.getRunEnd("HangFlow", runId), undefined);

    live.child.kill("SIGKILL");
    await live.done;
    const killedAt = Date.now();
    await until("the run to show as failed", async () => (await provider.getRunStatus("HangFlow", runId))?.status === "failed", 30_000);
    const waited = (Date.now() - killedAt) / 1000;
    assert.ok(waited <= HEARTBEAT_TIMEOUT_S + 6, `took ${waited} s`);
    const status = await provider.getRunStatus("HangFlow", runId);
    assert.equal(status?.heartbeatExpired, true);
    const end = await provider.getRunEnd("HangFlow", runId);
    assert.equal(end?.status, "failed");
    assert.equal(end?.error?.name, "HeartbeatTimeout");
    // The killed runtime's task host notices and exits by itself (and is killed here if not).
    const pids = [...new Set([...live.output().matchAll(/\(pid (\d+)\)/g)].map((x) => Number(x[1])))];
    try {
      await until("the orphaned task host to exit", () => pids.every((pid) => !alive(pid)), 10_000);
    } finally {
      for (const pid of pids.filter(alive)) process.kill(pid, "SIGKILL");
    }
  });
});

