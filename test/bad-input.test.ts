/** Bad input at every entry point: a clear error naming the bad value, nothing stored corrupted. */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { aliveTaskPids, Project, waitForOutput } from "./helpers/project.js";

const project = new Project();
after(() => project.cleanup());

const HEADER = `import { FlowSpec, step, Parameter, type Inputs } from "metaflow-ts";\n`;
const flow = (name: string, body: string) =>
  project.write(`${name}.ts`, `${HEADER}\nexport default class ${name} extends FlowSpec {\n${body}\n}\n`);

void test("a missing flow file, a file without a FlowSpec, and a file that does not compile", async () => {
  const missing = await project.cli(["run", "nope.ts"]);
  assert.equal(missing.code, 1, missing.stdout + missing.stderr);
  assert.match(missing.stderr, /No such file: nope\.ts/);

  project.write("plain.ts", `export const x = 1;\n`);
  const plain = await project.cli(["run", "plain.ts"]);
  assert.equal(plain.code, 1, plain.stdout + plain.stderr);
  assert.match(plain.stderr, /exports no FlowSpec subclass/);
  assert.match(plain.stderr, /export default class MyFlow extends FlowSpec/);

  project.write("broken.ts", `${HEADER}\nexport default class Broken extends FlowSpec {\n  @step start() { this.next(this.end) \n  @step end() {}\n}\n`);
  const broken = await project.cli(["run", "broken.ts"]);
  assert.equal(broken.code, 1, broken.stdout + broken.stderr);
  assert.match(broken.stderr, /broken\.ts:\d+:\d+: error:/);
});

void test("graph errors: run refuses to start and check names step, file:line and the fix", async () => {
  flow(
    "BadGraph",
    `  @step start() { this.next(this.middle); }
  @step orphan() { this.next(this.end); }
  @step end() {}`,
  );
  const check = await project.cli(["check", "BadGraph.ts"]);
  assert.equal(check.code, 1, check.stdout + check.stderr);
  assert.match(check.stderr, /BadGraph\.ts:4:.*step 'start'.*middle/);
  assert.match(check.stderr, /Fix:/);
  assert.match(check.stderr, /orphan/);
  const run = await project.cli(["run", "BadGraph.ts"]);
  assert.equal(run.code, 1, run.stdout + run.stderr);
  assert.deepEqual(await project.metadata.listRuns("BadGraph"), []);
});

void test("unknown flags and bad option values are usage errors (exit 2) naming the flag", async () => {
  flow("Tiny", `  @step start() { this.next(this.end); }\n  @step end() {}`);
  const unknown = await project.cli(["run", "Tiny.ts", "--alhpa", "1"]);
  assert.equal(unknown.code, 2, unknown.stdout + unknown.stderr);
  assert.match(unknown.stderr, /--alhpa/);
  const workers = await project.cli(["run", "Tiny.ts", "--max-workers", "zero"]);
  assert.equal(workers.code, 2, workers.stdout + workers.stderr);
  assert.match(workers.stderr, /--max-workers expects a whole number, got "zero"/);
  const deco = await project.cli(["run", "Tiny.ts", "--with", "retyr"]);
  assert.notEqual(deco.code, 0);
  assert.match(deco.stderr, /no decorator 'retyr'/);
  assert.deepEqual(await project.metadata.listRuns("Tiny"), []);
});

void test("a parameter of the wrong type or a missing required one fails before any task starts", async () => {
  flow(
    "Params",
    `  alpha = Parameter("alpha", { default: 0.5 });
  epochs = Parameter("epochs", { type: Number, required: true });
  @step start() { this.next(this.end); }
  @step end() {}`,
  );
  const wrong = await project.cli(["run", "Params.ts", "--epochs", "3", "--alpha", "fast"]);
  assert.equal(wrong.code, 1, wrong.stdout + wrong.stderr);
  assert.match(wrong.stderr, /Parameter 'alpha' expects a number, got "fast"/);
  const missing = await project.cli(["run", "Params.ts"]);
  assert.equal(missing.code, 1, missing.stdout + missing.stderr);
  assert.match(missing.stderr, /Parameter 'epochs' is required: pass --epochs/);
  assert.doesNotMatch(missing.stdout, /Task is starting/);
  assert.deepEqual(await project.metadata.listRuns("Params"), []);
});

