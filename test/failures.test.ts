/**
 * Failures are a feature: @retry, @catchError, @timeout and crash diagnostics, each with real
 * failing flows run by the real CLI in real processes.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { namespace, Run, Task } from "../src/index.js";
import type { TaskRecord } from "../src/metadata/types.js";
import { alive, Project, REPO } from "./helpers/project.js";

const project = new Project();
const client = { datastoreRoot: project.root };
before(() => namespace(null));
after(() => project.cleanup());

const HEADER = `import { FlowSpec, step, retry, catchError, timeout, resources, current, type Inputs } from "metaflow-ts";\n`;

/** Allocates until V8's heap limit ends the process. */
const EXHAUST_HEAP = `const hog: number[][] = []; for (;;) hog.push(new Array(1_000_000).fill(Math.random()));`;

/** Every task record of a step, by task id. */
async function tasksOf(flow: string, runId: string, step: string): Promise<TaskRecord[]> {
  const ids = await project.metadata.listTasks(flow, runId, step);
  return Promise.all(ids.map(async (id) => (await project.metadata.getTask(flow, runId, step, id))!));
}

async function onlyTask(flow: string, runId: string, step: string): Promise<TaskRecord> {
  const [t] = await tasksOf(flow, runId, step);
  assert.ok(t, `${flow}/${runId}/${step} has a task`);
  return t;
}


