/**
 * Recovery advice that recovers: resume never clones a task whose stored objects are missing or
 * corrupt (it reruns it, and everything after it), and the missing-object messages give a command
 * that works — run here exactly as printed.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { contentKey } from "../src/datastore/cas.js";
import { LostObjectError } from "../src/datastore/object-format.js";
import { Run, namespace } from "../src/index.js";
import { Project, waitForOutput } from "./helpers/project.js";

const project = new Project();
after(() => project.cleanup());

const FLOW = `import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { randomBytes } from "node:crypto";
import { FlowSpec, step } from "metaflow-ts";
export default class RecoverFlow extends FlowSpec {
  declare small: number[]; declare big: Buffer; declare total: number; declare size: number;
  @step start() {
    fs.appendFileSync(process.env.COUNTER!, "start\\n");
    this.small = [1, 2, 3];
    // Random bytes: stored raw (not compressed), over the size resume reads in full.
    this.big = process.env.BIG_SEED ? Buffer.alloc(3 * 1024 * 1024, Number(process.env.BIG_SEED)) : randomBytes(3 * 1024 * 1024);
    this.next(this.mid);
  }
  @step async mid() {
    fs.appendFileSync(process.env.COUNTER!, "mid\\n");
    while (process.env.GATE && !fs.existsSync(process.env.GATE)) await new Promise((r) => setTimeout(r, 20));
    if (process.env.FAIL_MID) throw new Error("mid fails");
    this.total = this.small.reduce((a, b) => a + b, 0);
    this.size = this.big.length;
    this.next(this.end);
  }
  @step end() {}
}
`;
project.write("recover.ts", FLOW);

function objectFile(hash: string): string {
  return path.join(project.root, contentKey(hash));
}

async function startRefs(runId: string) {
  return project.artifacts("RecoverFlow", runId, "start");
}

function counts(file: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of fs.readFileSync(file, "utf8").split("\n").filter(Boolean)) m.set(line, (m.get(line) ?? 0) + 1);
  return m;
}

async function failedRun(counter: string): Promise<string> {
  const r = await project.cli(["run", "recover.ts"], { env: { COUNTER: counter, FAIL_MID: "1" } });
  assert.equal(r.code, 1, r.stderr);
  return project.latestRun("RecoverFlow");
}

async function resumeCompletes(origin: string, counter: string): Promise<{ stdout: string; runId: string }> {
  const r = await project.cli(["resume", "recover.ts", "--origin-run-id", origin], { env: { COUNTER: counter } });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const runId = await project.latestRun("RecoverFlow");
  assert.equal(await project.value("RecoverFlow", runId, "end", "total"), 6);
  assert.equal(await project.value("RecoverFlow", runId, "end", "size"), 3 * 1024 * 1024);
  assert.deepEqual(await project.value("RecoverFlow", runId, "start", "small"), [1, 2, 3]);
  assert.equal(((await project.value("RecoverFlow", runId, "start", "big")) as Buffer).length, 3 * 1024 * 1024);
  return { stdout: r.stdout, runId };
}

void test("resume reruns a finished task whose artifact object was deleted, instead of cloning it", async () => {
  const counter = path.join(project.dir, "c1.txt");
  const origin = await failedRun(counter);
  fs.rmSync(objectFile((await startRefs(origin)).get("small")!.hash));
  const { stdout } = await resumeCompletes(origin, counter);
  assert.match(stdout, /\/start\/\d+\] Not cloned: its artifact 'small' \(object [0-9a-f]{12}…\) is missing from the datastore; running the task again\./);
  assert.doesNotMatch(stdout, /\/start\/\d+\] Cloned from/);
  assert.equal(counts(counter).get("start"), 2);
});

void test("resume reruns a task whose small object is corrupt (its hash is checked) and stores it again", async () => {
  const counter = path.join(project.dir, "c2.txt");
  const origin = await failedRun(counter);
  const file = objectFile((await startRefs(origin)).get("small")!.hash);
  const bytes = fs.readFileSync(file);
  bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
  fs.writeFileSync(file, bytes);
  const { stdout } = await resumeCompletes(origin, counter);
  assert.match(stdout, /\/start\/\d+\] Not cloned: its artifact 'small' \(object [0-9a-f]{12}…\) is corrupt/);
  assert.equal(counts(counter).get("start"), 2);
  // The origin run reads again too: the rerun stored the same value under the same hash.
  assert.deepEqual(await project.value("RecoverFlow", origin, "start", "small"), [1, 2, 3]);
});

void test("resume reruns a task whose big object was truncated (its length is checked)", async () => {
  const counter = path.join(project.dir, "c3.txt");
  const origin = await failedRun(counter);
  const file = objectFile((await startRefs(origin)).get("big")!.hash);
  fs.truncateSync(file, 1024 * 1024);
  const { stdout } = await resumeCompletes(origin, counter);
  assert.match(stdout, /\/start\/\d+\] Not cloned: its artifact 'big' \(object [0-9a-f]{12}…\) is corrupt/);
  assert.equal(counts(counter).get("start"), 2);
});

void test("a task that finds its input deleted fails with a resume command that, run as printed, recovers", async () => {
  const counter = path.join(project.dir, "c4.txt");
  const gate = path.join(project.dir, "gate4");
  const child = project.spawn(["run", "recover.ts"], { COUNTER: counter, GATE: gate, BIG_SEED: "4" });
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (t: string) => (out += t));
  child.stderr.setEncoding("utf8").on("data", (t: string) => (err += t));
  await waitForOutput(() => out, /\/mid\/\d+ .*Task is starting/);
  const runId = await project.latestRun("RecoverFlow");
  fs.rmSync(objectFile((await startRefs(runId)).get("small")!.hash));
  fs.writeFileSync(gate, "");
  const code = await new Promise<number | null>((r) => child.on("close", (c) => r(c)));
  assert.equal(code, 1, out + err);
  assert.match(err, /Object [0-9a-f]{64} is not in the datastore/);
  assert.match(err, /resume reruns every task whose stored objects are missing/);
  const command = /To resume it: npx (metaflow resume .*)$/m.exec(err)?.[1];
  assert.ok(command, err);
  const r = await project.cli(command.split(" ").slice(1), { env: { COUNTER: counter } });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const resumed = await project.latestRun("RecoverFlow");
  assert.equal(await project.value("RecoverFlow", resumed, "end", "total"), 6);
});

void test("the client's missing-object error names the resume command of the run, which recovers it", async () => {
  const counter = path.join(project.dir, "c5.txt");
  const r = await project.cli(["run", "recover.ts"], { env: { COUNTER: counter, BIG_SEED: "5" } });
  assert.equal(r.code, 0, r.stderr);
  const runId = await project.latestRun("RecoverFlow");
  fs.rmSync(objectFile((await startRefs(runId)).get("small")!.hash));
  const dump = await project.cli(["dump", `RecoverFlow/${runId}/start`]);
  assert.notEqual(dump.code, 0);
  const command = /`npx (metaflow resume [^`]+)`/.exec(dump.stderr)?.[1];
  assert.ok(command, dump.stderr);
  assert.equal(command, `metaflow resume recover.ts --origin-run-id ${runId}`);
  const again = await project.cli(command.split(" ").slice(1), { env: { COUNTER: counter, BIG_SEED: "5" } });
  assert.equal(again.code, 0, again.stdout + again.stderr);
  // Same code, same value: the rerun stored the object again, so the first run reads too.
  const fixed = await project.cli(["dump", `RecoverFlow/${runId}/start`]);
  assert.equal(fixed.code, 0, fixed.stderr);
  assert.match(fixed.stdout, /small: Array, \d+ B = \[ 1, 2, 3 \]/);
});

void test("the client says how to recover a lost object once, with the run's own command, and keeps the original error", async () => {
  const counter = path.join(project.dir, "c6.txt");
  const r = await project.cli(["run", "recover.ts"], { env: { COUNTER: counter, BIG_SEED: "6" } });
  assert.equal(r.code, 0, r.stderr);
  const runId = await project.latestRun("RecoverFlow");
  const refs = await startRefs(runId);
  // A second object, small and deleted: the client must name the resume command once.
  fs.rmSync(objectFile(refs.get("small")!.hash));
  namespace(null);
  const task = await (await (await Run.get(`RecoverFlow/${runId}`, { datastoreRoot: project.root })).step("start")).task();
  const lost = await task.artifact("small").data().then(
    () => assert.fail("a deleted object cannot load"),
    (err: unknown) => err,
  );
  assert.ok(lost instanceof LostObjectError, String(lost));
  const command = `npx metaflow resume recover.ts --origin-run-id ${runId}`;
  assert.equal(lost.message.split(command).length - 1, 1, lost.message);
  assert.doesNotMatch(lost.message, /FLOW_FILE|RUN_ID|For this run/);
  assert.ok(lost.cause instanceof LostObjectError && lost.cause.stack, "the store's error is the cause");
});

void test("the client's resume command quotes a flow file whose name the shell would split", async () => {
  const file = "recover copy's.ts";
  project.write(file, FLOW);
  const counter = path.join(project.dir, "c7.txt");
  const r = await project.cli(["run", file], { env: { COUNTER: counter, BIG_SEED: "7" } });
  assert.equal(r.code, 0, r.stderr);
  const runId = await project.latestRun("RecoverFlow");
  fs.rmSync(objectFile((await startRefs(runId)).get("small")!.hash));
  namespace(null);
  const task = await (await (await Run.get(`RecoverFlow/${runId}`, { datastoreRoot: project.root })).step("start")).task();
  const message = await task.artifact("small").data().then(
    () => assert.fail("a deleted object cannot load"),
    (err: unknown) => (err as Error).message,
  );
  const command = /`npx (metaflow resume [^`]+)`/.exec(message)?.[1];
  assert.ok(command, message);
  // What a shell makes of the command as printed: the file name stays one argument.
  const words = execFileSync("sh", ["-c", `printf '%s\\n' ${command}`], { encoding: "utf8" }).split("\n").slice(0, -1);
  assert.deepEqual(words, ["metaflow", "resume", file, "--origin-run-id", runId]);
});