void test("a step that throws or rejects: headline names the step, the error and its place in the flow file", async () => {
  flow(
    "Throws",
    `  @step start() { this.next(this.boom); }
  @step boom() {
    if (this.index === undefined) throw new RangeError("the model diverged");
    this.next(this.end);
  }
  @step end() {}`,
  );
  const r = await project.cli(["run", "Throws.ts"]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /Step 'boom' failed .*RangeError: the model diverged/);
  assert.match(r.stderr, /at Throws\.ts:6:\d+/);

  flow(
    "Rejects",
    `  @step start() { this.next(this.boom); }
  @step async boom() { await Promise.resolve(); await Promise.reject(new Error("async nope")); this.next(this.end); }
  @step end() {}`,
  );
  const r2 = await project.cli(["run", "Rejects.ts"]);
  assert.equal(r2.code, 1, r2.stdout + r2.stderr);
  assert.match(r2.stderr, /Step 'boom' failed .*Error: async nope/);
});

void test("an unstorable artifact fails the task naming the step and the artifact", async () => {
  flow(
    "Unstorable",
    `  declare model: unknown;
  @step start() { this.model = { fit: () => 1 }; this.next(this.end); }
  @step end() {}`,
  );
  const r = await project.cli(["run", "Unstorable.ts"]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /Step 'start' cannot store artifact 'model': .*function at \.fit/);
});

void test("an inherited artifact changed in place into something unstorable fails naming the step and the artifact", async () => {
  flow(
    "MutatedUnstorable",
    `  declare config: { lr: number; fit?: unknown; model?: unknown };
  @step start() { this.config = { lr: 0.1 }; this.next(this.train); }
  @step train() { this.config.fit = () => 1; this.next(this.end); }
  @step end() {}`,
  );
  const r = await project.cli(["run", "MutatedUnstorable.ts"]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /Step 'train' cannot store artifact 'config': .*function/);

  flow(
    "MutatedInstance",
    `  declare config: { lr: number; model?: unknown };
  @step start() { this.config = { lr: 0.1 }; this.next(this.train); }
  @step train() { class Model { w = 1; } this.config.model = new Model(); this.next(this.end); }
  @step end() {}`,
  );
  const r2 = await project.cli(["run", "MutatedInstance.ts"]);
  assert.equal(r2.code, 1, r2.stdout + r2.stderr);
  assert.match(r2.stderr, /Step 'train' cannot store artifact 'config': .*class Model/);
});

void test("a foreach over a non-iterable names the artifact; more splits than --max-num-splits names the option", async () => {
  flow(
    "NotAList",
    `  declare items: unknown;
  @step start() { this.items = 42; this.next(this.each, { foreach: "items" }); }
  @step each() { this.next(this.join); }
  @step join(inputs: Inputs<NotAList>) { this.next(this.end); }
  @step end() {}`,
  );
  const r = await project.cli(["run", "NotAList.ts"]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /foreach over artifact 'items', which is a number/);

  flow(
    "TooMany",
    `  declare items: number[];
  @step start() { this.items = Array.from({ length: 12 }, (_, i) => i); this.next(this.each, { foreach: "items" }); }
  @step each() { this.next(this.join); }
  @step join(inputs: Inputs<TooMany>) { this.next(this.end); }
  @step end() {}`,
  );
  const r2 = await project.cli(["run", "TooMany.ts", "--max-num-splits", "10"]);
  assert.equal(r2.code, 1, r2.stdout + r2.stderr);
  assert.match(r2.stderr, /12 elements, more than --max-num-splits \(10\)/);
  const ok = await project.cli(["run", "TooMany.ts", "--max-num-splits", "12"]);
  assert.equal(ok.code, 0, ok.stderr);
});

