/**
 * The extension contract (SPEC §6): decorators written by users — options validated, `--with`,
 * an in-task hook that stores an artifact and adds to `current`, a parent-side hook that changes
 * retries, flow decorators on the class, step decorators on the class as defaults, and errors
 * thrown by a user decorator reported with its name.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { after, test } from "node:test";
import { Project, REPO } from "./helpers/project.js";

const project = new Project();
after(() => project.cleanup());

const DECORATORS = `import { flowDecorator, stepDecorator } from "metaflow-ts";
export const timed = stepDecorator<{ artifact?: string }, { artifact: string }>({
  name: "timed",
  parse(raw) {
    const artifact = raw.artifact ?? "stepSeconds";
    if (typeof artifact !== "string" || !/^[A-Za-z]\\w*$/.test(artifact)) throw new Error("@timed.artifact must be an artifact name, got " + JSON.stringify(raw.artifact));
    return { artifact };
  },
  async runStep(task, next, o) { const t0 = Date.now(); await next(); task.set(o.artifact, (Date.now() - t0) / 1000); },
});
export const flaky = stepDecorator<{ times?: number }>({
  name: "flaky",
  plan(o, plan) { plan.retries = Number(o.times ?? 2); },
});
export const boom = stepDecorator({
  name: "boom",
  async runStep(task, next) { await next(); throw new Error("the decorator itself broke"); },
});
export const owner = flowDecorator<{ team: string }>({
  name: "owner",
  parse(raw) { if (typeof raw.team !== "string") throw new Error("@owner.team must be a string, got " + JSON.stringify(raw.team)); return { team: raw.team }; },
  plan(o, plan) { plan.env.OWNER_TEAM = o.team; },
  async runStep(task, next, o) { task.setCurrent("team", o.team); await next(); },
});
`;

project.write("deco.ts", DECORATORS);

void test("a user's step decorator stores an artifact from its in-task hook; --with applies it to every step", async () => {
  project.write(
    "timed.ts",
    `import { FlowSpec, step } from "metaflow-ts";
import { timed } from "./deco.js";
export default class TimedFlow extends FlowSpec {
  declare stepSeconds: number; declare seconds: number;
  @timed() @step async start() { await new Promise((r) => setTimeout(r, 120)); this.next(this.end); }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "timed.ts"]);
  assert.equal(r.code, 0, r.stderr);
  const runId = await project.latestRun("TimedFlow");
  const seconds = (await project.value("TimedFlow", runId, "start", "stepSeconds")) as number;
  assert.ok(seconds >= 0.1 && seconds < 30, `start took ${seconds} s`);
  assert.equal((await project.artifacts("TimedFlow", runId, "end")).has("seconds"), false);

  const all = await project.cli(["run", "timed.ts", "--with", "timed:artifact=seconds"]);
  assert.equal(all.code, 0, all.stderr);
  const second = await project.latestRun("TimedFlow");
  // --with adds the decorator where the step has none; the step's own options win where it has one.
  assert.equal(typeof (await project.value("TimedFlow", second, "end", "seconds")), "number");
  assert.equal(typeof (await project.value("TimedFlow", second, "start", "stepSeconds")), "number");
  assert.equal((await project.artifacts("TimedFlow", second, "start")).has("seconds"), false);

  const bad = await project.cli(["run", "timed.ts", "--with", "timed:artifact=9x"]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /--with timed:artifact=9x: @timed\.artifact must be an artifact name, got "9x"/);
  const unknown = await project.cli(["run", "timed.ts", "--with", "timmed"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /there is no decorator 'timmed'; known step decorators: .*timed/);
});

void test("a user's parent-side hook changes retries: the step passes on its second attempt", async () => {
  project.write(
    "flaky.ts",
    `import { FlowSpec, step, current } from "metaflow-ts";
import { flaky } from "./deco.js";
export default class FlakyFlow extends FlowSpec {
  declare attempt: number;
  @flaky({ times: 1 }) @step start() { if (current.retryCount === 0) throw new Error("first try fails"); this.attempt = current.retryCount; this.next(this.end); }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "flaky.ts"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stderr, /Task failed; retrying \(attempt 2 of 2\)/);
  assert.equal(await project.value("FlakyFlow", await project.latestRun("FlakyFlow"), "start", "attempt"), 1);
});

void test("an error thrown by a user decorator is reported with the decorator's name", async () => {
  project.write(
    "boom.ts",
    `import { FlowSpec, step } from "metaflow-ts";
import { boom } from "./deco.js";
export default class BoomFlow extends FlowSpec {
  @boom @step start() { this.next(this.end); }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "boom.ts"]);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stderr, /DecoratorError: @boom failed in its runStep hook in step 'start': the decorator itself broke/);

  // The step's own error passes through a decorator unchanged.
  project.write(
    "steperr.ts",
    `import { FlowSpec, step } from "metaflow-ts";
import { timed } from "./deco.js";
export default class StepErrFlow extends FlowSpec {
  @timed() @step start() { if (this.constructor) throw new RangeError("the step's own error"); this.next(this.end); }
  @step end() {}
}`,
  );
  const own = await project.cli(["run", "steperr.ts"]);
  assert.equal(own.code, 1);
  assert.match(own.stderr, /RangeError: the step's own error/);
  assert.doesNotMatch(own.stderr, /DecoratorError/);

  // Options are validated where the decorator is written.
  project.write(
    "badopt.ts",
    `import { FlowSpec, step } from "metaflow-ts";
import { timed } from "./deco.js";
export default class BadOptFlow extends FlowSpec {
  @timed({ artifact: "two words" }) @step start() { this.next(this.end); }
  @step end() {}
}`,
  );
  const badopt = await project.cli(["run", "badopt.ts"]);
  assert.equal(badopt.code, 1);
  assert.match(badopt.stderr, /step 'start': @timed\.artifact must be an artifact name, got "two words"/);
});

void test("flow decorators: hooks see every step and add to current; show lists them; step decorators on the class apply to every step", async () => {
  project.write(
    "owned.ts",
    `import { FlowSpec, step, current, retry } from "metaflow-ts";
import { owner } from "./deco.js";
/** An owned flow. */
@owner({ team: "recsys" })
@retry({ times: 1 })
export default class OwnedFlow extends FlowSpec {
  declare team: string; declare env: string; declare tries: number;
  @step start() { this.team = current.team; this.env = String(process.env.OWNER_TEAM); this.next(this.end); }
  @retry({ times: 0 }) @step end() { if (current.retryCount === 0 && !process.env.NO_FAIL) { /* end's own retry(0) wins: no retry */ } this.tries = current.retryCount; }
}`,
  );
  const r = await project.cli(["run", "owned.ts"]);
  assert.equal(r.code, 0, r.stderr);
  const runId = await project.latestRun("OwnedFlow");
  assert.equal(await project.value("OwnedFlow", runId, "start", "team"), "recsys");
  assert.equal(await project.value("OwnedFlow", runId, "start", "env"), "recsys");

  const show = await project.cli(["show", "owned.ts"]);
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, /@owner/);
  assert.match(show.stdout, /@retry/);

  // The class-level @retry applies to a step without its own: it is retried once.
  project.write(
    "classretry.ts",
    `import { FlowSpec, step, current, retry } from "metaflow-ts";
