/** Task isolation and parallelism: what one task does cannot reach another or the run's bookkeeping. */
import assert from "node:assert/strict";
import * as os from "node:os";
import { after, test } from "node:test";
import { Project } from "./helpers/project.js";

const project = new Project();
after(() => project.cleanup());

const HEADER = `import { FlowSpec, step, type Inputs } from "metaflow-ts";\n`;

void test("each task gets fresh module state, globals and process.env, even on one worker host", async () => {
  project.write(
    "state.ts",
    `${HEADER}
let counter = 0;
export default class StateFlow extends FlowSpec {
  declare items: number[]; declare seen: string; declare seens: string[];
  @step start() { this.items = [1, 2, 3, 4]; counter += 100; (globalThis as any).leak = "x"; process.env.LEAK = "y"; this.next(this.work, { foreach: "items" }); }
  @step work() {
    counter += 1;
    this.seen = [counter, (globalThis as any).leak ?? "none", process.env.LEAK ?? "none"].join("|");
    (globalThis as any).leak = "from work"; process.env.LEAK = "from work";
    this.next(this.join);
  }
  @step join(inputs: Inputs<StateFlow>) { this.seens = inputs.map((i) => i.seen); this.next(this.end); }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "state.ts", "--max-workers", "1"]);
  assert.equal(r.code, 0, r.stderr);
  const pids = new Set([...r.stdout.matchAll(/\(pid (\d+)\)/g)].map((m) => m[1]));
  assert.equal(pids.size, 1, "with --max-workers 1 every task ran in the same host process");
  const runId = await project.latestRun("StateFlow");
  assert.deepEqual(await project.value("StateFlow", runId, "end", "seens"), ["1|none|none", "1|none|none", "1|none|none", "1|none|none"]);
  assert.equal(process.env.LEAK, undefined);
});

void test("tasks run in parallel up to --max-workers", async () => {
  project.write(
    "sleepy.ts",
    `${HEADER}
export default class SleepyFlow extends FlowSpec {
  declare items: number[]; declare span: number[]; declare spans: number[][];
  @step start() { this.items = [0, 1, 2, 3]; this.next(this.nap, { foreach: "items" }); }
  @step async nap() { const t0 = Date.now(); await new Promise((r) => setTimeout(r, 2000)); this.span = [t0, Date.now()]; this.next(this.join); }
  @step join(inputs: Inputs<SleepyFlow>) { this.spans = inputs.map((i) => i.span); this.next(this.end); }
  @step end() {}
}`,
  );
  // How many naps were in progress at once, at the busiest moment.
  const concurrency = (spans: number[][]) =>
    Math.max(...spans.map(([s]) => spans.filter(([a, b]) => a! <= s! && s! < b!).length));
  const parallel = await project.cli(["run", "sleepy.ts", "--max-workers", "4"]);
  assert.equal(parallel.code, 0, parallel.stderr);
  const spans = (await project.value("SleepyFlow", await project.latestRun("SleepyFlow"), "end", "spans")) as number[][];
  // Waiting tasks grow the pool past the core count (a host per core first, more once they are all busy).
  const expected = Math.min(4, os.availableParallelism() + 1);
  assert.ok(concurrency(spans) >= expected, `${expected} naps overlapped with --max-workers 4 on ${os.availableParallelism()} cores: ${JSON.stringify(spans)}`);

  const serial = await project.cli(["run", "sleepy.ts", "--max-workers", "1"]);
  assert.equal(serial.code, 0, serial.stderr);
  const s2 = (await project.value("SleepyFlow", await project.latestRun("SleepyFlow"), "end", "spans")) as number[][];
  assert.equal(concurrency(s2), 1, "with one worker, naps never overlap");
});

for (const [label, body, expect] of [
  ["process.exit(3)", `process.exit(3);`, /process\.exit\(3\)/],
  ["process.exit caught by the step", `try { process.exit(4); } catch { /* still asked to exit */ }`, /process\.exit\(4\)/],
  ["process.chdir", `process.chdir("/tmp");`, /process\.chdir\("\/tmp"\) is not allowed in a step/],
  ["an uncaught rejection", `Promise.reject(new Error("stray rejection")); await new Promise((r) => setTimeout(r, 200));`, /stray rejection/],
  ["a throw from a timer callback", `setTimeout(() => { throw new Error("timer boom"); }, 10); await new Promise((r) => setTimeout(r, 200));`, /timer boom/],
  ["a hard crash of the process", `process.kill(process.pid, "SIGKILL"); await new Promise((r) => setTimeout(r, 2000));`, /killed by SIGKILL/],
] as const) {
  void test(`${label} in one task fails that task only; the run records it and exits non-zero`, async () => {
    const name = `Crash${label.replace(/[^a-z]/gi, "")}Flow`;
    project.write(
      `${name}.ts`,
      `${HEADER}
export default class ${name} extends FlowSpec {
  declare ok: string;
  @step start() { this.next(this.bad, this.good); }
  @step async bad() { ${body} this.next(this.join); }
  @step async good() { await new Promise((r) => setTimeout(r, 300)); this.ok = "yes"; this.next(this.join); }
  @step join(inputs: Inputs<${name}>) { this.next(this.end); }
  @step end() {}
}`,
    );
    const r = await project.cli(["run", `${name}.ts`]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /Step 'bad' failed/);
    assert.match(r.stderr, expect);
    const runId = await project.latestRun(name);
    const end = await project.metadata.getRunEnd(name, runId);
    assert.equal(end?.status, "failed");
    assert.equal(end?.failedStep, "bad");
    const bad = await project.metadata.getTask(name, runId, "bad", (await project.metadata.listTasks(name, runId, "bad"))[0]!);
    assert.equal(bad?.attempts[0]?.end?.status, "failed");
    assert.match(bad?.attempts[0]?.end?.error?.message ?? "", expect);
    // The sibling task was not taken down: it finished and its artifact is stored.
    assert.equal(await project.value(name, runId, "good", "ok"), "yes");
  });
}

void test("--isolation process runs each task in a process of its own", async () => {
  project.write(
    "proc.ts",
    `${HEADER}
export default class ProcFlow extends FlowSpec {
  declare pid: number; declare pids: number[];
  @step start() { this.pid = process.pid; this.next(this.mid); }
  @step mid() { this.pids = [this.pid, process.pid]; this.next(this.end); }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "proc.ts", "--isolation", "process"]);
  assert.equal(r.code, 0, r.stderr);
  const pids = (await project.value("ProcFlow", await project.latestRun("ProcFlow"), "end", "pids")) as number[];
  assert.notEqual(pids[0], pids[1]);
});

