/**
 * A truncated or corrupt metadata file (`_run.json`, `_end.json`, `attempt-N.end.json`, ...) makes
 * that one run or task unreadable — with an error naming the file — and never breaks the listing
 * of the others: the CLI's `runs`, `tag list` and `dump`, and the client's `runs()`/`latestRun()`.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { Flow, MetadataCorruptError, Run, Step, Task, namespace } from "../src/index.js";
import { LocalMetadata } from "../src/metadata/local.js";
import { Project } from "./helpers/project.js";

const FLOW = `import { FlowSpec, step, type Inputs } from "metaflow-ts";
export default class BrokenFlow extends FlowSpec {
  declare items: number[]; declare sq: number; declare total: number;
  @step start() { this.items = [1, 2, 3]; this.next(this.square, { foreach: "items" }); }
  @step square() { this.sq = (this.input as number) ** 2; this.next(this.join); }
  @step join(inputs: Inputs<BrokenFlow>) { this.total = inputs.reduce((a, i) => a + i.sq, 0); this.next(this.end); }
  @step end() {}
}
`;

let project: Project;
let runs: string[] = [];
let corruptTask = "";
const files: Record<string, string> = {};

function truncate(file: string): void {
  const text = fs.readFileSync(file, "utf8");
  fs.writeFileSync(file, text.slice(0, Math.floor(text.length / 2)));
}

before(async () => {
  project = new Project();
  project.write("flow.ts", FLOW);
  for (let i = 0; i < 4; i++) {
    const r = await project.cli(["run", "flow.ts"]);
    assert.equal(r.code, 0, r.stderr);
  }
  runs = await project.metadata.listRuns("BrokenFlow"); // newest first: [r4, r3, r2, r1]
  const md = new LocalMetadata(project.root);
  const runDir = (id: string) => md.runDir("BrokenFlow", id);
  files.run = path.join(runDir(runs[2]!), "_run.json");
  files.end = path.join(runDir(runs[1]!), "_end.json");
  corruptTask = (await md.listTasks("BrokenFlow", runs[0]!, "square"))[1]!;
  files.attempt = path.join(runDir(runs[0]!), "square", corruptTask, "attempt-0.end.json");
  truncate(files.run);
  truncate(files.end);
  truncate(files.attempt);
  namespace(null);
});
after(() => project?.cleanup());

void describe("a truncated metadata file", () => {
  void test("metaflow runs lists every readable run and names each unreadable file", async () => {
    const r = await project.cli(["runs", "BrokenFlow", "--all-namespaces"]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /Internal error|SyntaxError/);
    const listed = [...r.stdout.matchAll(/^(\d+)\s/gm)].map((m) => m[1]);
    assert.deepEqual(listed, [runs[0], runs[3]]);
    assert.ok(r.stderr.includes(files.run!), r.stderr);
    assert.ok(r.stderr.includes(files.end!), r.stderr);
  });

  void test("metaflow tag list skips the unreadable runs too", async () => {
    const r = await project.cli(["tag", "list", "BrokenFlow", "--all-namespaces"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split("\n").length, 2, r.stdout);
  });

  void test("the client's runs(), latestRun() and latestSuccessfulRun() go on past them", async () => {
    const opts = { datastoreRoot: project.root };
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarning);
    try {
      const ids: string[] = [];
      for await (const run of new Flow("BrokenFlow", opts).runs()) ids.push(run.id);
      assert.deepEqual(ids, [runs[0], runs[3]]);
      assert.equal((await new Flow("BrokenFlow", opts).latestRun()).id, runs[0]);
      assert.equal((await new Flow("BrokenFlow", opts).latestSuccessfulRun()).id, runs[0]);
      await new Promise((r) => setImmediate(r));
      assert.ok(
        warnings.some((w) => w.includes(files.run!)),
        warnings.join("\n"),
      );
    } finally {
      process.off("warning", onWarning);
    }
  });

  void test("reading the unreadable run or task itself fails with an error that names the file", async () => {
    const opts = { datastoreRoot: project.root };
    await assert.rejects(
      Run.get(`BrokenFlow/${runs[2]}`, opts),
      (e: unknown) => e instanceof MetadataCorruptError && e.file === files.run,
    );
    await assert.rejects(
      Run.get(`BrokenFlow/${runs[1]}`, opts),
      (e: unknown) => e instanceof MetadataCorruptError && e.file === files.end,
    );
    await assert.rejects(
      Task.get(`BrokenFlow/${runs[0]}/square/${corruptTask}`, opts),
      (e: unknown) => e instanceof MetadataCorruptError && e.file === files.attempt,
    );
    const step = await Step.get(`BrokenFlow/${runs[0]}/square`, opts);
    const tasks: string[] = [];
    for await (const t of step.tasks()) tasks.push(t.id);
    assert.equal(tasks.length, 2);
    assert.ok(!tasks.includes(corruptTask));
  });

  void test("metaflow dump of the step shows the readable tasks and names the unreadable one", async () => {
    const r = await project.cli(["dump", `BrokenFlow/${runs[0]}/square`, "--all-namespaces"]);
    assert.doesNotMatch(r.stderr, /Internal error|SyntaxError/);
    assert.equal((r.stdout.match(/sq: number/g) ?? []).length, 2, r.stdout);
    assert.ok(r.stderr.includes(files.attempt!), r.stderr);
    const one = await project.cli(["dump", `BrokenFlow/${runs[2]}/end`, "--all-namespaces"]);
    assert.equal(one.code, 1);
    assert.match(one.stderr, /Unreadable metadata/);
    assert.ok(one.stderr.includes(files.run!), one.stderr);
    assert.doesNotMatch(one.stderr, /Internal error|SyntaxError|    at /);
  });
});

/**
 * Files that parse as JSON but lack what readers rely on (`{}` for a run record, an attempt end
 * without `artifacts`, tags that are not a list) are as unreadable as truncated ones: skipped in
 * listings, and named, with what is wrong, when read directly.
 */