@retry({ times: 1 })
export default class ClassRetryFlow extends FlowSpec {
  declare attempt: number;
  @step start() { if (current.retryCount === 0) throw new Error("once"); this.attempt = current.retryCount; this.next(this.end); }
  @retry({ times: 0 }) @step end() { if (current.retryCount === 0) throw new Error("end never retries"); }
}`,
  );
  const cr = await project.cli(["run", "classretry.ts"]);
  assert.equal(cr.code, 1, cr.stdout);
  assert.match(cr.stderr, /\/start\/\d+ \(pid \d+\)\] Task failed; retrying/);
  assert.match(cr.stderr, /Step 'end' failed .*end never retries/);

  // A flow decorator is refused on a step, with its name.
  project.write(
    "misplaced.ts",
    `import { FlowSpec, step } from "metaflow-ts";
import { owner } from "./deco.js";
export default class MisplacedFlow extends FlowSpec {
  @owner({ team: "x" }) @step start() { this.next(this.end); }
  @step end() {}
}`,
  );
  const mis = await project.cli(["run", "misplaced.ts"]);
  assert.equal(mis.code, 1);
  assert.match(mis.stderr, /@owner is a flow decorator: write it on the FlowSpec subclass, not on a method/);
  const withFlow = await project.cli(["run", "owned.ts", "--with", "owner:team=x"]);
  assert.equal(withFlow.code, 2);
  assert.match(withFlow.stderr, /@owner is a flow decorator; write it on the flow class/);
});

void test("a user decorator may not take a built-in's name", async () => {
  project.write(
    "clash.ts",
    `import { FlowSpec, step, stepDecorator } from "metaflow-ts";
