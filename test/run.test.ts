/** Running flows end to end: console output, metadata, artifacts, code package, every graph shape. */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { Project } from "./helpers/project.js";

const project = new Project();
after(() => project.cleanup());

const HEADER = `import { FlowSpec, step, Parameter, IncludeFile, JSONType, current, type Inputs } from "metaflow-ts";\n`;

void test("hello flow: prefixed live output, stored logs, metadata, system and user tags, exit 0", async () => {
  project.write(
    "hello.ts",
    `${HEADER}
export default class HelloFlow extends FlowSpec {
  declare message: string;
  @step start() { this.message = "hi"; console.log("starting"); console.error("to stderr"); this.next(this.end); }
  @step end() { console.log("message is " + this.message); }
}`,
  );
  const r = await project.cli(["run", "hello.ts", "--tag", "first", "--tag", "second"]);
  assert.equal(r.code, 0, r.stderr);
  const runId = await project.latestRun("HelloFlow");
  assert.match(r.stdout, new RegExp(`^\\[${runId}/start/1 \\(pid \\d+\\)\\] Task is starting\\.$`, "m"));
  assert.match(r.stdout, new RegExp(`^\\[${runId}/start/1 \\(pid \\d+\\)\\] starting$`, "m"));
  assert.match(r.stderr, new RegExp(`^\\[${runId}/start/1 \\(pid \\d+\\)\\] to stderr$`, "m"));
  assert.match(r.stdout, new RegExp(`^\\[${runId}/end/2 \\(pid \\d+\\)\\] message is hi$`, "m"));
  assert.match(r.stdout, /Done! HelloFlow\/\d+: 2 tasks/);

  const run = await project.metadata.getRun("HelloFlow", runId);
  assert.deepEqual(run?.tags, ["first", "second"]);
  assert.ok(run?.systemTags.includes(`user:${process.env.METAFLOW_USER || process.env.USER || "root"}`));
  assert.ok(run?.systemTags.some((t) => t.startsWith("metaflow_version:")));
  assert.equal((await project.metadata.getRunEnd("HelloFlow", runId))?.status, "completed");
  assert.deepEqual((await project.metadata.listSteps("HelloFlow", runId)).sort(), ["end", "start"]);
  assert.equal(await project.value("HelloFlow", runId, "end", "message"), "hi");

  const fs = await import("node:fs");
  const log = fs.readFileSync(`${project.root}/flows/HelloFlow/${runId}/start/1/attempt-0.stdout.log`, "utf8");
  assert.match(log, /^\d{4}-\d\d-\d\dT[^\t]+\tstarting$/m);
  const err = fs.readFileSync(`${project.root}/flows/HelloFlow/${runId}/start/1/attempt-0.stderr.log`, "utf8");
  assert.match(err, /\tto stderr$/m);

  // The exact code is stored, content-addressed: the manifest lists the flow source.
  const manifest = JSON.parse((await project.store.get(run!.codePackage)).toString()) as { files: Record<string, string>; bundle: string };
  assert.ok(manifest.files["hello.ts"], JSON.stringify(manifest));
  assert.match((await project.store.get(manifest.files["hello.ts"]!)).toString(), /class HelloFlow/);
  assert.match((await project.store.get(manifest.bundle)).toString(), /HelloFlow/);
});

void test("static branch and join: inputs by step name, mergeArtifacts with exclude and include", async () => {
  project.write(
    "branch.ts",
    `${HEADER}
export default class BranchFlow extends FlowSpec {
  declare shared: string; declare x: number; declare only: string; declare sum: number; declare kept: string;
  @step start() { this.shared = "same"; this.next(this.a, this.b); }
  @step a() { this.x = 1; this.only = "from a"; this.next(this.join); }
  @step b() { this.x = 2; this.next(this.join); }
  @step join(inputs: Inputs<BranchFlow>) {
    this.sum = inputs.a.x + inputs.b.x;
    if (inputs.length !== 2 || inputs[0]!.x !== 1) throw new Error("bad inputs");
    this.mergeArtifacts(inputs, { exclude: ["x"] });
    this.next(this.end);
  }
  @step end() { this.kept = this.shared + "/" + this.only; }
}`,
  );
  const r = await project.cli(["run", "branch.ts"]);
  assert.equal(r.code, 0, r.stderr);
  const runId = await project.latestRun("BranchFlow");
  assert.equal(await project.value("BranchFlow", runId, "end", "sum"), 3);
  assert.equal(await project.value("BranchFlow", runId, "end", "kept"), "same/from a");
  assert.equal((await project.artifacts("BranchFlow", runId, "end")).has("x"), false);
});

