/**
 * The client API against real runs: flows run by the real CLI in child processes, read back in
 * this process. Covers every bad input the issue lists: unknown objects, malformed pathspecs,
 * missing artifacts, a run still running, bad tags and concurrent tag edits.
 */
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import {
  ArtifactNotFoundError,
  DataArtifact,
  Flow,
  InvalidTagError,
  MalformedPathspecError,
  Metaflow,
  NamespaceMismatchError,
  NotFinishedError,
  ObjectNotFoundError,
  Run,
  Step,
  SystemTagError,
  Task,
  defaultNamespace,
  getNamespace,
  namespace,
} from "../src/index.js";
import { clientContext } from "../src/client/context.js";
import { followLogs } from "../src/client/logs.js";
import { LocalStorage } from "../src/datastore/local.js";
import { LocalMetadata } from "../src/metadata/local.js";
import { CLIENT_FLOW } from "./fixtures/client-flow.js";
import { collect as collectOutput, DIST_INDEX, Project, runIdOf, waitFor } from "./helpers/project.js";

const ALICE = { METAFLOW_USER: "alice" };
const BOB = { METAFLOW_USER: "bob" };

let project: Project;
let opts: { datastoreRoot: string };
let okRun: string;
let failedRun: string;
let bobRun: string;

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}


before(async () => {
  process.env.METAFLOW_USER = "alice";
  project = new Project();
  opts = { datastoreRoot: project.root };
  project.write("flow.ts", CLIENT_FLOW);
  const ok = await project.cli(["run", "flow.ts", "--n", "3", "--tag", "exp-1", "--tag", "shared"], { env: ALICE });
  assert.equal(ok.code, 0, ok.stderr);
  okRun = runIdOf(ok.stdout);
  const bad = await project.cli(["run", "flow.ts", "--fail", "true", "--tag", "shared"], { env: ALICE });
  assert.equal(bad.code, 1);
  failedRun = runIdOf(bad.stdout);
  const bob = await project.cli(["run", "flow.ts", "--n", "2", "--tag", "shared"], { env: BOB });
  assert.equal(bob.code, 0, bob.stderr);
  bobRun = runIdOf(bob.stdout);
});

after(async () => {
  defaultNamespace();
  project.cleanup();
});

