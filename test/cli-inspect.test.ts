/**
 * The inspection commands as a user types them: `logs`, `dump`, `runs` and `tag`, run as real CLI
 * processes against runs made by `metaflow run`.
 */
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { CLIENT_FLOW } from "./fixtures/client-flow.js";
import { collect, Project, runIdOf, waitFor } from "./helpers/project.js";

const ALICE = { METAFLOW_USER: "alice" };
let project: Project;
let okRun: string;
let failedRun: string;
let bobRun: string;

const cli = (args: string[], env: Record<string, string> = ALICE) => project.cli(args, { env });


before(async () => {
  project = new Project();
  project.write("flow.ts", CLIENT_FLOW);
  okRun = runIdOf((await cli(["run", "flow.ts", "--tag", "exp-1"])).stdout);
  failedRun = runIdOf((await cli(["run", "flow.ts", "--fail", "true"])).stdout);
  bobRun = runIdOf((await cli(["run", "flow.ts", "--n", "1"], { METAFLOW_USER: "bob" })).stdout);
});

after(() => project.cleanup());

void describe("metaflow logs", () => {
  void it("prints a task's stdout and stderr, or one of them", async () => {
    const both = await cli(["logs", `ClientTestFlow/${okRun}/start/1`]);
    assert.equal(both.code, 0, both.stderr);
    assert.equal(both.stdout, "starting\n");
    assert.equal(both.stderr, "a warning\n");
    const out = await cli(["logs", `ClientTestFlow/${okRun}/start/1`, "--stderr"]);
    assert.equal(out.stdout, "");
    assert.equal(out.stderr, "a warning\n");
    const ts = await cli(["logs", `ClientTestFlow/${okRun}/start/1`, "--stdout", "--timestamps"]);
    assert.match(ts.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z {2}starting\n$/);
  });

  void it("prints every task of a step, each under a header", async () => {
    const r = await cli(["logs", `ClientTestFlow/${okRun}/square`, "--stdout"]);
    assert.equal(r.code, 0, r.stderr);
    const headers = r.stdout.split("\n").filter((l) => l.startsWith("==> "));
    assert.equal(headers.length, 3);
    for (const i of [0, 1, 2]) assert.match(r.stdout, new RegExp(`square ${i}\\nreleased ${i}`));
  });

  void it("shows a failed task's error in its stderr", async () => {
    const r = await cli(["logs", `ClientTestFlow/${failedRun}/square`, "--stderr"]);
    assert.match(r.stderr, /Error: boom in square/);
  });

  void it("follows a running task until it ends", async () => {
    const gate = path.join(project.dir, "gate-logs");
    const run = collect(project.spawn(["run", "flow.ts", "--n", "1", "--gate", gate], ALICE));
    const runId = await waitFor("the run id", async () => {
      const r = await cli(["runs", "ClientTestFlow", "--json"]);
      const running = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { pathspec: string; status: string }).find((x) => x.status === "running");
      return running?.pathspec.split("/")[1];
    });
    const squareLog = path.join(project.root, "flows/ClientTestFlow", runId, "square");
    await waitFor("the square task", async () => ((await fs.readdir(squareLog)).length > 0 ? true : undefined));
    const follower = collect(project.spawn(["logs", `ClientTestFlow/${runId}/square`, "--stdout"], ALICE));
    await new Promise((r) => setTimeout(r, 500));
    await fs.writeFile(gate, "");
    const out = await follower;
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /square 0\nreleased 0\n/);
    assert.equal((await run).code, 0);
  });

  void it("rejects a malformed pathspec (exit 2) and an unknown step (exit 1)", async () => {
    const bad = await cli(["logs", "ClientTestFlow"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^Malformed pathspec "ClientTestFlow": it has 1 part; expected Flow\/runId\/step or Flow\/runId\/step\/taskId/);
    const unknown = await cli(["logs", `ClientTestFlow/${okRun}/nope`]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^Step 'ClientTestFlow\/\d+\/nope' does not exist\n/);
    const both = await cli(["logs", `ClientTestFlow/${okRun}/start/1`, "--stdout", "--stderr"]);
    assert.equal(both.code, 2);
  });
});

