/**
 * What one task does cannot be charged to another, nor forge the runtime's protocol: a stray
 * rejection from a finished task is a warning in that task's log, never another task's failure;
 * messages from user code (process.send, writes to the host's channel) are refused; and the few
 * module features a step may use — `await import(name)`, a thrown plain object — work or say why.
 */
import assert from "node:assert/strict";
import * as net from "node:net";
import { after, test } from "node:test";
import { Project } from "./helpers/project.js";

const project = new Project();
after(() => project.cleanup());

const HEADER = `import * as fs from "node:fs";\nimport { FlowSpec, step, resources, type Inputs } from "metaflow-ts";\n`;

/** A step body that rejects a promise of Node's own realm 300 ms later, after the step returned. */
const LATE_REJECTION = `require("node:timers/promises").setTimeout(300).then(() => { throw new Error("late failure of " + "fire") });`;

void test("a stray rejection from a finished task is a warning in that task's log; the next task on the host is not failed", async () => {
  project.write(
    "stray.ts",
    `${HEADER}declare const require: (id: string) => any;
export default class StrayFlow extends FlowSpec {
  declare slept: boolean;
  @step start() { this.next(this.fire); }
  @step fire() { ${LATE_REJECTION} this.next(this.slow); }
  @step async slow() { await new Promise((r) => setTimeout(r, 1500)); this.slept = true; this.next(this.end); }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "stray.ts", "--max-workers", "1"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const pidOf = (step: string) => new RegExp(`/${step}/\\d+ \\(pid (\\d+)\\)`).exec(r.stdout)?.[1];
  assert.equal(pidOf("fire"), pidOf("slow"), "fire and slow ran on the same host");
  assert.match(r.stderr, /\/fire\/2 \(pid \d+\)\] Warning: after the task ended, its code raised Error: late failure of fire/);
  const runId = await project.latestRun("StrayFlow");
  assert.equal(await project.value("StrayFlow", runId, "slow", "slept"), true);
  const logs = await project.cli(["logs", `StrayFlow/${runId}/fire/2`, "--stderr"]);
  assert.match(logs.stderr, /Warning: after the task ended, its code raised Error: late failure of fire/);
});

void test("a fire-and-forget fetch whose connection drops after the task ended, and a rejection of Node's own, fail no other task", async () => {
  // A server that accepts and drops each connection a moment later, as a flaky service does.
  const server = net.createServer((socket) => setTimeout(() => socket.destroy(), 300));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    project.write(
      "fetchstray.ts",
      `${HEADER}declare const require: (id: string) => any;
export default class FetchStrayFlow extends FlowSpec {
  declare slept: boolean;
  @step start() { this.next(this.fire); }
  @step fire() {
    fetch("http://127.0.0.1:${port}/").then((r) => r.text());
    // A promise of Node's own realm, rejected with Node's own error: no task's code made either.
    require("node:timers/promises").setTimeout(400).then(() => require("node:fs").promises.readFile("/no/such/file"));
    this.next(this.slow);
  }
  @step async slow() { await new Promise((r) => setTimeout(r, 1500)); this.slept = true; this.next(this.end); }
  @step end() {}
}`,
    );
    const r = await project.cli(["run", "fetchstray.ts", "--max-workers", "1"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stderr, /\/fire\/2 \(pid \d+\)\] Warning: after the task ended, its code raised TypeError: fetch failed/);
    assert.match(r.stderr, /\[worker host pid \d+\] Warning: an error no task can be charged with was raised: Error: ENOENT/);
    assert.equal(await project.value("FetchStrayFlow", await project.latestRun("FetchStrayFlow"), "slow", "slept"), true);
  } finally {
    server.close();
  }
});

void test("a stray rejection that reaches an idle host is reported, not dropped silently", async () => {
  project.write(
    "idle.ts",
    `${HEADER}declare const require: (id: string) => any;
export default class IdleFlow extends FlowSpec {
  @step start() { this.next(this.fire); }
  @step fire() { ${LATE_REJECTION} this.next(this.alone); }
  // A process of its own: the shared host that ran 'fire' is idle meanwhile.
  @resources({ memory: 512 }) @step async alone() { await new Promise((r) => setTimeout(r, 1500)); this.next(this.end); }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "idle.ts", "--max-workers", "1"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stderr, /\/fire\/2 \(pid \d+\)\] Warning: after the task ended, its code raised Error: late failure of fire/);
});