void describe("reading a successful run", () => {
  void it("finds flows and the latest successful run in the user's namespace", async () => {
    assert.deepEqual((await new Metaflow(opts).flows()).map((f) => f.name), ["ClientTestFlow"]);
    assert.equal(getNamespace(), "user:alice");
    const flow = new Flow("ClientTestFlow", opts);
    const latest = await flow.latestSuccessfulRun();
    // Bob's newer run is outside alice's namespace; her newer failed run is not successful.
    assert.equal(latest.id, okRun);
    assert.equal((await flow.latestRun()).id, failedRun);
  });

  void it("exposes the run's metadata as plain properties", async () => {
    const run = await Run.get(`ClientTestFlow/${okRun}`, opts);
    assert.equal(run.pathspec, `ClientTestFlow/${okRun}`);
    assert.equal(run.successful, true);
    assert.equal(run.finished, true);
    assert.equal(run.status, "completed");
    assert.equal(run.user, "alice");
    assert.ok(run.createdAt instanceof Date && run.finishedAt instanceof Date);
    assert.ok(run.finishedAt.getTime() >= run.createdAt.getTime());
    assert.deepEqual(run.userTags, ["exp-1", "shared"]);
    assert.ok(run.systemTags.includes("user:alice"));
    assert.ok(run.tags.includes("exp-1") && run.tags.includes("user:alice"));
    assert.deepEqual(run.parameters, { n: 3, fail: false, gate: "" });
  });

  void it("reads end-task artifacts, steps in order, and foreach tasks with index and input", async () => {
    const run = await Run.get(`ClientTestFlow/${okRun}`, opts);
    assert.equal(await run.data("total"), 1 + 4 + 9);
    assert.equal(await run.data("n"), 3);
    const steps = await collect(run.steps());
    assert.deepEqual(steps.map((s) => s.name), ["start", "square", "join", "end"]);
    const square = await run.step("square");
    const tasks = await collect(square.tasks());
    assert.equal(tasks.length, 3);
    assert.deepEqual(tasks.map((t) => t.index), [0, 1, 2]);
    assert.deepEqual(await Promise.all(tasks.map((t) => t.input())), [1, 2, 3]);
    assert.deepEqual(await Promise.all(tasks.map((t) => t.data("sq"))), [1, 4, 9]);
    const t1 = tasks[1]!;
    assert.equal(t1.successful, true);
    assert.equal(t1.finished, true);
    assert.equal(t1.attempt, 0);
    assert.equal(t1.retryCount, 0);
    assert.equal(t1.exception, undefined);
    assert.equal((await t1.parent()).name, "square");
    assert.deepEqual((await t1.parentTasks()).map((t) => t.step.name), ["start"]);
    const join = await (await run.step("join")).task();
    assert.equal(join.parents.length, 3);
    assert.equal((await run.endTask()).step.name, "end");
  });

  void it("lists artifacts with name, size, type and hash without loading values", async () => {
    const join = await Task.get(`ClientTestFlow/${okRun}/join/${(await (await Step.get(`ClientTestFlow/${okRun}/join`, opts)).task()).id}`, opts);
    const arts = await join.artifacts();
    const blob = arts.find((a) => a.name === "blob");
    assert.ok(blob instanceof DataArtifact);
    assert.equal(blob.size, 2 * 1024 * 1024);
    assert.equal(blob.type, "Buffer");
    assert.match(blob.hash, /^[0-9a-f]{64}$/);
    assert.equal(blob.pathspec, `${join.pathspec}/blob`);
    const value = (await blob.data()) as Buffer;
    assert.equal(value.length, 2 * 1024 * 1024);
    assert.deepEqual(arts.map((a) => a.name).sort(), ["blob", "fail", "gate", "n", "total"]);
  });

  void it("reads a task's stdout and stderr, with timestamps when asked", async () => {
    const start = await (await Step.get(`ClientTestFlow/${okRun}/start`, opts)).task();
    assert.equal(await start.stdout(), "starting\n");
    assert.equal(await start.stderr(), "a warning\n");
    const lines = await start.logs();
    assert.deepEqual(lines.map((l) => [l.stream, l.line]), [["stdout", "starting"], ["stderr", "a warning"]]);
    assert.ok(lines.every((l) => !Number.isNaN(Date.parse(l.time))));
  });

  void it("reads the stored code package: its files and the flow's source", async () => {
    const code = await (await Run.get(`ClientTestFlow/${okRun}`, opts)).code();
    assert.deepEqual(code.files, ["flow.ts"]);
    assert.equal(code.className, "ClientTestFlow");
    assert.equal(await code.flowSource(), CLIENT_FLOW);
    assert.match(await code.bundle(), /ClientTestFlow/);
  });

  void it("lists runs newest first, filtered by tags", async () => {
    namespace(null);
    try {
      const all = await collect(new Flow("ClientTestFlow", opts).runs());
      assert.deepEqual(all.map((r) => r.id), [bobRun, failedRun, okRun]);
      const shared = await collect(new Flow("ClientTestFlow", opts).runs("shared", "user:alice"));
      assert.deepEqual(shared.map((r) => r.id), [failedRun, okRun]);
      assert.deepEqual((await collect(new Flow("ClientTestFlow", opts).runs("exp-1"))).map((r) => r.id), [okRun]);
      assert.deepEqual(await collect(new Flow("ClientTestFlow", opts).runs("no-such-tag")), []);
    } finally {
      defaultNamespace();
    }
  });
});