void describe("metaflow dump", () => {
  void it("pretty-prints a task's artifacts and summarises big ones", async () => {
    const r = await cli(["dump", `ClientTestFlow/${okRun}/join`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ClientTestFlow\/\d+\/join\/\d+ \(completed\):\n/);
    assert.match(r.stdout, /\n {2}total: number, \d+ B = 14\n/);
    assert.match(r.stdout, /\n {2}blob: Buffer, 2\.0 MB \(sha256 [0-9a-f]{12}…; not loaded, over --max-value-size\)\n/);
  });

  void it("dumps every task of a step, only the artifacts asked for", async () => {
    const r = await cli(["dump", `ClientTestFlow/${okRun}/square`, "--include", "sq"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.match(/sq: number, \d+ B = \d+/g)?.map((l) => l.replace(/.* = /, "")), ["1", "4", "9"]);
    assert.match(r.stdout, /foreach index 2/);
    assert.doesNotMatch(r.stdout, /items/);
  });

  void it("names the artifacts that exist when --include asks for one that does not", async () => {
    const anyEnd = await cli(["dump", `ClientTestFlow/${okRun}/end`, "--include", "total,nope"]);
    assert.equal(anyEnd.code, 1);
    assert.match(anyEnd.stderr, /has no artifact 'nope'/);
    assert.match(anyEnd.stderr, /its artifacts are: blob, fail, gate, n, total/);
  });

  void it("shows what a failed task had assigned, marked as from its failed attempt", async () => {
    const r = await cli(["dump", `ClientTestFlow/${failedRun}/square`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\(failed, foreach index 1\):\n {2}artifacts of failed attempt 0 \(Error: boom in square\), as assigned before it failed:\n(.|\n)* {2}sq: number, \d+ B = 4\n/);
  });
});

void describe("metaflow runs", () => {
  void it("lists the user's runs newest first with status, duration and tags", async () => {
    const r = await cli(["runs", "ClientTestFlow"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.match(lines[0]!, /^RUN\s+STATUS\s+STARTED\s+DURATION\s+USER\s+TAGS$/);
    const ids = lines.slice(1).map((l) => l.split(/\s+/)[0]);
    assert.ok(ids.indexOf(failedRun) < ids.indexOf(okRun));
    assert.ok(!ids.includes(bobRun), "bob's run is outside alice's namespace");
    assert.match(lines.find((l) => l.startsWith(okRun))!, /completed .* \d+(\.\d)? (ms|s)\s+alice\s+exp-1$/);
    assert.match(lines.find((l) => l.startsWith(failedRun))!, /failed/);
  });

  void it("filters by tag, and reads every namespace with -A", async () => {
    const tagged = await cli(["runs", "ClientTestFlow", "--tag", "exp-1", "--json"]);
    assert.deepEqual(tagged.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { pathspec: string }).pathspec), [`ClientTestFlow/${okRun}`]);
    const all = await cli(["runs", "ClientTestFlow", "-A"]);
    assert.match(all.stdout, new RegExp(`${bobRun}.*bob`));
    const bobs = await cli(["runs", "ClientTestFlow", "--namespace", "user:bob"]);
    assert.equal(bobs.stdout.trim().split("\n").length, 2);
  });

  void it("rejects an unknown flow, naming the flows that exist", async () => {
    const r = await cli(["runs", "NoSuchFlow"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Flow 'NoSuchFlow' does not exist\n.*flows there: ClientTestFlow/s);
  });
});

void describe("metaflow tag", () => {
  void it("adds, removes, replaces and lists user tags", async () => {
    const run = `ClientTestFlow/${okRun}`;
    assert.equal((await cli(["tag", "add", run, "gold", "v2"])).stdout, `${run}  user: exp-1, gold, v2\n`);
    assert.equal((await cli(["tag", "remove", run, "v2"])).stdout, `${run}  user: exp-1, gold\n`);
    assert.equal((await cli(["tag", "replace", run, "gold", "silver"])).stdout, `${run}  user: exp-1, silver\n`);
    const list = await cli(["tag", "list", run]);
    assert.match(list.stdout, /user: exp-1, silver {2}system: user:alice, /);
    const flowList = await cli(["tag", "list", "ClientTestFlow", "--hide-system-tags"]);
    assert.match(flowList.stdout, new RegExp(`${run} {2}user: exp-1, silver`));
    assert.equal((await cli(["runs", "ClientTestFlow", "--tag", "silver", "--json"])).stdout.trim().split("\n").length, 1);
    await cli(["tag", "replace", run, "silver", "exp-1"]);
  });

  void it("rejects bad tags (exit 2), system tags and other users' runs (exit 1)", async () => {
    const run = `ClientTestFlow/${okRun}`;
    const empty = await cli(["tag", "add", run, ""]);
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /^A tag cannot be empty/);
    const long = await cli(["tag", "add", run, "t".repeat(600)]);
    assert.equal(long.code, 2);
    assert.match(long.stderr, /600 characters; the limit is 512/);
    const system = await cli(["tag", "remove", run, "user:alice"]);
    assert.equal(system.code, 1);
    assert.match(system.stderr, /^Cannot remove the system tag 'user:alice' from ClientTestFlow\/\d+\n/);
    const other = await cli(["tag", "add", `ClientTestFlow/${bobRun}`, "mine"]);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /is not in the current namespace 'user:alice'/);
    const runTag = await cli(["run", "flow.ts", "--tag", ""]);
    assert.equal(runTag.code, 2);
    assert.match(runTag.stderr, /A tag cannot be empty/);
  });

  void it("keeps every tag when two CLI processes add tags to one run at once", async () => {
    const run = `ClientTestFlow/${bobRun}`;
    const adds = Array.from({ length: 8 }, (_, i) => cli(["tag", "add", run, `c${i}a`, `c${i}b`, "-A"]));
    for (const r of await Promise.all(adds)) assert.equal(r.code, 0, r.stderr);
    const list = await cli(["tag", "list", run, "-A", "--hide-system-tags"]);
    for (let i = 0; i < 8; i++) assert.match(list.stdout, new RegExp(`c${i}a, c${i}b|c${i}a.*c${i}b`));
    assert.equal(list.stdout.split(",").length, 16);
  });
});