export const retry = stepDecorator({ name: "retry", plan(_o, plan) { plan.retries = 4; } });
export default class ClashFlow extends FlowSpec {
  @step start() { this.next(this.end); }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "clash.ts"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /a decorator named 'retry' is already built in; give your decorator another name/);
});

void test("examples/decorators.ts runs as documented", async () => {
  const r = await project.cli(["run", `${REPO}/examples/decorators.ts`]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /team recsys \(env recsys\); train took \d+\.\d{3} s/);
});

void test("what an in-task hook sees: the graph, parameters, a per-task slot shared by a repeatable decorator, the datastore, and onEnd after the artifacts are stored", async () => {
  project.write(
    "audit.ts",
    `import { FlowSpec, Parameter, step, stepDecorator } from "metaflow-ts";
export const audit = stepDecorator<{ tag: string }>({
  name: "audit",
  repeatable: true,
  async runStep(task, next, o) {
    const log = task.slot("audit", () => {
      const entries: string[] = [];
      task.onEnd(async (end) => {
        const text = JSON.stringify({ entries, end: { status: end.status, artifacts: end.artifacts }, graph: task.graph, parameters: task.parameterNames.map((n) => [n, task.get(n)]) });
        await task.storage.put(\`flows/\${task.flowName}/\${task.runId}/\${task.stepName}/\${task.taskId}/audit-\${task.retryCount}.json\`, Buffer.from(text));
      });
      return entries;
    });
    log.push(o.tag);
    await next();
  },
});
export const late = stepDecorator({ name: "late", runStep: async (task, next) => { task.onEnd(() => { throw new Error("too late to complain"); }); await next(); } });
export default class AuditFlow extends FlowSpec {
  alpha = Parameter("alpha", { default: 3 });
  fail = Parameter("fail", { default: false });
  declare score: number;
  @audit({ tag: "outer" }) @audit({ tag: "inner" }) @step start() {
    if (this.fail) throw new Error("the step failed");
    this.score = this.alpha * 2;
    this.next(this.end);
  }
  @late @step end() {}
}`,
  );
  const r = await project.cli(["run", "audit.ts"]);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stderr, /DecoratorError: @late failed in its onEnd hook in step 'end': too late to complain/);
  const runId = await project.latestRun("AuditFlow");
  const read = (attemptFile: string) => JSON.parse(fs.readFileSync(`${project.root}/flows/AuditFlow/${runId}/start/1/${attemptFile}`, "utf8"));
  const audit = read("audit-0.json");
  assert.deepEqual(audit.entries, ["outer", "inner"]);
  assert.equal(audit.end.status, "completed");
  assert.deepEqual(audit.end.artifacts.find((a: { name: string }) => a.name === "score"), { name: "score", type: "number", size: 4 });
  assert.deepEqual(audit.graph, [
    { name: "start", kind: "linear", next: ["end"] },
    { name: "end", kind: "end", next: [] },
  ]);
  assert.deepEqual(audit.parameters, [["alpha", 3], ["fail", false]]);

  const failed = await project.cli(["run", "audit.ts", "--fail", "true"]);
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /Error: the step failed/);
  const second = await project.latestRun("AuditFlow");
  const end = JSON.parse(fs.readFileSync(`${project.root}/flows/AuditFlow/${second}/start/1/audit-0.json`, "utf8")).end;
  assert.deepEqual(end, { status: "failed", artifacts: [] });

  // Decorators that are not repeatable are still refused twice on a step.
  project.write(
    "twice.ts",
    `import { FlowSpec, step, retry } from "metaflow-ts";
export default class TwiceFlow extends FlowSpec {
  @retry({ times: 1 }) @retry({ times: 2 }) @step start() { this.next(this.end); }
  @step end() {}
}`,
  );
  const twice = await project.cli(["run", "twice.ts"]);
  assert.equal(twice.code, 1);
  assert.match(twice.stderr, /@retry is applied twice to step 'start'/);
});