void describe("a failed run", () => {
  void it("says where it failed and why", async () => {
    const run = await Run.get(`ClientTestFlow/${failedRun}`, opts);
    assert.equal(run.successful, false);
    assert.equal(run.finished, true);
    assert.equal(run.status, "failed");
    assert.equal(run.failedStep, "square");
    const bad = (await collect((await run.step("square")).tasks())).find((t) => t.index === 1)!;
    assert.equal(bad.successful, false);
    assert.equal(bad.exception?.message, "boom in square");
    // What the failed attempt had assigned before it threw is kept, marked as from a failed attempt.
    assert.equal(await bad.data("sq"), 4);
    assert.equal(bad.artifact("sq").fromFailedAttempt, true);
    assert.equal(bad.artifactsFromFailedAttempt, 0);
    await assert.rejects(run.data("total"), (e: unknown) => e instanceof NotFinishedError && /failed in step 'square' before its end step/.test(e.message));
    // Finished tasks of a failed run are still readable.
    assert.deepEqual(await (await (await run.step("start")).task()).data("items"), [1, 2, 3]);
  });
});

void describe("bad input", () => {
  void it("rejects an unknown flow, naming the flows that exist", async () => {
    await assert.rejects(new Flow("NoSuchFlow", opts).latestRun(), (e: unknown) => e instanceof ObjectNotFoundError && e.kind === "flow" && /flows there: ClientTestFlow/.test(e.message));
    await assert.rejects(collect(new Flow("NoSuchFlow", opts).runs()), ObjectNotFoundError);
    await assert.rejects(Run.get("NoSuchFlow/1", opts), (e: unknown) => e instanceof ObjectNotFoundError && e.kind === "flow");
  });

  void it("rejects an unknown run, step or task, naming what exists", async () => {
    await assert.rejects(Run.get("ClientTestFlow/42", opts), (e: unknown) => e instanceof ObjectNotFoundError && e.kind === "run" && e.message.includes(okRun));
    await assert.rejects(Step.get(`ClientTestFlow/${okRun}/train`, opts), (e: unknown) => e instanceof ObjectNotFoundError && e.kind === "step" && /start, square, join, end/.test(e.message));
    await assert.rejects(Task.get(`ClientTestFlow/${okRun}/start/999`, opts), (e: unknown) => e instanceof ObjectNotFoundError && e.kind === "task" && e.pathspec === `ClientTestFlow/${okRun}/start/999`);
  });

  void it("rejects malformed pathspecs before touching the datastore", async () => {
    for (const bad of ["", "ClientTestFlow", "A/B/C", "A//B", "A/../B", "A/B/C/D/E"]) {
      await assert.rejects(Run.get(bad, opts), MalformedPathspecError, bad);
    }
    await assert.rejects(Task.get("A/1/start", opts), (e: unknown) => e instanceof MalformedPathspecError && /expected Flow\/runId\/step\/taskId/.test(e.message));
    await assert.rejects(Step.get("../../etc/passwd", opts), MalformedPathspecError);
    assert.throws(() => new Flow("a/b"), MalformedPathspecError);
    assert.throws(() => new Flow(""), MalformedPathspecError);
  });

  void it("rejects an artifact that does not exist, listing those that do", async () => {
    const run = await Run.get(`ClientTestFlow/${okRun}`, opts);
    await assert.rejects(run.data("totl"), (e: unknown) => {
      assert.ok(e instanceof ArtifactNotFoundError);
      assert.equal(e.artifact, "totl");
      assert.deepEqual(e.available, ["blob", "fail", "gate", "n", "total"]);
      assert.match(e.message, /its artifacts are: blob, fail, gate, n, total/);
      return true;
    });
  });
});