void test("artifacts read in a step belong to the step's realm: instanceof Map, Array, Date, Float64Array hold", async () => {
  project.write(
    "realm.ts",
    `${HEADER}
export default class RealmFlow extends FlowSpec {
  declare m: Map<string, number[]>; declare d: Date; declare f: Float64Array; declare list: { a: number }[];
  declare checks: string; declare joined: string;
  @step start() {
    this.m = new Map([["k", [1, 2]]]); this.d = new Date(5); this.f = new Float64Array([1.5]); this.list = [{ a: 1 }, { a: 2 }];
    this.next(this.each, { foreach: "list" });
  }
  @step each() {
    this.checks = [
      this.m instanceof Map, this.m.get("k") instanceof Array, this.d instanceof Date, this.f instanceof Float64Array,
      this.list instanceof Array, this.input instanceof Object, this.f[0] === 1.5,
    ].join(",");
    this.next(this.join);
  }
  @step join(inputs: Inputs<RealmFlow>) {
    this.joined = [inputs instanceof Array, inputs[0]!.m instanceof Map, inputs.every((i) => i.checks === inputs[0]!.checks)].join(",");
    this.checks = inputs[0]!.checks;
    this.next(this.end);
  }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "realm.ts"]);
  assert.equal(r.code, 0, r.stderr);
  const runId = await project.latestRun("RealmFlow");
  assert.equal(await project.value("RealmFlow", runId, "end", "checks"), "true,true,true,true,true,true,true");
  assert.equal(await project.value("RealmFlow", runId, "end", "joined"), "true,true,true");
});

void test("a worker host is replaced after 500 tasks and no task is lost on the way", async () => {
  project.write(
    "many.ts",
    `${HEADER}
export default class ManyFlow extends FlowSpec {
  declare items: number[]; declare total: number;
  @step start() { this.items = Array.from({ length: 520 }, (_, i) => i); this.next(this.each, { foreach: "items" }); }
  @step each() { this.total = this.input as number; this.next(this.join); }
  @step join(inputs: Inputs<ManyFlow>) { this.total = inputs.reduce((a, i) => a + i.total, 0); this.next(this.end); }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "many.ts", "--max-workers", "1", "--max-num-splits", "520"], { timeoutMs: 120000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await project.value("ManyFlow", await project.latestRun("ManyFlow"), "end", "total"), (519 * 520) / 2);
  const pids = new Set([...r.stdout.matchAll(/\(pid (\d+)\)/g)].map((m) => m[1]));
  assert.ok(pids.size >= 2, `tasks ran in ${pids.size} host(s)`);
});

void test("a host killed in one task is not called out of memory because an earlier task printed a heap error", async () => {
  project.write(
    "stale_tail.ts",
    `${HEADER}
import { spawnSync } from "node:child_process";
export default class StaleTailFlow extends FlowSpec {
  @step start() {
    // Straight to the host's stderr, past the task's console: what a crashing child prints.
    spawnSync("sh", ["-c", "echo 'FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory' >&2"], { stdio: "inherit" });
    this.next(this.end);
  }
  @step end() {
    spawnSync("sh", ["-c", "kill -9 $PPID"]);
  }
}`,
  );
  const r = await project.cli(["run", "stale_tail.ts", "--max-workers", "1"]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const pids = new Set([...r.stdout.matchAll(/\(pid (\d+)\)/g)].map((m) => m[1]));
  assert.equal(pids.size, 1, "both tasks ran on one host");
  assert.match(r.stderr, /Step 'end' failed/);
  assert.match(r.stderr, /Step 'end' failed .*HostExit: .*killed by SIGKILL/);
  assert.doesNotMatch(r.stderr, /OutOfMemoryError|ran out of memory/);
});
