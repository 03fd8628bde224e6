/**
 * Output never piles up in memory: a step that prints faster than the CLI's stdout is read waits
 * for the reader (backpressure from the console down to the step), and `metaflow logs` and the
 * client's `loglines()` stream a log instead of loading it whole. Memory is measured as the peak
 * RSS the process itself reports when it exits.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { namespace, Task } from "../src/index.js";
import { CLI, Project } from "./helpers/project.js";

const project = new Project();
after(() => project.cleanup());
namespace(null);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Loaded before the CLI: prints the process's peak RSS (in KiB) to stderr as it exits.
const PRELOAD = project.write("maxrss.mjs", `import { writeSync } from "node:fs";\nprocess.on("exit", () => writeSync(2, "\\nmaxrss-kb=" + process.resourceUsage().maxRSS + "\\n"));\n`);

function peakMb(stderr: string): number {
  const kb = Number(/maxrss-kb=(\d+)/.exec(stderr)?.[1]);
  assert.ok(kb > 0, stderr.slice(-2000));
  return kb / 1024;
}

/** Runs the CLI with the peak-RSS report; `read` decides when its stdout is consumed. */
function cli(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ["--import", path.join(project.dir, PRELOAD), CLI, ...args], {
    cwd: project.dir,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr += t));
  const closed = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
  return { child, closed, stderr: () => stderr };
}

/** Consumes a stream and counts its lines, keeping only the last bytes. */
function drain(stream: NodeJS.ReadableStream): Promise<{ lines: number; tail: string }> {
  return new Promise((resolve) => {
    let lines = 0;
    let tail = "";
    stream.on("data", (chunk: Buffer) => {
      for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) lines++;
      tail = (tail + chunk.toString("utf8")).slice(-4000);
    });
    stream.on("end", () => resolve({ lines, tail }));
  });
}

const LINES = 48 * 1024;

void test("a step printing faster than the CLI's stdout is read waits for the reader; the CLI's memory stays bounded", async () => {
  const marker = path.join(project.dir, "printed");
  project.write(
    "loud.ts",
    `import * as fs from "node:fs";
import { FlowSpec, step } from "metaflow-ts";
export default class LoudFlow extends FlowSpec {
  @step start() {
    const line = "x".repeat(1000);
    for (let i = 0; i < ${LINES}; i++) console.log(i + " " + line);
    fs.writeFileSync(process.env.MARKER!, "");
    this.next(this.end);
  }
  @step end() {}
}`,
  );
  const run = cli(["run", "loud.ts"], { MARKER: marker });
  let out: { lines: number; tail: string };
  try {
    // Nobody reads the CLI's stdout yet: with backpressure the step cannot get through ~48 MB.
    await sleep(3000);
    assert.equal(fs.existsSync(marker), false, "the step finished printing although nobody read the output");
  } finally {
    // Read it all in any case, so a failed check leaves no process behind.
    out = await drain(run.child.stdout);
  }
  assert.equal(await run.closed, 0, run.stderr());
  assert.ok(fs.existsSync(marker));
  assert.ok(out.lines >= LINES, `${out.lines} lines`);
  assert.match(out.tail, /Done!/);
  const mb = peakMb(run.stderr());
  assert.ok(mb < 200, `the CLI peaked at ${mb.toFixed(0)} MB for ~${LINES / 1024} MB of output`);
});

void test("metaflow logs and task.loglines() stream a big log without loading it whole", async () => {
  project.write(
    "quiet.ts",
    `import { FlowSpec, step } from "metaflow-ts";
export default class QuietFlow extends FlowSpec {
  @step start() { console.log("first"); console.error("err line"); this.next(this.end); }
  @step end() {}
}`,
  );
  const r = await new Promise<number | null>((resolve) => cli(["run", "quiet.ts"]).child.on("close", resolve));
  assert.equal(r, 0);
  const runId = (await project.metadata.listRuns("QuietFlow"))[0]!;
  // Grow the stored stdout log to ~120 MB, in the format the runtime writes.
  const file = path.join(project.root, "flows", "QuietFlow", runId, "start", "1", "attempt-0.stdout.log");
  const line = `${new Date().toISOString()}\t${"y".repeat(1000)}\n`;
  const block = line.repeat(1024);
  const fd = fs.openSync(file, "a");
  for (let i = 0; i < 120; i++) fs.writeSync(fd, block);
  fs.closeSync(fd);
  const total = 1 + 120 * 1024;

  const logs = cli(["logs", `QuietFlow/${runId}/start/1`, "--stdout"]);
  const out = await drain(logs.child.stdout);
  assert.equal(await logs.closed, 0, logs.stderr());
  assert.equal(out.lines, total);
  const mb = peakMb(logs.stderr());
  assert.ok(mb < 200, `metaflow logs peaked at ${mb.toFixed(0)} MB for a ${(fs.statSync(file).size / 2 ** 20).toFixed(0)} MB log`);

  const task = await Task.get(`QuietFlow/${runId}/start/1`, { datastoreRoot: project.root });
  let n = 0;
  let first: string | undefined;
  for await (const l of task.loglines({ streams: ["stdout"] })) {
    first ??= l.line;
    n++;
  }
  assert.equal(first, "first");
  assert.equal(n, total);
  const both = [];
  for await (const l of task.loglines()) if (both.length < 2) both.push(`${l.stream}:${l.line.slice(0, 5)}`);
  assert.deepEqual(both.sort(), ["stderr:err l", "stdout:first"]);
});