void describe("namespaces", () => {
  void it("refuses another user's run by default, naming the namespace and the run", async () => {
    await assert.rejects(Run.get(`ClientTestFlow/${bobRun}`, opts), (e: unknown) => {
      assert.ok(e instanceof NamespaceMismatchError);
      assert.equal(e.namespace, "user:alice");
      assert.equal(e.pathspec, `ClientTestFlow/${bobRun}`);
      assert.match(e.message, /user:alice/);
      return true;
    });
    await assert.rejects(Task.get(`ClientTestFlow/${bobRun}/start/1`, opts), NamespaceMismatchError);
  });

  void it("switches with namespace(), and back with defaultNamespace()", async () => {
    assert.equal(namespace(null), null);
    assert.equal((await Run.get(`ClientTestFlow/${bobRun}`, opts)).user, "bob");
    namespace("user:bob");
    assert.equal((await new Flow("ClientTestFlow", opts).latestRun()).id, bobRun);
    await assert.rejects(Run.get(`ClientTestFlow/${okRun}`, opts), NamespaceMismatchError);
    namespace("exp-1");
    assert.deepEqual((await collect(new Flow("ClientTestFlow", opts).runs())).map((r) => r.id), [okRun]);
    assert.equal(defaultNamespace(), "user:alice");
    assert.equal(getNamespace(), "user:alice");
    assert.throws(() => namespace(""), /namespace\(\) takes a tag/);
  });

  void it("says when a flow has no run in the namespace", async () => {
    namespace("nobody-has-this-tag");
    try {
      await assert.rejects(new Flow("ClientTestFlow", opts).latestSuccessfulRun(), /has no successful run in namespace 'nobody-has-this-tag'/);
    } finally {
      defaultNamespace();
    }
  });
});

void describe("a run that is still running", () => {
  void it("shows partial data, finished false, and follows a task's log until it ends", async () => {
    const gate = path.join(project.dir, "gate-open");
    const child = project.spawn(["run", "flow.ts", "--n", "2", "--gate", gate], ALICE);
    const done = collectOutput(child);
    const runId = await waitFor("a square task", async () => {
      for await (const r of new Flow("ClientTestFlow", opts).runs()) {
        if (!r.finished && (await r.step("square").catch(() => undefined))) return r.id;
      }
      return undefined;
    });
    const run = await Run.get(`ClientTestFlow/${runId}`, opts);
    assert.equal(run.finished, false);
    assert.equal(run.successful, false);
    assert.equal(run.status, "running");
    assert.equal(run.finishedAt, undefined);
    assert.deepEqual(await (await (await run.step("start")).task()).data("items"), [1, 2]);
    await assert.rejects(run.data("total"), (e: unknown) => e instanceof NotFinishedError && /still running/.test(e.message));
    const square = await (await run.step("square")).task();
    assert.equal(square.finished, false);
    await assert.rejects(square.data("sq"), (e: unknown) => e instanceof NotFinishedError && /still running/.test(e.message));

    const seen: string[] = [];
    const follow = (async () => {
      for await (const l of square.followLogs({ pollMs: 50 })) {
        seen.push(l.line);
        if (l.line.startsWith("square")) await fs.writeFile(gate, "");
      }
    })();
    await follow;
    assert.deepEqual(seen, [`square ${square.index}`, `released ${square.index}`]);
    assert.equal((await done).code, 0);
    const after = await run.refresh();
    assert.equal(after.finished, true);
    assert.equal(await after.data("total"), 5);
  });
});

