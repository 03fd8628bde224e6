/**
 * Child processes never outlive their task: a real `sleep` a step spawns (directly, through a
 * shell, or detached in a session of its own) is gone from /proc after the task ends, after
 * `@timeout` stops it, and after SIGTERM or SIGINT is sent to the CLI's pid alone.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { Project, waitForOutput } from "./helpers/project.js";

const project = new Project();
after(() => project.cleanup());
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether a process is still running (a zombie waiting to be reaped counts as gone). */
function running(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Waits a little for the kernel to deliver the kills, then lists the pids still running. */
async function survivors(pids: number[]): Promise<number[]> {
  for (let i = 0; i < 40 && pids.some(running); i++) await sleep(50);
  const alive = pids.filter(running);
  for (const pid of alive) process.kill(pid, "SIGKILL");
  return alive;
}

function pidsIn(file: string): number[] {
  return fs.existsSync(file) ? fs.readFileSync(file, "utf8").split(/\s+/).filter(Boolean).map(Number) : [];
}

/** Steps that spawn sleeps three ways and record their pids in $PIDS. */
const SPAWN = `
    const direct = spawn("sleep", ["1000"], { stdio: "ignore" });
    const detached = spawn("sleep", ["1001"], { stdio: "ignore", detached: true });
    detached.unref();
    // A shell that backgrounds a sleep and exits at once: the sleep is orphaned.
    const viaShell = execSync("sleep 1002 >/dev/null 2>&1 & echo $!").toString().trim();
    fs.appendFileSync(process.env.PIDS!, [direct.pid, detached.pid, viaShell].join(" ") + " ");`;

const HEADER = `import * as fs from "node:fs";\nimport { spawn, execSync } from "node:child_process";\nimport { FlowSpec, step, timeout } from "metaflow-ts";\n`;

void test("processes a step spawned are killed when the task ends on a shared host", async () => {
  const pids = path.join(project.dir, "pids1.txt");
  project.write(
    "spawner.ts",
    `${HEADER}
export default class SpawnerFlow extends FlowSpec {
  @step start() {${SPAWN}
    this.next(this.check);
  }
  @step check() { this.next(this.end); }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "spawner.ts", "--max-workers", "1"], { env: { PIDS: pids } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(pidsIn(pids).length, 3);
  assert.deepEqual(await survivors(pidsIn(pids)), []);
});

void test("@timeout kills the task's whole process tree, in a shared host and in a process of its own", async () => {
  for (const isolation of ["context", "process"]) {
    const pids = path.join(project.dir, `pids2-${isolation}.txt`);
    project.write(
      "stuck.ts",
      `${HEADER}
export default class StuckFlow extends FlowSpec {
  @timeout({ seconds: 2 }) @step async start() {${SPAWN}
    await new Promise((r) => setTimeout(r, 60000));
    this.next(this.end);
  }
  @step end() {}
}`,
    );
    const r = await project.cli(["run", "stuck.ts", "--isolation", isolation], { env: { PIDS: pids } });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /timed out after 2 s/);
    assert.equal(pidsIn(pids).length, 3);
    assert.deepEqual(await survivors(pidsIn(pids)), [], `--isolation ${isolation}`);
  }
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  void test(`${signal} sent to the CLI's pid alone kills every process its tasks spawned`, async () => {
    const pids = path.join(project.dir, `pids3-${signal}.txt`);
    project.write(
      "hold.ts",
      `${HEADER}
export default class HoldFlow extends FlowSpec {
  declare items: number[];
  @step start() { this.items = [1, 2]; this.next(this.hold, { foreach: "items" }); }
  @step async hold() {${SPAWN}
    console.log("spawned");
    await new Promise((r) => setTimeout(r, 60000));
    this.next(this.join);
  }
  @step join() { this.next(this.end); }
  @step end() {}
}`.replace("@step join() {", "@step join(inputs: unknown) {"),
    );
    const child = project.spawn(["run", "hold.ts"], { PIDS: pids });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (t: string) => (out += t));
    child.stderr.resume();
    await waitForOutput(() => out, /spawned(.|\n)*spawned/);
    child.kill(signal);
    const code = await new Promise<number | null>((r) => child.on("close", (c) => r(c)));
    assert.equal(code, 130);
    assert.equal(pidsIn(pids).length, 6);
    assert.deepEqual(await survivors(pidsIn(pids)), []);
  });
}

void test("a runtime killed with SIGKILL takes its worker host and the processes its tasks spawned with it", async () => {
  const pids = path.join(project.dir, "pids-orphan.txt");
  project.write(
    "orphaned.ts",
    `${HEADER}
export default class OrphanedFlow extends FlowSpec {
  @step start() {${SPAWN}
    console.log("spawned");
    for (;;);
    this.next(this.end);
  }
  @step end() {}
}`,
  );
  const child = project.spawn(["run", "orphaned.ts"], { PIDS: pids });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (t: string) => (out += t));
  await waitForOutput(() => out, /spawned/);
  const host = Number(/\/start\/\d+ \(pid (\d+)\)\]/.exec(out)?.[1]);
  assert.ok(host > 0, out);
  child.kill("SIGKILL");
  // The host's watchdog sees its parent gone (it checks twice a second), even with the step spinning.
  for (let i = 0; i < 100 && running(host); i++) await sleep(50);
  const hostSurvived = running(host);
  // Whatever the verdict, nothing this test started keeps spinning after it.
  if (hostSurvived) process.kill(host, "SIGKILL");
  assert.equal(hostSurvived, false, "the worker host outlived the runtime");
  assert.deepEqual(await survivors(pidsIn(pids)), []);
});