void test("a rejection of the running task's own still fails it", async () => {
  project.write(
    "own.ts",
    `${HEADER}declare const require: (id: string) => any;
export default class OwnFlow extends FlowSpec {
  @step async start() { ${LATE_REJECTION} await new Promise((r) => setTimeout(r, 1000)); this.next(this.end); }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "own.ts"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Step 'start' failed .*late failure of fire/);
});

void test("the task's process object hides the host's IPC; forged protocol messages are refused and crash nothing", async () => {
  project.write(
    "forge.ts",
    `${HEADER}
export default class ForgeFlow extends FlowSpec {
  declare sendVisible: string; declare worked: boolean; declare items: number[]; declare each: number;
  @step start() {
    const p = process as any;
    // Code that escapes its context reaches the host's real process through a shared function:
    // a host has no IPC channel at all.
    const real = (Buffer as any).constructor("return process")();
    this.sendVisible = [typeof p.send, typeof Object.getPrototypeOf(p)?.send, "channel" in p, typeof p.binding, typeof real.send].join(",");
    this.worked = true;
    this.items = [1, 2];
    this.next(this.each, { foreach: "items" });
  }
  @step each() {
    // Well-formed frames written straight into the host's pipes, without the host's key: one
    // claims the task is done, one is not even JSON.
    const frame = (body: Buffer) => { const head = Buffer.alloc(6); head.writeUInt8(0x4d, 0); head.writeUInt8(3, 1); head.writeUInt32BE(body.length, 2); return Buffer.concat([head, body]); };
    const forged = frame(Buffer.from(JSON.stringify({ type: "done", taskId: "2", attempt: 0, ok: true, artifacts: [], transition: { kind: "end" }, timings: {} })));
    for (const fd of [3, 4]) { fs.writeSync(fd, forged); fs.writeSync(fd, frame(Buffer.from("not json"))); }
    this.each = this.index;
    this.next(this.join);
  }
  @step join(inputs: Inputs<ForgeFlow>) { this.eachs = inputs.map((i) => i.each); this.next(this.end); }
  @step end() {}
}`.replace("declare each: number;", "declare each: number; declare eachs: number[];"),
  );
  const r = await project.cli(["run", "forge.ts"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const runId = await project.latestRun("ForgeFlow");
  assert.equal(await project.value("ForgeFlow", runId, "start", "sendVisible"), "undefined,undefined,false,undefined,undefined");
  assert.equal(await project.value("ForgeFlow", runId, "start", "worked"), true);
  // The forged 'done' neither cut the steps short nor replaced their results.
  assert.deepEqual(await project.value("ForgeFlow", runId, "join", "eachs"), [0, 1]);
  assert.match(r.stderr, /\/each\/\d+ .*Warning: ignored a message without the host's key/);
  assert.match(r.stderr, /\/each\/\d+ .*Warning: ignored \d+ bytes a task's code wrote into the host's command pipe/);
  assert.doesNotMatch(r.stderr, /Internal error/);
});

void test("garbage written into the host's channel fails that task with a clear error, not the runtime", async () => {
  project.write(
    "garble.ts",
    `${HEADER}
export default class GarbleFlow extends FlowSpec {
  @step start() {
    fs.writeSync(4, Buffer.from("garbage that is no frame at all".repeat(10)));
    this.next(this.end);
  }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "garble.ts"]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /Step 'start' failed .*protocol/i);
  assert.doesNotMatch(r.stderr, /Internal error/);
  const runId = await project.latestRun("GarbleFlow");
  assert.equal((await project.metadata.getRunEnd("GarbleFlow", runId))?.status, "failed");
});

void test("await import(name) works inside a step: a relative module, a package, a built-in", async () => {
  project.write("lib/answer.mjs", `export const answer = 42;\nexport default "dflt";\n`);
  project.write(
    "dynimport.ts",
    `${HEADER}
export default class DynImportFlow extends FlowSpec {
  declare got: unknown[];
  @step async start() {
    const rel = "./lib/answer.mjs";
    const mod = await import(rel);
    const builtin = "node:path";
    const path = await import(builtin);
    this.got = [mod.answer, mod.default, path.basename("/a/b.txt")];
    this.next(this.end);
  }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "dynimport.ts"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.doesNotMatch(r.stderr, /ExperimentalWarning/);
  assert.deepEqual(await project.value("DynImportFlow", await project.latestRun("DynImportFlow"), "start", "got"), [42, "dflt", "b.txt"]);
});

void test("top-level await in a flow file is refused with where it is and what to do instead", async () => {
  project.write(
    "tla.ts",
    `${HEADER}
const config = await Promise.resolve({ n: 1 });
export default class TlaFlow extends FlowSpec {
  @step start() { console.log(config.n); this.next(this.end); }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "tla.ts"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /tla\.ts:4:\d+: error: top-level await/);
  assert.match(r.stderr, /top-level await is not supported in a flow file/i);
  assert.match(r.stderr, /move the awaited work into a step/i);
});

void test("a thrown plain object is reported with its content, not [object Object]", async () => {
  project.write(
    "plain.ts",
    `${HEADER}
export default class PlainThrowFlow extends FlowSpec {
  @step start() { if (this) throw { code: 42, reason: "bad input" }; this.next(this.end); }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "plain.ts"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /code: 42/);
  assert.match(r.stderr, /reason: 'bad input'/);
  assert.doesNotMatch(r.stderr, /\[object Object\]/);
});