void test("a step that never returns is stopped by Ctrl-C: run marked failed, no worker left behind", async () => {
  flow(
    "Forever",
    `  @step start() { this.next(this.spin); }
  @step spin() { const t = Date.now(); while (Date.now() - t < 120000) { /* busy */ } this.next(this.end); }
  @step end() {}`,
  );
  const child = project.spawn(["run", "Forever.ts"]);
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (t: string) => (out += t));
  let err = "";
  child.stderr.setEncoding("utf8").on("data", (t: string) => (err += t));
  await waitForOutput(() => out, /\/spin\/\d+ \(pid \d+\)\] Task is starting/);
  const t0 = Date.now();
  child.kill("SIGINT");
  const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
  assert.ok(Date.now() - t0 < 5000, "stopped within 5 s");
  assert.equal(code, 130, err);
  assert.match(err, /interrupted/i);
  assert.deepEqual(aliveTaskPids(out), [], "no worker host survives the run");
  const runId = await project.latestRun("Forever");
  assert.equal((await project.metadata.getRunEnd("Forever", runId))?.status, "failed");
  // The stopped attempt's record says why it ended, not how its process died.
  const [spin] = await project.metadata.listTasks("Forever", runId, "spin");
  const attempt = (await project.metadata.getTask("Forever", runId, "spin", spin!))!.attempts[0]!;
  assert.equal(attempt.end?.error?.code, "cancelled", JSON.stringify(attempt.end));
  assert.match(attempt.end!.error!.message, /Step 'spin' was stopped because the run was interrupted/);
});

void test("two runs of the same flow at the same time in one datastore both succeed, nothing mixed", async () => {
  flow(
    "Twice",
    `  tag = Parameter("label", { default: "x" });
  declare items: string[]; declare out: string[];
  @step start() { this.items = [this.tag + "1", this.tag + "2", this.tag + "3"]; this.next(this.each, { foreach: "items" }); }
  @step each() { this.items = [String(this.input).toUpperCase()]; this.next(this.join); }
  @step join(inputs: Inputs<Twice>) { this.out = inputs.map((i) => i.items[0]!); this.next(this.end); }
  @step end() {}`,
  );
  const [a, b] = await Promise.all([
    project.cli(["run", "Twice.ts", "--label", "a"]),
    project.cli(["run", "Twice.ts", "--label", "b"]),
  ]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const runs = await project.metadata.listRuns("Twice");
  assert.equal(runs.length, 2);
  const outs = await Promise.all(runs.map((id) => project.value("Twice", id, "end", "out")));
  assert.deepEqual(outs.map((o) => JSON.stringify(o)).sort(), ['["A1","A2","A3"]', '["B1","B2","B3"]']);
});

void test("--run-id-file: written as soon as the run starts; an unwritable path fails before any run exists", async () => {
  flow("IdFile", `  @step start() { this.next(this.end); }\n  @step end() {}`);
  const ok = await project.cli(["run", "IdFile.ts", "--run-id-file", "run-id.txt"]);
  assert.equal(ok.code, 0, ok.stderr);
  const fs = await import("node:fs");
  assert.equal(fs.readFileSync(`${project.dir}/run-id.txt`, "utf8"), await project.latestRun("IdFile"));

  const bad = await project.cli(["run", "IdFile.ts", "--run-id-file", "no/such/dir/id.txt"]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /--run-id-file no\/such\/dir\/id\.txt: cannot write it \(ENOENT\)/);
  // The earlier run is untouched and no half-started run was added.
  assert.equal((await project.metadata.listRuns("IdFile")).length, 1);
});

void test("an empty or overlong --tag is refused before the run starts", async () => {
  flow("Tags", `  @step start() { this.next(this.end); }\n  @step end() {}`);
  const empty = await project.cli(["run", "Tags.ts", "--tag", ""]);
  assert.equal(empty.code, 2, empty.stderr);
  assert.match(empty.stderr, /tag/i);
  const long = await project.cli(["run", "Tags.ts", "--tag", "x".repeat(600)]);
  assert.equal(long.code, 2, long.stderr);
  assert.match(long.stderr, /600/);
  assert.deepEqual(await project.metadata.listRuns("Tags"), []);
});

void test("help: no arguments prints the commands; run FLOW --help lists the flow's parameters", async () => {
  const none = await project.cli([]);
  assert.equal(none.code, 0);
  assert.match(none.stdout, /Commands:[\s\S]*run[\s\S]*resume[\s\S]*logs/);
  flow(
    "Helpful",
    `  alpha = Parameter("alpha", { default: 0.5, help: "Learning rate" });
  @step start() { this.next(this.end); }
  @step end() {}`,
  );
  const help = await project.cli(["run", "Helpful.ts", "--help"]);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /--alpha <value>\s+Learning rate \(default: 0\.5\) \[env METAFLOW_RUN_ALPHA\]/);
  assert.deepEqual(await project.metadata.listRuns("Helpful"), []);
});