void test("mergeArtifacts names the conflicting artifact and says how to fix it", async () => {
  project.write(
    "conflict.ts",
    `${HEADER}
export default class ConflictFlow extends FlowSpec {
  declare x: number;
  @step start() { this.next(this.a, this.b); }
  @step a() { this.x = 1; this.next(this.join); }
  @step b() { this.x = 2; this.next(this.join); }
  @step join(inputs: Inputs<ConflictFlow>) { this.mergeArtifacts(inputs); this.next(this.end); }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "conflict.ts"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Step 'join' failed/);
  assert.match(r.stderr, /disagree on 'x'/);
  assert.match(r.stderr, /at conflict.ts:8:\d+/);
  assert.match(r.stderr, /exclude: \["x"\]/);
});

void test("foreach, nested foreach, input and index, join sees every split in order", async () => {
  project.write(
    "nested.ts",
    `${HEADER}
export default class NestedFlow extends FlowSpec {
  declare outer: string[]; declare inner: number[]; declare label: string; declare labels: string[]; declare all: string[];
  @step start() { this.outer = ["a", "b", "c"]; this.next(this.level1, { foreach: "outer" }); }
  @step level1() { this.inner = [this.index * 10, this.index * 10 + 1]; this.next(this.level2, { foreach: "inner" }); }
  @step level2() { this.label = String(this.input) + "@" + this.index; this.next(this.join2); }
  @step join2(inputs: Inputs<NestedFlow>) { this.labels = inputs.map((i) => i.label); this.mergeArtifacts(inputs, { include: ["outer"] }); this.next(this.join1); }
  @step join1(inputs: Inputs<NestedFlow>) { this.all = inputs.map((i) => i.labels.join(",")); this.next(this.end); }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "nested.ts"]);
  assert.equal(r.code, 0, r.stderr);
  const runId = await project.latestRun("NestedFlow");
  assert.deepEqual(await project.value("NestedFlow", runId, "end", "all"), ["0@0,1@1", "10@0,11@1", "20@0,21@1"]);
  assert.equal((await project.metadata.listTasks("NestedFlow", runId, "level2")).length, 6);
});

void test("switch picks a case by an artifact's value; a case naming its own step recurses", async () => {
  project.write(
    "switch.ts",
    `${HEADER}
export default class SwitchFlow extends FlowSpec {
  declare n: number; declare level: string; declare path: string[];
  @step start() { this.n = 0; this.path = []; this.next(this.loop); }
  @step loop() {
    this.n += 1; this.path = [...this.path, "loop" + this.n];
    this.level = this.n < 3 ? "again" : "done";
    this.next({ again: this.loop, done: this.finish }, { condition: "level" });
  }
  @step finish() { this.next(this.end); }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "switch.ts"]);
  assert.equal(r.code, 0, r.stderr);
  const runId = await project.latestRun("SwitchFlow");
  assert.deepEqual(await project.value("SwitchFlow", runId, "end", "path"), ["loop1", "loop2", "loop3"]);
  assert.equal((await project.metadata.listTasks("SwitchFlow", runId, "loop")).length, 3);
});

void test("parameters: flags, defaults, METAFLOW_RUN_ env, JSONType, Boolean, IncludeFile, read-only, current", async () => {
  project.write("data/rows.csv", "a,b\n1,2\n");
  project.write(
    "params.ts",
    `${HEADER}
export default class ParamFlow extends FlowSpec {
  alpha = Parameter("alpha", { default: 0.5, help: "rate" });
  name = Parameter("name", { type: String, required: true });
  grid = Parameter("grid", { type: JSONType, default: { depth: [2, 4] } });
  flag = Parameter("flag", { type: Boolean, default: false });
  fromEnv = Parameter("from-env", { default: "unset" });
  rows = IncludeFile("rows", { default: "data/rows.csv" });
  declare seen: string; declare who: string; declare blocked: string;
  @step async start() {
    await new Promise((r) => setTimeout(r, 10));
    this.seen = [this.alpha, this.name, JSON.stringify(this.grid), this.flag, this.rows.split("\\n")[1]].join("|");
    this.who = [current.flowName, current.stepName, current.taskId, current.retryCount, current.pathspec.split("/").length, current.isRunningFlow].join("|");
    try { (this as any).alpha = 3; this.blocked = "no"; } catch (e) { this.blocked = (e as Error).message; }
    this.next(this.end);
  }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "params.ts", "--name", "bob", "--alpha", "0.25", "--grid", '{"depth":[1]}', "--flag", "true"], {
    env: { "METAFLOW_RUN_FROM_ENV": "x" },
  });
  assert.equal(r.code, 0, r.stderr);
  const runId = await project.latestRun("ParamFlow");
  assert.equal(await project.value("ParamFlow", runId, "start", "seen"), '0.25|bob|{"depth":[1]}|true|1,2');
  assert.equal(await project.value("ParamFlow", runId, "start", "who"), "ParamFlow|start|1|0|4|true");
  assert.match(String(await project.value("ParamFlow", runId, "start", "blocked")), /Parameter 'alpha' is read-only/);
  assert.equal(await project.value("ParamFlow", runId, "end", "fromEnv"), "x");
  assert.equal(await project.value("ParamFlow", runId, "end", "rows"), "a,b\n1,2\n");
  const run = await project.metadata.getRun("ParamFlow", runId);
  assert.equal(run?.parameters.alpha, 0.25);
});

