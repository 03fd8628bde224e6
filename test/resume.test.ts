/** Resume: clone what finished, rerun the rest with the current code, also after the runtime was killed. */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { aliveTaskPids, Project, waitForOutput } from "./helpers/project.js";

const project = new Project();
after(() => project.cleanup());

const HEADER = `import * as fs from "node:fs";\nimport { FlowSpec, step, Parameter, current, type Inputs } from "metaflow-ts";\n`;

/** A foreach flow that logs every execution to $COUNTER and fails on input 3 unless $FIXED is set. */
function writeCounted(name: string, n: number, sleepMs = 0): string {
  return project.write(
    `${name}.ts`,
    `${HEADER}
export default class ${name} extends FlowSpec {
  factor = Parameter("factor", { default: 1 });
  declare items: number[]; declare sq: number; declare total: number; declare origin: string;
  @step start() {
    fs.appendFileSync(process.env.COUNTER!, "start\\n");
    this.items = Array.from({ length: ${n} }, (_, i) => i);
    this.next(this.work, { foreach: "items" });
  }
  @step async work() {
    fs.appendFileSync(process.env.COUNTER!, "work " + this.input + "\\n");
    if (${sleepMs} > 0) await new Promise((r) => setTimeout(r, ${sleepMs}));
    if (this.input === 3 && !process.env.FIXED) throw new Error("three is bad");
    this.sq = (this.input as number) ** 2 * this.factor;
    this.next(this.join);
  }
  @step join(inputs: Inputs<${name}>) {
    fs.appendFileSync(process.env.COUNTER!, "join\\n");
    this.total = inputs.reduce((a, i) => a + i.sq, 0);
    this.next(this.end);
  }
  @step end() { this.origin = String(current.originRunId); }
}`,
  );
}

function counts(file: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of fs.readFileSync(file, "utf8").split("\n").filter(Boolean)) m.set(line, (m.get(line) ?? 0) + 1);
  return m;
}

void test("resume clones finished tasks, reruns the failed step with the current code and the origin's parameters", async () => {
  const file = writeCounted("ResumeFlow", 6);
  const counter = path.join(project.dir, "counter1.txt");
  const first = await project.cli(["run", file, "--factor", "2", "--max-workers", "1"], { env: { COUNTER: counter } });
  assert.equal(first.code, 1, first.stderr);
  const origin = await project.latestRun("ResumeFlow");
  assert.match(first.stderr, new RegExp(`npx metaflow resume ResumeFlow.ts --origin-run-id ${origin}`));

  const refused = await project.cli(["resume", file, "--factor", "3"], { env: { COUNTER: counter, FIXED: "1" } });
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /resume reuses the parameters of the run it resumes; drop --factor/);

  const second = await project.cli(["resume", file], { env: { COUNTER: counter, FIXED: "1" } });
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /Cloned from ResumeFlow\/\d+\/start\/1/);
  const resumed = await project.latestRun("ResumeFlow");
  assert.notEqual(resumed, origin);
  assert.equal(await project.value("ResumeFlow", resumed, "end", "total"), 2 * (0 + 1 + 4 + 9 + 16 + 25));
  assert.equal(await project.value("ResumeFlow", resumed, "end", "origin"), origin);
  assert.equal((await project.metadata.getRun("ResumeFlow", resumed))?.originRunId, origin);
  const c = counts(counter);
  assert.equal(c.get("start"), 1, "start was cloned, not rerun");
  // Splits 0..2 finished before split 3 failed (one worker, in order): they ran exactly once.
  for (const i of [0, 1, 2]) assert.equal(c.get(`work ${i}`), 1, `work ${i} ran once`);
  assert.equal(c.get("work 3"), 2);
});

