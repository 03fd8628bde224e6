/**
 * Local runs have a heartbeat, as with the metadata service: a run whose runtime died shows as
 * failed in `metaflow runs` and the client instead of running forever, and `resume` refuses to
 * resume a run that is still running unless `--force` is given.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { namespace, Run } from "../src/index.js";
import { Project, waitForOutput } from "./helpers/project.js";

const project = new Project();
after(() => project.cleanup());
namespace(null);
const opts = { datastoreRoot: project.root };
const ENV = { METAFLOW_HEARTBEAT_TIMEOUT: "3" };
// The client in this process reads with the same timeout as the CLI processes.
process.env.METAFLOW_HEARTBEAT_TIMEOUT = ENV.METAFLOW_HEARTBEAT_TIMEOUT;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

project.write(
  "hang.ts",
  `import * as fs from "node:fs";
import { FlowSpec, step } from "metaflow-ts";
export default class HangFlow extends FlowSpec {
  declare done: boolean;
  @step start() { this.next(this.wait); }
  @step async wait() {
    console.log("waiting");
    while (!fs.existsSync(process.env.GATE!)) await new Promise((r) => setTimeout(r, 50));
    this.done = true;
    this.next(this.end);
  }
  @step end() {}
}`,
);

function statusOf(runsOutput: string, runId: string): string | undefined {
  return runsOutput.split("\n").find((l) => l.startsWith(runId))?.split(/\s+/)[1];
}

async function until(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

void test("a live run stays running past the heartbeat timeout and cannot be resumed without --force", async () => {
  const gate = path.join(project.dir, "gate1");
  const child = project.spawn(["run", "hang.ts"], { ...ENV, GATE: gate });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (t: string) => (out += t));
  child.stderr.setEncoding("utf8").on("data", (t: string) => (out += t));
  // A failed check must not leave the run waiting for its gate forever.
  after(() => fs.writeFileSync(gate, ""));
  await waitForOutput(() => out, /\/wait\/\d+ .*waiting/);
  const runId = await project.latestRun("HangFlow");
  // Longer than the timeout: the heartbeat keeps the run alive.
  await sleep(4500);
  const runs = await project.cli(["runs", "HangFlow"], { env: ENV });
  assert.equal(statusOf(runs.stdout, runId), "running", runs.stdout);
  assert.equal((await Run.get(`HangFlow/${runId}`, opts)).status, "running");

  const refused = await project.cli(["resume", "hang.ts", "--origin-run-id", runId], { env: { ...ENV, GATE: gate } });
  assert.equal(refused.code, 2, refused.stdout + refused.stderr);
  assert.match(refused.stderr, new RegExp(`run HangFlow/${runId} is still running`));
  assert.match(refused.stderr, /--force/);

  const forced = project.spawn(["resume", "hang.ts", "--origin-run-id", runId, "--force"], { ...ENV, GATE: gate });
  let forcedOut = "";
  forced.stdout.setEncoding("utf8").on("data", (t: string) => (forcedOut += t));
  forced.stderr.setEncoding("utf8").on("data", (t: string) => (forcedOut += t));
  await waitForOutput(() => forcedOut, /\/wait\/\d+ .*waiting/);
  fs.writeFileSync(gate, "");
  const [a, b] = await Promise.all([child, forced].map((c) => new Promise<number | null>((r) => c.on("close", (code) => r(code)))));
  assert.equal(a, 0, out);
  assert.equal(b, 0, forcedOut);
});

void test("a run whose runtime was SIGKILLed shows as failed: at once on this machine, after the timeout elsewhere", async () => {
  const gate = path.join(project.dir, "gate2");
  const child = project.spawn(["run", "hang.ts"], { ...ENV, GATE: gate });
  after(() => child.kill("SIGKILL"));
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (t: string) => (out += t));
  await waitForOutput(() => out, /\/wait\/\d+ .*waiting/);
  const runId = await project.latestRun("HangFlow");
  child.kill("SIGKILL");
  await new Promise((r) => child.on("close", r));

  // This machine knows the runtime's process is gone: failed at once, no waiting for the timeout.
  const runs = await project.cli(["runs", "HangFlow"], { env: ENV });
  assert.equal(statusOf(runs.stdout, runId), "failed", runs.stdout);
  const run = await Run.get(`HangFlow/${runId}`, opts);
  assert.equal(run.status, "failed");
  assert.equal(run.exception?.name, "HeartbeatTimeout");
  assert.match(run.exception?.message ?? "", /no heartbeat since .* and recorded no end/);

  // Seen from another machine (which cannot check the process), it fails once the beat is stale.
  const beat = path.join(project.root, "flows", "HangFlow", runId, "_heartbeat.json");
  const info = JSON.parse(fs.readFileSync(beat, "utf8")) as Record<string, unknown>;
  fs.writeFileSync(beat, JSON.stringify({ ...info, host: "another-machine" }));
  assert.equal((await Run.get(`HangFlow/${runId}`, opts)).status, "running");
  await until("the stale heartbeat to fail the run", async () => (await Run.get(`HangFlow/${runId}`, opts)).status === "failed");

  // A dead run resumes without --force; the finished start task is cloned.
  fs.writeFileSync(gate, "");
  const resumed = await project.cli(["resume", "hang.ts", "--origin-run-id", runId], { env: { ...ENV, GATE: gate } });
  assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
  assert.match(resumed.stdout, /\/start\/\d+\] Cloned from/);
});

void test("a bad METAFLOW_HEARTBEAT_TIMEOUT is refused with the variable's name", async () => {
  const r = await project.cli(["runs", "HangFlow"], { env: { METAFLOW_HEARTBEAT_TIMEOUT: "soon" } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /METAFLOW_HEARTBEAT_TIMEOUT/);
  assert.match(r.stderr, /"soon"/);
});

void test("a run a scheduler drives (Step Functions) has no local heartbeat, so it never reads as dead; a losing idempotent claim stops its beat", async () => {
  const { LocalMetadata } = await import("../src/metadata/local.js");
  const metadata = new LocalMetadata(project.root, { heartbeatTimeoutMs: 1000 });
  const record = { flow: "DrivenFlow", user: "ann", createdAt: Date.now(), parameters: {}, parameterRefs: [], systemTags: [], tags: [], codePackage: "0".repeat(64), flowFile: "driven.ts", className: "DrivenFlow" };
  try {
    const driven = await metadata.newRun({ ...record, orchestrator: "step-functions" }, { idempotencyKey: "execution-0001" });
    assert.equal(fs.existsSync(path.join(metadata.runDir("DrivenFlow", driven), "_heartbeat.json")), false);
    assert.equal(await metadata.newRun({ ...record, orchestrator: "step-functions" }, { idempotencyKey: "execution-0001" }), driven, "the same key is the same run");
    const local = await metadata.newRun(record);
    assert.equal(fs.existsSync(path.join(metadata.runDir("DrivenFlow", local), "_heartbeat.json")), true);
  } finally {
    metadata.close();
  }
});
