/**
 * Nothing a step assigns is dropped: private artifacts (`this._x`) are stored and read back, and a
 * failed attempt keeps what it had assigned, marked as such, in `dump` and the client.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { after, test } from "node:test";
import { namespace, Task } from "../src/index.js";
import { Project } from "./helpers/project.js";

const project = new Project();
after(() => project.cleanup());
const opts = { datastoreRoot: project.root };
namespace(null);

const HEADER = `import { FlowSpec, step, catchError, retry, current, type Inputs } from "metaflow-ts";\n`;

void test("private artifacts (_x) are stored, read in later steps and joins, hidden by dump and the listing unless asked", async () => {
  project.write(
    "private.ts",
    `${HEADER}
export default class PrivateFlow extends FlowSpec {
  declare _model: { w: number[] }; declare visible: number; declare seen: string; declare _branch: string; declare merged: string;
  @step start() { this._model = { w: [1, 2] }; this.visible = 1; this.next(this.a, this.b); }
  @step a() { this._branch = "same"; this.next(this.join); }
  @step b() { this._branch = "same"; this.next(this.join); }
  @step join(inputs: Inputs<PrivateFlow>) {
    this.mergeArtifacts(inputs);
    this.merged = (inputs as any).a._branch + "/" + this._branch;
    this.next(this.end);
  }
  @step end() { this.seen = JSON.stringify(this._model); }
}`,
  );
  const r = await project.cli(["run", "private.ts"]);
  assert.equal(r.code, 0, r.stderr);
  const runId = await project.latestRun("PrivateFlow");
  assert.equal(await project.value("PrivateFlow", runId, "end", "seen"), '{"w":[1,2]}');
  assert.equal(await project.value("PrivateFlow", runId, "end", "merged"), "same/same");

  const task = await Task.get(`PrivateFlow/${runId}/end/${(await project.metadata.listTasks("PrivateFlow", runId, "end"))[0]}`, opts);
  assert.deepEqual((await task.artifacts()).map((a) => a.name).sort(), ["merged", "seen", "visible"]);
  assert.deepEqual((await task.artifacts({ private: true })).map((a) => a.name).sort(), ["_branch", "_model", "merged", "seen", "visible"]);
  assert.equal(task.has("_model"), true);
  assert.deepEqual(await task.data("_model"), { w: [1, 2] });
  assert.equal(task.artifact("_model").isPrivate, true);
  assert.equal(task.artifact("seen").isPrivate, false);

  const dump = await project.cli(["dump", `PrivateFlow/${runId}/end`]);
  assert.equal(dump.code, 0, dump.stderr);
  assert.doesNotMatch(dump.stdout, /_model/);
  assert.match(dump.stdout, /2 private artifacts hidden; --private shows them/);
  const all = await project.cli(["dump", `PrivateFlow/${runId}/end`, "--private"]);
  assert.equal(all.code, 0, all.stderr);
  assert.match(all.stdout, /_model: Object, \d+ B =/);
  const one = await project.cli(["dump", `PrivateFlow/${runId}/end`, "--include", "_model"]);
  assert.match(one.stdout, /_model: Object/);
});

void test("a private artifact that cannot be stored fails the task naming it, instead of vanishing", async () => {
  project.write(
    "badprivate.ts",
    `${HEADER}
export default class BadPrivateFlow extends FlowSpec {
  declare _fn: () => number;
  @step start() { this._fn = () => 1; this.next(this.end); }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "badprivate.ts"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot store artifact '_fn'/);
});

void test("@catchError({ var: '_e' }) stores the error as a private artifact; without var nothing is stored", async () => {
  project.write(
    "catchprivate.ts",
    `${HEADER}
export default class CatchPrivateFlow extends FlowSpec {
  declare _e: { message: string }; declare got: string; declare keep: number;
  @step start() { this.keep = 7; this.next(this.bad); }
  @catchError({ var: "_e", printException: false }) @step bad() { if (this.keep) throw new Error("nope"); this.next(this.mid); }
  @step mid() { this.next(this.end); }
  @step end() { this.got = this._e.message; }
}`,
  );
  const r = await project.cli(["run", "catchprivate.ts"]);
  assert.equal(r.code, 0, r.stderr);
  const runId = await project.latestRun("CatchPrivateFlow");
  assert.equal(await project.value("CatchPrivateFlow", runId, "end", "got"), "nope");

  project.write(
    "catchnovar.ts",
    `${HEADER}
export default class CatchNoVarFlow extends FlowSpec {
  declare keep: number;
  @step start() { this.keep = 7; this.next(this.bad); }
  @catchError({ printException: false }) @step bad() { if (this.keep) throw new Error("nope"); this.next(this.end); }
  @step end() {}
}`,
  );
  const r2 = await project.cli(["run", "catchnovar.ts"]);
  assert.equal(r2.code, 0, r2.stderr);
  const run2 = await project.latestRun("CatchNoVarFlow");
  const bad = await project.metadata.getTask("CatchNoVarFlow", run2, "bad", (await project.metadata.listTasks("CatchNoVarFlow", run2, "bad"))[0]!);
  const last = bad!.attempts[bad!.attempts.length - 1]!.end!;
  assert.equal(last.status, "completed");
  assert.deepEqual(last.artifacts.map((a) => a.name).sort(), ["keep"], "the catching attempt stores nothing new");
});

void test("a failed task keeps what it assigned before failing, marked as from a failed attempt, in dump and the client", async () => {
  project.write(
    "failkeep.ts",
    `${HEADER}
export default class FailKeepFlow extends FlowSpec {
  declare base: number; declare partial: number[]; declare _secret: string; declare fn: unknown; declare x: number;
  @step start() { this.base = 1; this.next(this.work); }
  @step work() {
    this.partial = [1, 2, 3];
    this._secret = "s";
    this.fn = () => 1; // cannot be stored: skipped, and never masks the step's own error
    if (this.base) throw new Error("boom after partial work");
    this.next(this.end);
  }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "failkeep.ts"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Error: boom after partial work/);
  assert.doesNotMatch(r.stderr, /cannot store artifact 'fn'/);
  const runId = await project.latestRun("FailKeepFlow");

  const workId = (await project.metadata.listTasks("FailKeepFlow", runId, "work"))[0]!;
  const work = await Task.get(`FailKeepFlow/${runId}/work/${workId}`, opts);
  assert.equal(work.successful, false);
  assert.deepEqual(await work.data("partial"), [1, 2, 3]);
  assert.equal(await work.data("base"), 1);
  assert.equal(await work.data("_secret"), "s");
  assert.equal(work.has("fn"), false);
  const partial = work.artifact("partial");
  assert.equal(partial.fromFailedAttempt, true);
  assert.equal(partial.attempt, 0);
  assert.equal(work.artifactsFromFailedAttempt, 0);
  const record = await project.metadata.getTask("FailKeepFlow", runId, "work", workId);
  assert.deepEqual(record!.attempts[0]!.end!.artifacts.map((a) => a.name).sort(), ["_secret", "base", "partial"]);

  // A retried task's artifacts are those of the attempt that succeeded.
  project.write(
    "flaky.ts",
    `${HEADER}
export default class FlakyFlow extends FlowSpec {
  declare x: number;
  @retry({ times: 1 }) @step start() { this.x = current.retryCount; if (current.retryCount === 0) throw new Error("first try fails"); this.next(this.end); }
  @step end() {}
}`,
  );
  const fr = await project.cli(["run", "flaky.ts"]);
  assert.equal(fr.code, 0, fr.stderr);
  const flakyRun = await project.latestRun("FlakyFlow");
  const flaky = await Task.get(`FlakyFlow/${flakyRun}/start/1`, opts);
  assert.equal(flaky.successful, true);
  assert.equal(await flaky.data("x"), 1);
  assert.equal(flaky.artifact("x").fromFailedAttempt, false);
  assert.equal(flaky.artifactsFromFailedAttempt, undefined);

  const dump = await project.cli(["dump", `FailKeepFlow/${runId}/work`]);
  assert.equal(dump.code, 0, dump.stderr);
  assert.match(dump.stdout, /\(failed\):\n {2}artifacts of failed attempt 0 \(Error: boom after partial work\), as assigned before it failed:\n/);
  assert.match(dump.stdout, /partial: Array, \d+ B = \[ 1, 2, 3 \]/);

  // A failed run's resume still reruns the failed task: its kept artifacts are not a success.
  project.write("failkeep.ts", fs.readFileSync(`${project.dir}/failkeep.ts`, "utf8").replace('if (this.base) throw new Error("boom after partial work");', "").replace("this.fn = () => 1;", ""));
  const resumed = await project.cli(["resume", "failkeep.ts"]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.doesNotMatch(resumed.stdout, /\/work\/\d+\] Cloned/);
});
