/**
 * Bad input at the CLI gets a clear message instead of an internal error or a silent success:
 * names the service would refuse, tags that impersonate system tags, parameters named like a
 * `run` option, a corrupt artifact in `dump`, and a plain object thrown by a step.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { contentKey } from "../src/datastore/cas.js";
import { InvalidTagError, Run, Task, namespace } from "../src/index.js";
import { resumeCommand, runCommand } from "../src/cli/run.js";
import { Project } from "./helpers/project.js";

let project: Project;
before(() => {
  project = new Project();
  namespace(null);
});
after(() => project?.cleanup());

const flow = (
  name: string,
  body: string,
  header = "",
) => `import { FlowSpec, step, Parameter } from "metaflow-ts";
${header}
export default class ${name} extends FlowSpec {
${body}
}
`;

const runsOf = async (name: string) => project.metadata.listRuns(name);

void describe("names every setup accepts are checked before any run", () => {
  void test("metaflow check and metaflow run refuse a 129-character step name and a non-ASCII class name", async () => {
    const long = `s${"x".repeat(128)}`;
    project.write(
      "names.ts",
      flow(
        "NämeFlow",
        `  @step start() { this.next(this.${long}); }
  @step ${long}() { this.next(this.end); }
  @step end() {}`,
      ),
    );
    const check = await project.cli(["check", "names.ts"]);
    assert.equal(check.code, 1, check.stderr);
    assert.match(check.stderr, /The flow graph has 2 problems/);
    assert.match(
      check.stderr,
      /names\.ts:3: The flow class name 'NämeFlow' has characters other than ASCII/,
    );
    assert.match(check.stderr, /Step name 'sx{39}…' is 129 characters long; names are at most 128/);
    const run = await project.cli(["run", "names.ts"]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /The flow graph has 2 problems/);
    assert.deepEqual(await runsOf("NämeFlow"), [], "no run was started");
  });
});

void describe("user tags cannot impersonate system tags", () => {
  const TAGGED = flow("TagFlow", `  @step start() { this.next(this.end); }\n  @step end() {}`);

  void test("run --tag refuses user:, metaflow_version:, runtime: and date: tags before the run starts", async () => {
    project.write("tags.ts", TAGGED);
    for (const tag of ["user:alice", "metaflow_version:9", "Runtime:prod", "date:2020-01-01"]) {
      const r = await project.cli(["run", "tags.ts", "--tag", tag]);
      assert.equal(r.code, 2, `${tag}: ${r.stderr}`);
      assert.match(r.stderr, /system-tag namespace/);
      assert.ok(r.stderr.includes(tag), r.stderr);
    }
    assert.deepEqual(await runsOf("TagFlow"), []);
  });

  void test("tag add/replace and the client refuse them; the system tags stay as they were", async () => {
    const ok = await project.cli(["run", "tags.ts", "--tag", "owner-alice"]);
    assert.equal(ok.code, 0, ok.stderr);
    const runId = (await runsOf("TagFlow"))[0]!;
    const pathspec = `TagFlow/${runId}`;
    const add = await project.cli(["tag", "add", pathspec, "user:alice", "--all-namespaces"]);
    assert.equal(add.code, 2, add.stderr);
    assert.match(add.stderr, /'user:alice' is in the system-tag namespace 'user:'/);
    const replace = await project.cli([
      "tag",
      "replace",
      pathspec,
      "owner-alice",
      "metaflow_version:9",
      "--all-namespaces",
    ]);
    assert.equal(replace.code, 2, replace.stderr);
    const run = await Run.get(pathspec, { datastoreRoot: project.root });
    await assert.rejects(run.addTag("runtime:prod"), InvalidTagError);
    const after = await Run.get(pathspec, { datastoreRoot: project.root });
    assert.deepEqual(after.userTags, ["owner-alice"]);
    assert.ok(!after.systemTags.includes("user:alice"));
  });
});

void describe("a parameter named like a run option", () => {
  void test("every option of run and resume gives the clash message, never an internal error", async () => {
    const names = new Set<string>();
    for (const cmd of [await runCommand(undefined), await resumeCommand(undefined)]) {
      for (const o of cmd.options) if (o.long) names.add(o.long.replace(/^--/, ""));
    }
    assert.ok(names.has("isolation") && names.has("origin-run-id"), [...names].join(", "));
    // Same attribute as --max-workers once commander camel-cases it.
    names.add("maxWorkers");
    for (const name of names) {
      const file = `clash-${name}.ts`;
      project.write(
        file,
        flow(
          "ClashFlow",
          `  p = Parameter("${name}", { default: "x" });\n  @step start() { this.next(this.end); }\n  @step end() {}`,
        ),
      );
      const r = await project.cli(["run", file]);
      assert.equal(r.code, 1, `${name}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /Internal error/, name);
      assert.match(r.stderr, new RegExp(`'${name}' clashes with .*'metaflow run'`), name);
    }
  });
});

void describe("dump and a corrupt artifact", () => {
  void test("the other artifacts are shown and the corrupt one is named", async () => {
    project.write(
      "dump.ts",
      flow(
        "DumpFlow",
        `  declare a: string; declare b: number[]; declare c: { k: string };
  @step start() { this.a = "alpha-value"; this.b = [1, 2, 3]; this.c = { k: "kept" }; this.next(this.end); }
  @step end() {}`,
      ),
    );
    const r = await project.cli(["run", "dump.ts"]);
    assert.equal(r.code, 0, r.stderr);
    const runId = (await runsOf("DumpFlow"))[0]!;
    const refs = await project.artifacts("DumpFlow", runId, "start");
    const b = refs.get("b")!;
    const file = path.join(project.root, contentKey(b.hash));
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0xff;
    fs.writeFileSync(file, bytes);
    const dump = await project.cli(["dump", `DumpFlow/${runId}/start`, "--all-namespaces"]);
    assert.equal(dump.code, 1, dump.stderr);
    assert.match(dump.stdout, /a: string, .* = 'alpha-value'/);
    assert.match(dump.stdout, /c: Object, .*'kept'/);
    assert.match(dump.stdout, /b: Array, .*cannot be read/);
    assert.ok(dump.stderr.includes(file), dump.stderr);
    assert.doesNotMatch(dump.stderr, /Internal error/);
  });
});

void describe("a step that throws a plain object", () => {
  void test("the error shows the object's contents, not [object Object]", async () => {
    project.write(
      "throws.ts",
      flow(
        "ThrowFlow",
        `  @step start() { if (Date.now() > 0) throw { code: 42, reason: "quota" }; this.next(this.end); }\n  @step end() {}`,
      ),
    );
    const r = await project.cli(["run", "throws.ts"]);
    assert.equal(r.code, 1);
    assert.doesNotMatch(r.stderr + r.stdout, /\[object Object\]/);
    assert.match(r.stderr, /code: 42/);
    assert.match(r.stderr, /reason: 'quota'/);
    const runId = (await runsOf("ThrowFlow"))[0]!;
    const taskId = (await project.metadata.listTasks("ThrowFlow", runId, "start"))[0]!;
    const task = await Task.get(`ThrowFlow/${runId}/start/${taskId}`, {
      datastoreRoot: project.root,
    });
    assert.match(task.exception?.message ?? "", /\{ code: 42, reason: 'quota' \}/);
  });
});