void test("Buffers and typed arrays round-trip as raw bytes; equal artifacts are stored once", async () => {
  project.write(
    "binary.ts",
    `${HEADER}
export default class BinaryFlow extends FlowSpec {
  declare buf: Buffer; declare floats: Float64Array; declare m: Map<string, Set<number>>; declare when: Date; declare big: bigint; declare ok: boolean;
  @step start() {
    this.buf = Buffer.alloc(1 << 20, 7);
    this.floats = new Float64Array([1.5, 2.5, 3.5]);
    this.m = new Map([["k", new Set([1, 2])]]);
    this.when = new Date(0); this.big = 2n ** 70n;
    this.next(this.end);
  }
  @step end() {
    this.ok = Buffer.isBuffer(this.buf) && this.buf.length === 1 << 20 && this.buf[5] === 7 &&
      this.floats[1] === 2.5 && this.m.get("k")!.has(2) && this.when.getTime() === 0 && this.big === 2n ** 70n;
  }
}`,
  );
  const first = await project.cli(["run", "binary.ts"]);
  assert.equal(first.code, 0, first.stderr);
  const runId = await project.latestRun("BinaryFlow");
  assert.equal(await project.value("BinaryFlow", runId, "end", "ok"), true);
  const refs = await project.artifacts("BinaryFlow", runId, "start");
  assert.equal(refs.get("buf")?.encoding, "buffer");
  assert.equal(refs.get("floats")?.typedArray, "Float64Array");
  // A second run stores nothing new for identical values.
  const fs = await import("node:fs");
  const count = () => fs.readdirSync(`${project.root}/data`, { recursive: true }).length;
  const before = count();
  const second = await project.cli(["run", "binary.ts"]);
  assert.equal(second.code, 0, second.stderr);
  assert.equal(count(), before);
});

void test("one user: METAFLOW_USER from the config file is what configure show displays and what runs record", async () => {
  project.write(
    "whoami.ts",
    `${HEADER}
export default class WhoAmIFlow extends FlowSpec {
  declare user: string;
  @step start() { this.user = current.username; this.next(this.end); }
  @step end() {}
}`,
  );
  const home = project.write("mfhome/config.json", JSON.stringify({ METAFLOW_USER: "fileuser" }));
  const env = { METAFLOW_HOME: `${project.dir}/mfhome`, USER: "osuser", METAFLOW_USER: "" };
  assert.ok(home);
  const show = await project.cli(["configure", "show"], { env });
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, /METAFLOW_USER\s+fileuser/);
  const r = await project.cli(["run", "whoami.ts"], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /executing WhoAmIFlow for user:fileuser/);
  const runId = await project.latestRun("WhoAmIFlow");
  assert.equal((await project.metadata.getRun("WhoAmIFlow", runId))?.user, "fileuser");
  assert.equal(await project.value("WhoAmIFlow", runId, "start", "user"), "fileuser");
});