// Independent flows, so they share the machine: each test starts its own CLI processes.
void describe("failures", { concurrency: 3 }, () => {
  void test("@retry: a throw, a rejection, process.exit and a SIGKILL each succeed on the second attempt", async () => {
    project.write(
      "retry_kinds.ts",
      `${HEADER}
export default class RetryKindsFlow extends FlowSpec {
  declare out: string; declare leftover: string; declare outs: Record<string, string>;
  @step start() { this.next(this.thrown, this.rejected, this.exited, this.killed); }
  @retry({ times: 1 }) @step thrown() {
    console.log(\`thrown attempt \${current.retryCount}\`);
    if (current.retryCount === 0) { this.leftover = "from attempt 0"; this.out = "bad"; throw new Error("thrown on attempt 0"); }
    this.out = "thrown ok";
    this.next(this.join);
  }
  @retry({ times: 1 }) @step async rejected() {
    console.log(\`rejected attempt \${current.retryCount}\`);
    await new Promise((r) => setTimeout(r, 10));
    if (current.retryCount === 0) await Promise.reject(new RangeError("rejected on attempt 0"));
    this.out = "rejected ok";
    this.next(this.join);
  }
  @retry({ times: 1 }) @step exited() {
    console.log(\`exited attempt \${current.retryCount}\`);
    if (current.retryCount === 0) process.exit(7);
    this.out = "exited ok";
    this.next(this.join);
  }
  @retry({ times: 1 }) @step async killed() {
    console.log(\`killed attempt \${current.retryCount}\`);
    if (current.retryCount === 0) { process.kill(process.pid, "SIGKILL"); await new Promise((r) => setTimeout(r, 5000)); }
    this.out = "killed ok";
    this.next(this.join);
  }
  @step join(inputs: Inputs<RetryKindsFlow>) {
    this.outs = { thrown: inputs.thrown.out, rejected: inputs.rejected.out, exited: inputs.exited.out, killed: inputs.killed.out };
    this.next(this.end);
  }
  @step end() {}
}`,
    );
    const r = await project.cli(["run", "retry_kinds.ts"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const runId = await project.latestRun("RetryKindsFlow");
    // The summary counts each task once and the failed first attempts apart.
    assert.match(r.stdout, new RegExp(`Done! RetryKindsFlow/${runId}: \\d+ tasks, 4 retried attempts in`));
    assert.deepEqual(await project.value("RetryKindsFlow", runId, "end", "outs"), {
      thrown: "thrown ok",
      rejected: "rejected ok",
      exited: "exited ok",
      killed: "killed ok",
    });
    const firstErrors: Record<string, RegExp> = {
      thrown: /thrown on attempt 0/,
      rejected: /rejected on attempt 0/,
      exited: /process\.exit\(7\)/,
      killed: /killed by SIGKILL/,
    };
    for (const [step, expected] of Object.entries(firstErrors)) {
      // The console says what failed and that it is retried.
      assert.match(r.stderr, new RegExp(`/${step}/\\d+ \\(pid \\d+\\)\\] Task failed; retrying \\(attempt 2 of 2\\)`), r.stderr);
      assert.match(r.stdout, new RegExp(`/${step}/\\d+ \\(pid \\d+\\)\\] Task is starting\\. \\(retry 1\\)`));
      const task = await onlyTask("RetryKindsFlow", runId, step);
      assert.deepEqual(
        task.attempts.map((a) => [a.start.attempt, a.end?.status]),
        [
          [0, "failed"],
          [1, "completed"],
        ],
        step,
      );
      assert.match(task.attempts[0]!.end!.error!.message, expected, step);

      // Both attempts' logs are kept and readable through the client and `metaflow logs --attempt`.
      const t = await Task.get(`RetryKindsFlow/${runId}/${step}/${task.taskId}`, client);
      assert.equal(t.attempts.length, 2);
      assert.equal(t.successful, true);
      assert.equal(t.retryCount, 1);
      assert.equal((await t.logs({ attempt: 0, streams: ["stdout"] })).map((l) => l.line).join("\n"), `${step} attempt 0`);
      assert.equal(await t.stdout(), `${step} attempt 1\n`);
      const stderr0 = (await t.logs({ attempt: 0, streams: ["stderr"] })).map((l) => l.line).join("\n");
      assert.match(stderr0, expected, `the failure is in attempt 0's stderr log of ${step}`);
    }
    const logs0 = await project.cli(["logs", `RetryKindsFlow/${runId}/thrown`, "--attempt", "0", "--no-follow"]);
    assert.equal(logs0.code, 0, logs0.stderr);
    assert.match(logs0.stdout, /thrown attempt 0/);
    assert.match(logs0.stderr, /Error: thrown on attempt 0/);
    const logs1 = await project.cli(["logs", `RetryKindsFlow/${runId}/thrown`, "--no-follow"]);
    assert.match(logs1.stdout, /thrown attempt 1/);
    assert.doesNotMatch(logs1.stdout, /thrown attempt 0/);

    // Only the successful attempt's artifacts are visible.
    const thrown = await onlyTask("RetryKindsFlow", runId, "thrown");
    const t = await Task.get(`RetryKindsFlow/${runId}/thrown/${thrown.taskId}`, client);
    assert.equal(await t.data("out"), "thrown ok");
    const names = (await t.artifacts()).map((a) => a.name);
    assert.ok(!names.includes("leftover"), `attempt 0's artifact is not visible: ${names.join(", ")}`);
  });

  void test("@retry exhausted fails the run after times + 1 attempts", async () => {
    project.write(
      "retry_out.ts",
      `${HEADER}
export default class RetryOutFlow extends FlowSpec {
  @step start() { this.next(this.flaky); }
  @retry({ times: 2, minutesBetweenRetries: 0 }) @step flaky() {
    throw new Error(\`still broken on attempt \${current.retryCount}\`);
    this.next(this.end);
  }
  @step end() {}
}`,
    );
    const r = await project.cli(["run", "retry_out.ts"]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /retrying \(attempt 2 of 3\)/);
    assert.match(r.stderr, /retrying \(attempt 3 of 3\)/);
    assert.match(r.stderr, /Step 'flaky' failed .*still broken on attempt 2/);
    const runId = await project.latestRun("RetryOutFlow");
    const task = await onlyTask("RetryOutFlow", runId, "flaky");
    assert.deepEqual(
      task.attempts.map((a) => a.end?.status),
      ["failed", "failed", "failed"],
    );
    const run = await Run.get(`RetryOutFlow/${runId}`, client);
    assert.equal(run.successful, false);
    assert.equal(run.failedStep, "flaky");
    assert.match(run.exception?.message ?? "", /still broken on attempt 2/);
  });

  void test("--with retry retries every step, at once by default", async () => {
    project.write(
      "with_retry.ts",
      `${HEADER}
export default class WithRetryFlow extends FlowSpec {
  declare n: number;
  @step start() { if (current.retryCount === 0) throw new Error("start fails once"); this.n = 1; this.next(this.middle); }
  @step middle() { if (current.retryCount < 2) throw new Error("middle fails twice"); this.n += current.retryCount; this.next(this.end); }
  @step end() {}
}`,
    );
    const plain = await project.cli(["run", "with_retry.ts"]);
    assert.equal(plain.code, 1, "without --with retry the first failure fails the run");
    const r = await project.cli(["run", "with_retry.ts", "--with", "retry"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stderr, /start\/\d+ \(pid \d+\)\] Task failed; retrying \(attempt 2 of 4\)/);
    assert.match(r.stderr, /middle\/\d+ \(pid \d+\)\] Task failed; retrying \(attempt 3 of 4\)/);
    const runId = await project.latestRun("WithRetryFlow");
    assert.equal(await project.value("WithRetryFlow", runId, "end", "n"), 3);
    const middle = await onlyTask("WithRetryFlow", runId, "middle");
    assert.equal(middle.attempts.length, 3);
    // The default two minutes between retries apply only when given explicitly.
    for (let i = 1; i < middle.attempts.length; i++) {
      const gap = middle.attempts[i]!.start.startedAt - middle.attempts[i - 1]!.end!.finishedAt;
      assert.ok(gap < 5000, `retry ${i} started ${gap} ms after the failure`);
    }
  });

  void test("@retry minutesBetweenRetries is honoured when given", async () => {
    project.write(
      "retry_wait.ts",
      `${HEADER}
export default class RetryWaitFlow extends FlowSpec {
  @retry({ times: 2, minutesBetweenRetries: 0.02 }) @step start() {
    if (current.retryCount < 2) throw new Error("not yet");
    this.next(this.end);
  }
  @step end() {}
}`,
    );
    const r = await project.cli(["run", "retry_wait.ts"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const task = await onlyTask("RetryWaitFlow", await project.latestRun("RetryWaitFlow"), "start");
    assert.equal(task.attempts.length, 3);
    for (let i = 1; i < 3; i++) {
      const gap = task.attempts[i]!.start.startedAt - task.attempts[i - 1]!.end!.finishedAt;
      assert.ok(gap >= 1150, `retry ${i} waited 0.02 minutes (1.2 s), not ${gap} ms`);
    }
  });

  void test("@catchError stores a throw, a rejection, process.exit, a kill, an out-of-memory, a native crash and a timeout; the join sees which splits failed", async () => {
    project.write(
      "catch_all.ts",
      `${HEADER}
type Failure = { name: string; message: string; stack?: string; code?: string };
export default class CatchAllFlow extends FlowSpec {
  declare kinds: string[]; declare failure: Failure | undefined; declare done: string;
  declare report: Array<[string, string | null, string | null]>; declare late: Failure | undefined;
  @step start() {
    this.kinds = ["fine", "throw", "reject", "exit", "kill", "oom", "abort", "fine too"];
    this.next(this.risky, { foreach: "kinds" });
  }
  @catchError({ var: "failure" }) @resources({ memory: 128 })
  @step async risky() {
    const kind = this.input as string;
    if (kind === "throw") throw new TypeError("thrown in risky");
    if (kind === "reject") await Promise.reject(new Error("rejected in risky"));
    if (kind === "exit") process.exit(3);
    if (kind === "kill") { process.kill(process.pid, "SIGKILL"); await new Promise((r) => setTimeout(r, 5000)); }
    if (kind === "oom") { ${EXHAUST_HEAP} }
    if (kind === "abort") process.abort();
    this.done = kind;
    this.next(this.join);
  }
  @step join(inputs: Inputs<CatchAllFlow>) {
    this.report = inputs.map((i) => [i.input as string, i.failure ? i.failure.name + ": " + i.failure.message : null, i.done ?? null]);
    this.next(this.slow);
  }
  @catchError({ var: "late" }) @timeout({ seconds: 1.5 })
  @step slow() { for (;;); this.next(this.end); }
  @step end() {}
}`,
    );
    const r = await project.cli(["run", "catch_all.ts"], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const runId = await project.latestRun("CatchAllFlow");
    const report = new Map(
      ((await project.value("CatchAllFlow", runId, "end", "report")) as Array<[string, string | null, string | null]>).map(([k, f, d]) => [k, { f, d }]),
    );
    const late = (await project.value("CatchAllFlow", runId, "end", "late")) as { name: string; message: string };
    report.set("timeout", { f: `${late.name}: ${late.message}`, d: null });
    const expected: Record<string, RegExp> = {
      throw: /^TypeError: thrown in risky$/,
      reject: /^Error: rejected in risky$/,
      exit: /process\.exit\(3\)/,
      kill: /killed by SIGKILL/,
      oom: /^OutOfMemoryError: Step 'risky' ran out of memory \(the V8 heap limit was 128 MiB/,
      abort: /killed by SIGABRT \(a native crash/,
      timeout: /^TimeoutError: Step 'slow' timed out after 1\.5 s/,
    };
    for (const kind of ["fine", "fine too"]) {
      assert.deepEqual(report.get(kind), { f: null, d: kind }, `the catch artifact is set only on failed splits (${kind})`);
    }
    for (const [kind, re] of Object.entries(expected)) {
      const got = report.get(kind);
      assert.ok(got, kind);
      assert.equal(got.d, null, `${kind} never finished its step`);
      assert.match(got.f ?? "(no failure)", re, kind);
      assert.doesNotMatch(got.f ?? "", /exited unexpectedly with code/, `${kind} is diagnosed, not a bare exit code`);
    }
    // The console says each was caught, and what it was.
    assert.equal([...r.stderr.matchAll(/@catchError stores the error in 'failure' and the flow goes on/g)].length, 6);
    assert.match(r.stderr, /@catchError stores the error in 'late' and the flow goes on/);
    assert.match(r.stderr, /OutOfMemoryError: Step 'risky' ran out of memory/);
    assert.match(r.stderr, /TimeoutError: Step 'slow' timed out after 1\.5 s/);
    // The stored error keeps its stack.
    const tasks = await tasksOf("CatchAllFlow", runId, "risky");
    const thrown = tasks.find((t) => t.attempts[0]?.end?.error?.message === "thrown in risky");
    assert.ok(thrown, "the throwing split's first attempt recorded its error");
    assert.equal(thrown.attempts.length, 2, "one failed attempt, then the catch attempt");
    assert.equal(thrown.attempts[1]?.end?.status, "completed");
    const failure = (await project.value("CatchAllFlow", runId, "risky", "failure", thrown.taskId)) as { name: string; stack: string };
    assert.equal(failure.name, "TypeError");
    assert.match(failure.stack, /catch_all\.ts:\d+/);
  });

  void test("@catchError after @retry: retries first, then stores the last error", async () => {
    project.write(
      "catch_retry.ts",
      `${HEADER}
export default class CatchRetryFlow extends FlowSpec {
  declare err: { message: string } | undefined;
  @catchError({ var: "err" }) @retry({ times: 2 }) @step start() {
    throw new Error(\`attempt \${current.retryCount} failed\`);
    this.next(this.end);
  }
  @step end() { console.log(\`caught: \${this.err?.message}\`); }
}`,
    );
    const r = await project.cli(["run", "catch_retry.ts"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /caught: attempt 2 failed/);
    const runId = await project.latestRun("CatchRetryFlow");
    const task = await onlyTask("CatchRetryFlow", runId, "start");
    assert.deepEqual(
      task.attempts.map((a) => a.end?.status),
      ["failed", "failed", "failed", "completed"],
    );
  });

  void test("--with catchError:var=err and --with catchError (no artifact) let the flow go on", async () => {
    project.write(
      "with_catch.ts",
      `${HEADER}
export default class WithCatchFlow extends FlowSpec {
  declare reached: boolean;
  @step start() { this.next(this.broken); }
  @step broken() { throw new Error("broken step"); this.next(this.end); }
  @step end() { this.reached = true; }
}`,
    );
    const named = await project.cli(["run", "with_catch.ts", "--with", "catchError:var=err"]);
    assert.equal(named.code, 0, named.stdout + named.stderr);
    let runId = await project.latestRun("WithCatchFlow");
    assert.equal(await project.value("WithCatchFlow", runId, "end", "reached"), true);
    assert.equal(((await project.value("WithCatchFlow", runId, "end", "err")) as { message: string }).message, "broken step");

    const bare = await project.cli(["run", "with_catch.ts", "--with", "catchError"]);
    assert.equal(bare.code, 0, bare.stdout + bare.stderr);
    runId = await project.latestRun("WithCatchFlow");
    assert.equal(await project.value("WithCatchFlow", runId, "end", "reached"), true);
    const names = [...(await project.artifacts("WithCatchFlow", runId, "end")).keys()];
    assert.deepEqual(names.filter((n) => n !== "reached"), [], "no artifact holds the error when var is not given");
  });

  void test("@timeout longer than setTimeout's 24.8 days lets the task run", async () => {
    project.write(
      "long_limit.ts",
      `${HEADER}
export default class LongLimitFlow extends FlowSpec {
  @timeout({ hours: 600 }) @step async start() { await new Promise((r) => setTimeout(r, 300)); this.next(this.end); }
  @step end() {}
}`,
    );
    const r = await project.cli(["run", "long_limit.ts"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  void test("@timeout stops a synchronous busy loop and names the limit", async () => {
    project.write(
      "busy.ts",
      `${HEADER}
export default class BusyFlow extends FlowSpec {
  @timeout({ seconds: 1.5 }) @step start() {
    console.log("spinning");
    for (;;);
    this.next(this.end);
  }
  @step end() {}
}`,
    );
    const t0 = Date.now();
    const r = await project.cli(["run", "busy.ts"]);
    const took = Date.now() - t0;
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.ok(took < 15_000, `the run ended ${took} ms after it started`);
    assert.match(r.stderr, /Step 'start' failed .*TimeoutError: Step 'start' timed out after 1\.5 s \(its @timeout limit\)/);
    const runId = await project.latestRun("BusyFlow");
    const task = await onlyTask("BusyFlow", runId, "start");
    const attempt = task.attempts[0]!;
    assert.equal(attempt.end?.error?.name, "TimeoutError");
    const ran = attempt.end!.finishedAt - attempt.start.startedAt;
    assert.ok(ran >= 1400 && ran < 8000, `the attempt ran ${ran} ms against a 1.5 s limit`);
    assert.equal(alive(attempt.start.pid), false, "the spinning process is gone");
    const t = await Task.get(`BusyFlow/${runId}/start/${task.taskId}`, client);
    assert.equal(t.exception?.name, "TimeoutError");
    assert.match(await t.stdout(), /spinning/);
  });

  void test("@timeout with @retry: a timed-out attempt is retried like any failure", async () => {
    project.write(
      "slow_once.ts",
      `${HEADER}
export default class SlowOnceFlow extends FlowSpec {
  declare attempt: number;
  @retry({ times: 1 }) @timeout({ seconds: 1 }) @step async start() {
    if (current.retryCount === 0) await new Promise((r) => setTimeout(r, 60_000));
    this.attempt = current.retryCount;
    this.next(this.end);
  }
  @step end() {}
}`,
    );
    const r = await project.cli(["run", "slow_once.ts", "--with", "timeout:seconds=30"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stderr, /TimeoutError: Step 'start' timed out after 1 s/, "the step's own @timeout wins over --with");
    assert.match(r.stderr, /retrying \(attempt 2 of 2\)/);
    const runId = await project.latestRun("SlowOnceFlow");
    assert.equal(await project.value("SlowOnceFlow", runId, "end", "attempt"), 1);
  });

  void test("crash diagnostics: a kill, an out-of-memory and a native crash each say which, on the console and in the attempt's error", async () => {
    const cases = [
      { name: "KilledFlow", body: `process.kill(process.pid, "SIGKILL"); await new Promise((r) => setTimeout(r, 5000));`, deco: "", expect: /HostExit: Step 'start': the task's process was killed by SIGKILL/ },
      { name: "TermedFlow", body: `process.kill(process.pid, "SIGTERM"); await new Promise((r) => setTimeout(r, 5000));`, deco: "", expect: /killed by SIGTERM/ },
      { name: "HeapFlow", body: EXHAUST_HEAP, deco: "@resources({ memory: 128 })", expect: /OutOfMemoryError: Step 'start' ran out of memory \(the V8 heap limit was 128 MiB from @resources memory\)/ },
      { name: "AbortFlow", body: `process.abort();`, deco: "", expect: /killed by SIGABRT \(a native crash/ },
    ];
    await Promise.all(
      cases.map(async (c) => {
        project.write(
          `${c.name}.ts`,
          `${HEADER}
export default class ${c.name} extends FlowSpec {
  ${c.deco} @step async start() { ${c.body} this.next(this.end); }
  @step end() {}
}`,
        );
        const r = await project.cli(["run", `${c.name}.ts`], { timeoutMs: 90_000 });
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(r.stderr, /Step 'start' failed/, c.name);
        assert.match(r.stderr, c.expect, c.name);
        assert.doesNotMatch(r.stderr, /exited unexpectedly with code/, `${c.name}: never a bare exit code`);
        const runId = await project.latestRun(c.name);
        const task = await onlyTask(c.name, runId, "start");
        const err = task.attempts[0]!.end!.error!;
        assert.match(`${err.name}: ${err.message}`, c.expect, c.name);
        const t = await Task.get(`${c.name}/${runId}/start/${task.taskId}`, client);
        assert.match(`${t.exception?.name}: ${t.exception?.message}`, c.expect, c.name);
        assert.match(await t.stderr(), c.expect, `${c.name}: the diagnosis is in the task's stderr log`);
      }),
    );
  });

  void test("at scale: a 100-split foreach where 10 splits fail once passes on retry", async () => {
    project.write(
      "hundred.ts",
      `${HEADER}
export default class HundredFlow extends FlowSpec {
  declare items: number[]; declare square: number; declare total: number;
  @step start() { this.items = Array.from({ length: 100 }, (_, i) => i); this.next(this.work, { foreach: "items" }); }
  @retry @step work() {
    const i = this.input as number;
    if (i % 10 === 7 && current.retryCount === 0) throw new Error(\`split \${i} fails once\`);
    this.square = i * i;
    this.next(this.join);
  }
  @step join(inputs: Inputs<HundredFlow>) { this.total = inputs.map((x) => x.square).reduce((a, b) => a + b, 0); this.next(this.end); }
  @step end() {}
}`,
    );
    const r = await project.cli(["run", "hundred.ts"], { timeoutMs: 180_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const runId = await project.latestRun("HundredFlow");
    assert.equal(await project.value("HundredFlow", runId, "end", "total"), Array.from({ length: 100 }, (_, i) => i * i).reduce((a, b) => a + b, 0));
    const tasks = await tasksOf("HundredFlow", runId, "work");
    assert.equal(tasks.length, 100);
    const retried = tasks.filter((t) => t.attempts.length === 2);
    assert.equal(retried.length, 10, "exactly 10 tasks ran twice");
    assert.ok(tasks.every((t) => t.attempts.length <= 2));
    const failedSplits = retried.map((t) => t.attempts[0]!.start.frames.at(-1)!.index).sort((a, b) => a - b);
    assert.deepEqual(failedSplits, [7, 17, 27, 37, 47, 57, 67, 77, 87, 97]);
    for (const t of retried) {
      assert.equal(t.attempts[0]!.end?.status, "failed");
      assert.equal(t.attempts[1]!.end?.status, "completed");
    }
    assert.equal([...r.stderr.matchAll(/Task failed; retrying \(attempt 2 of 4\)/g)].length, 10);
  });

  void test("decorator options are validated; each error names the field and the value", async () => {
    const bad: Array<[string, RegExp]> = [
      [`@retry({ times: 9 })`, /step 'start': @retry\.times must be an integer from 0 to 4, got 9/],
      [`@retry({ times: 1.5 })`, /@retry\.times must be an integer from 0 to 4, got 1\.5/],
      [`@retry({ minutesBetweenRetries: -1 })`, /@retry\.minutesBetweenRetries must be a number of minutes ≥ 0, got -1/],
      [`@timeout({ seconds: -5 })`, /@timeout\.seconds must be a number ≥ 0, got -5/],
      [`@timeout({})`, /@timeout needs a limit greater than zero/],
      [`@timeout({ secs: 5 } as any)`, /@timeout has no option 'secs'; its options are: seconds, minutes, hours/],
      [`@catchError({ var: "not valid" })`, /@catchError\.var must be an artifact name .*got "not valid"/],
      [`@catchError({ var: "e", print: false } as any)`, /@catchError has no option 'print'/],
    ];
    await Promise.all(
      bad.map(async ([deco, re], i) => {
        const file = project.write(
          `bad_deco_${i}.ts`,
          `${HEADER}
export default class BadDeco${i}Flow extends FlowSpec {
  ${deco} @step start() { this.next(this.end); }
  @step end() {}
}`,
        );
        const r = await project.cli(["run", file]);
        assert.notEqual(r.code, 0, deco);
        assert.match(r.stderr, re, `${deco}: ${r.stderr}`);
      }),
    );
    project.write(
      "plain.ts",
      `${HEADER}
export default class PlainFlow extends FlowSpec {
  @step start() { this.next(this.end); }
  @step end() {}
}`,
    );
    const badWith: Array<[string, RegExp]> = [
      ["retry:times=9", /--with retry:times=9: @retry\.times must be an integer from 0 to 4, got "9"/],
      ["retry:times=lots", /@retry\.times must be a number, got "lots"/],
      ["timeout:seconds=-1", /@timeout\.seconds must be a number ≥ 0, got "-1"/],
      ["timeout", /@timeout needs a limit greater than zero/],
      ["catchError:var=1x", /@catchError\.var must be an artifact name .*got "1x"/],
      ["catchError:printException=maybe", /@catchError\.printException must be true or false, got "maybe"/],
      ["retry:tims=2", /@retry has no option 'tims'; its options are: times, minutesBetweenRetries/],
      ["retry:times", /'times' is not key=value/],
      ["retri", /there is no decorator 'retri'/],
    ];
    await Promise.all(
      badWith.map(async ([flag, re]) => {
        const r = await project.cli(["run", "plain.ts", "--with", flag]);
        assert.notEqual(r.code, 0, flag);
        assert.match(r.stderr, re, `--with ${flag}: ${r.stderr}`);
        assert.doesNotMatch(r.stdout, /Workflow starting/, `--with ${flag} fails before any task starts`);
      }),
    );
  });

  void test("the examples in examples/failures run to completion", async () => {
    const expected: Record<string, RegExp> = {
      "retry.ts": /12 rows fetched; 2 shard\(s\) needed a retry/,
      "catch.ts": /skipped record #3: TypeError: record 4 has no score/,
      "timeout.ts": /spin: TimeoutError: Step 'spin' timed out after 1 s/,
      "crash.ts": /out of memory: OutOfMemoryError: Step 'work' ran out of memory/,
    };
    await Promise.all(
      Object.entries(expected).map(async ([file, re]) => {
        const r = await project.cli(["run", path.join(REPO, "examples", "failures", file)], { timeoutMs: 90_000 });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, re, file);
      }),
    );
  });
});