void describe("tags", () => {
  void it("adds, removes and replaces user tags, and keeps them", async () => {
    const run = await Run.get(`ClientTestFlow/${okRun}`, opts);
    assert.deepEqual(await run.addTag("reviewed"), ["exp-1", "shared", "reviewed"]);
    assert.deepEqual(await run.removeTag("shared"), ["exp-1", "reviewed"]);
    assert.deepEqual(await run.replaceTag("exp-1", "exp-2"), ["reviewed", "exp-2"]);
    assert.deepEqual(await run.replaceTags(["reviewed", "exp-2"], ["exp-1", "shared"]), ["exp-1", "shared"]);
    assert.deepEqual((await Run.get(run.pathspec, opts)).userTags, ["exp-1", "shared"]);
  });

  void it("rejects empty, too long and control-character tags", async () => {
    const run = await Run.get(`ClientTestFlow/${okRun}`, opts);
    await assert.rejects(run.addTag(""), (e: unknown) => e instanceof InvalidTagError && /cannot be empty/.test(e.message));
    await assert.rejects(run.addTag("   "), InvalidTagError);
    await assert.rejects(run.addTag("x".repeat(513)), (e: unknown) => e instanceof InvalidTagError && /513 characters; the limit is 512/.test(e.message));
    await assert.rejects(run.addTag("a\nb"), /control characters/);
    assert.deepEqual((await Run.get(run.pathspec, opts)).userTags, ["exp-1", "shared"]);
  });

  void it("refuses to remove a system tag", async () => {
    const run = await Run.get(`ClientTestFlow/${okRun}`, opts);
    await assert.rejects(run.removeTag("user:alice"), (e: unknown) => e instanceof SystemTagError && e.tag === "user:alice");
    assert.ok((await Run.get(run.pathspec, opts)).systemTags.includes("user:alice"));
  });

  void it("loses nothing when several processes edit one run's tags at once", async () => {
    const script = project.path(project.write(
      "tagger.mjs",
      `import { Run } from ${JSON.stringify(DIST_INDEX)};
       const [pathspec, root, who] = process.argv.slice(2);
       const run = await Run.get(pathspec, { datastoreRoot: root });
       for (let i = 0; i < 15; i++) await run.addTag(who + "-" + i);
       await run.removeTag(who + "-0");`,
    ));
    const { spawn } = await import("node:child_process");
    const writers = ["p1", "p2", "p3", "p4", "p5", "p6"].map((who) =>
      collectOutput(spawn(process.execPath, [script, `ClientTestFlow/${okRun}`, project.root, who], { env: { ...process.env, ...ALICE } })),
    );
    for (const r of await Promise.all(writers)) assert.equal(r.code, 0, r.stderr);
    const tags = (await Run.get(`ClientTestFlow/${okRun}`, opts)).userTags;
    for (const who of ["p1", "p2", "p3", "p4", "p5", "p6"]) {
      for (let i = 1; i < 15; i++) assert.ok(tags.includes(`${who}-${i}`), `${who}-${i} lost: ${tags.join(",")}`);
      assert.ok(!tags.includes(`${who}-0`));
    }
    assert.equal(tags.length, 2 + 6 * 14);
    await (await Run.get(`ClientTestFlow/${okRun}`, opts)).replaceTags(tags.slice(2), []);
  });
});

void describe("following a task's logs", () => {
  void it("reads a backlog of several chunks with one request for the task's record", async () => {
    const work = new Project();
    try {
      work.write(
        "loud.ts",
        `import { FlowSpec, step } from "metaflow-ts";
export default class LoudFlow extends FlowSpec {
  @step start() { for (let i = 0; i < 3000; i++) console.log(String(i).padStart(1000, ".")); this.next(this.end); }
  @step end() {}
}
`,
      );
      const r = await work.cli(["run", "loud.ts"], { env: ALICE });
      assert.equal(r.code, 0, r.stderr);
      const runId = runIdOf(r.stdout);
      // A real provider that counts the record reads (each one an HTTP call on the service).
      let getTaskCalls = 0;
      class CountingMetadata extends LocalMetadata {
        override async getTask(...args: Parameters<LocalMetadata["getTask"]>): ReturnType<LocalMetadata["getTask"]> {
          getTaskCalls += 1;
          return super.getTask(...args);
        }
      }
      const metadata = new CountingMetadata(work.root);
      const taskId = (await metadata.listTasks("LoudFlow", runId, "start"))[0]!;
      const ctx = clientContext({ backends: { metadata, storage: new LocalStorage(work.root) } });
      const lines: string[] = [];
      for await (const l of followLogs(ctx, { flow: "LoudFlow", runId, step: "start", taskId }, { pollMs: 10 })) {
        if (l.stream === "stdout") lines.push(l.line);
      }
      assert.equal(lines.length, 3000);
      assert.equal(lines[2999], "2999".padStart(1000, "."));
      // One to find the latest attempt, one for the loop: not one per 1 MiB chunk.
      assert.equal(getTaskCalls, 2);
    } finally {
      work.cleanup();
    }
  });
});