void describe("a metadata file of valid JSON but the wrong shape", () => {
  let shaped: Project;
  let ids: string[] = [];
  let badTask = "";
  const bad: Record<string, string> = {};

  before(async () => {
    shaped = new Project();
    shaped.write("flow.ts", FLOW);
    for (let i = 0; i < 3; i++) {
      const r = await shaped.cli(["run", "flow.ts"]);
      assert.equal(r.code, 0, r.stderr);
    }
    ids = await shaped.metadata.listRuns("BrokenFlow"); // newest first
    const md = new LocalMetadata(shaped.root);
    const runDir = (id: string) => md.runDir("BrokenFlow", id);
    bad.run = path.join(runDir(ids[2]!), "_run.json");
    bad.tags = path.join(runDir(ids[1]!), "_tags.json");
    badTask = (await md.listTasks("BrokenFlow", ids[0]!, "square"))[1]!;
    bad.attempt = path.join(runDir(ids[0]!), "square", badTask, "attempt-0.end.json");
    fs.writeFileSync(bad.run, "{}");
    fs.writeFileSync(bad.tags, JSON.stringify({ tags: ["reviewed"] }));
    const end = JSON.parse(fs.readFileSync(bad.attempt, "utf8")) as Record<string, unknown>;
    assert.ok(Array.isArray(end.artifacts), "the attempt end had an artifact list before");
    delete end.artifacts;
    fs.writeFileSync(bad.attempt, JSON.stringify(end));
  });
  after(() => shaped?.cleanup());

  void test("metaflow runs lists the readable run and names each bad file with what is wrong", async () => {
    const r = await shaped.cli(["runs", "BrokenFlow", "--all-namespaces"]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /Internal error|TypeError|    at /);
    const listed = [...r.stdout.matchAll(/^(\d+)\s/gm)].map((m) => m[1]);
    assert.deepEqual(listed, [ids[0]]);
    assert.ok(r.stderr.includes(`BrokenFlow/${ids[2]}: its metadata file ${bad.run} has no string field 'flow'`), r.stderr);
    assert.ok(r.stderr.includes(`BrokenFlow/${ids[1]}: its metadata file ${bad.tags} does not hold a list of tags`), r.stderr);
  });

  void test("the client's runs() goes on past them, and reading one names the file and the problem", async () => {
    const opts = { datastoreRoot: shaped.root };
    const listed: string[] = [];
    const onWarning = () => undefined;
    process.on("warning", onWarning);
    try {
      for await (const run of new Flow("BrokenFlow", opts).runs()) listed.push(run.id);
    } finally {
      process.off("warning", onWarning);
    }
    assert.deepEqual(listed, [ids[0]]);
    const corrupt = (file: string, reason: RegExp) => (e: unknown) =>
      e instanceof MetadataCorruptError && e.file === file && reason.test(e.reason);
    await assert.rejects(Run.get(`BrokenFlow/${ids[2]}`, opts), corrupt(bad.run!, /^has no string field 'flow'$/));
    await assert.rejects(Run.get(`BrokenFlow/${ids[1]}`, opts), corrupt(bad.tags!, /^does not hold a list of tags$/));
    await assert.rejects(
      Task.get(`BrokenFlow/${ids[0]}/square/${badTask}`, opts),
      corrupt(bad.attempt!, /^has no array field 'artifacts'$/),
    );
    const tasks: string[] = [];
    for await (const t of (await Step.get(`BrokenFlow/${ids[0]}/square`, opts)).tasks()) tasks.push(t.id);
    assert.equal(tasks.length, 2);
    assert.ok(!tasks.includes(badTask));
  });

  void test("metaflow dump of the step shows the readable tasks and names the attempt end without artifacts", async () => {
    const r = await shaped.cli(["dump", `BrokenFlow/${ids[0]}/square`, "--all-namespaces"]);
    assert.doesNotMatch(r.stderr, /Internal error|TypeError|    at /);
    assert.equal((r.stdout.match(/sq: number/g) ?? []).length, 2, r.stdout);
    assert.ok(r.stderr.includes(`BrokenFlow/${ids[0]}/square/${badTask}: its metadata file ${bad.attempt} has no array field 'artifacts'`), r.stderr);
  });
});