void test("resume STEP reruns that step and everything after it; --origin-run-id picks the run", async () => {
  const file = writeCounted("StepFlow", 3);
  const counter = path.join(project.dir, "counter2.txt");
  const first = await project.cli(["run", file], { env: { COUNTER: counter } });
  assert.equal(first.code, 0, first.stderr);
  const origin = await project.latestRun("StepFlow");
  // Options may come before the flow file.
  const again = await project.cli(["resume", "--origin-run-id", origin, file, "join"], { env: { COUNTER: counter } });
  assert.equal(again.code, 0, again.stderr);
  const c = counts(counter);
  assert.equal(c.get("start"), 1);
  assert.equal(c.get("work 0"), 1);
  assert.equal(c.get("join"), 2);

  const bad = await project.cli(["resume", file, "--origin-run-id", "999"], { env: { COUNTER: counter } });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /no run StepFlow\/999/);
  const badStep = await project.cli(["resume", file, "nosuch"], { env: { COUNTER: counter } });
  assert.equal(badStep.code, 2);
  assert.match(badStep.stderr, /no step 'nosuch'/);
});

void test("a 200-split foreach whose runtime is SIGKILLed halfway resumes without rerunning any finished task", async () => {
  const file = writeCounted("KilledFlow", 200, 40);
  const counter = path.join(project.dir, "counter3.txt");
  const child = project.spawn(["run", file, "--max-num-splits", "200"], { COUNTER: counter, FIXED: "1" });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (t: string) => (out += t));
  child.stderr.resume();
  await new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      if ((out.match(/\/work\/\d+ .*Task finished successfully/g) ?? []).length >= 100) {
        clearInterval(poll);
        resolve();
      }
    }, 20);
  });
  child.kill("SIGKILL");
  await new Promise((r) => child.on("close", r));
  const origin = await project.latestRun("KilledFlow");
  assert.ok(!fs.existsSync(path.join(project.root, "flows", "KilledFlow", origin, "_end.json")), "the killed run never recorded an end");
  // ...but its runtime is gone, so it reads as failed rather than running forever.
  assert.equal((await project.metadata.getRunEnd("KilledFlow", origin))?.error?.name, "HeartbeatTimeout");

  // Which splits did the killed run record as finished?
  const finished = new Set<number>();
  for (const id of await project.metadata.listTasks("KilledFlow", origin, "work")) {
    const t = await project.metadata.getTask("KilledFlow", origin, "work", id);
    const last = t?.attempts[t.attempts.length - 1];
    if (last?.end?.status === "completed") finished.add(last.start.frames[0]!.index);
  }
  assert.ok(finished.size >= 100 && finished.size < 200, `${finished.size} splits finished before the kill`);

  const resumed = await project.cli(["resume", file, "--max-num-splits", "200"], { env: { COUNTER: counter, FIXED: "1" }, timeoutMs: 120000 });
  assert.equal(resumed.code, 0, resumed.stderr);
  const runId = await project.latestRun("KilledFlow");
  const expected = Array.from({ length: 200 }, (_, i) => i * i).reduce((a, b) => a + b, 0);
  assert.equal(await project.value("KilledFlow", runId, "end", "total"), expected);
  const c = counts(counter);
  for (const i of finished) assert.equal(c.get(`work ${i}`), 1, `finished split ${i} ran once`);
  for (let i = 0; i < 200; i++) assert.ok((c.get(`work ${i}`) ?? 0) >= 1, `split ${i} ran`);
  assert.equal(c.get("start"), 1);
  assert.equal(c.get("join"), 1);
});

void test("SIGTERM stops the run within 5 s, marks it failed, prints how to resume, leaves no worker behind", async () => {
  const file = writeCounted("TermFlow", 4, 60000);
  const counter = path.join(project.dir, "counter4.txt");
  const child = project.spawn(["run", file], { COUNTER: counter, FIXED: "1" });
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (t: string) => (out += t));
  child.stderr.setEncoding("utf8").on("data", (t: string) => (err += t));
  await waitForOutput(() => out, /\/work\/\d+ .*Task is starting(.|\n)*\/work\/\d+ .*Task is starting/);
  const t0 = Date.now();
  child.kill("SIGTERM");
  const code = await new Promise<number | null>((r) => child.on("close", (c) => r(c)));
  assert.ok(Date.now() - t0 < 5000);
  assert.equal(code, 130);
  assert.match(err, /To resume it: npx metaflow resume TermFlow\.ts --origin-run-id \d+/);
  assert.deepEqual(aliveTaskPids(out), []);
  const runId = await project.latestRun("TermFlow");
  assert.equal((await project.metadata.getRunEnd("TermFlow", runId))?.status, "failed");
});
