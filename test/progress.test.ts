/**
 * Progress on a terminal (issue 12 item 6): `metaflow run` on a real pseudo-terminal (util-linux
 * `script`) shows one live status line for a step with a large foreach instead of a line per task,
 * still prints failures, and keeps every task's lines in the logs; with its output on a pipe it
 * prints every line as before.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { CLI, Project } from "./helpers/project.js";

const FLOW = `import { FlowSpec, step, current, retry } from "metaflow-ts";
export default class ProgressFlow extends FlowSpec {
  declare items: number[];
  @step start() { this.items = Array.from({ length: 120 }, (_, i) => i); this.next(this.work, { foreach: "items" }); }
  @retry({ times: 1 })
  @step work() {
    console.log("working on " + this.input);
    if (this.input === 7 && current.retryCount === 0) throw new Error("seven fails once");
    this.next(this.join);
  }
  @step join(inputs: unknown) { this.next(this.end); }
  @step end() {}
}
`;

/** Where `script` is, or why the test cannot run (a failure in CI). */
function scriptAvailability(): { skip: string } | undefined {
  if (spawnSync("script", ["--version"], { stdio: "ignore" }).status === 0) return undefined;
  const why = "util-linux 'script' is not installed (apt-get install -y bsdutils)";
  if (process.env.CI === "true") throw new Error(`${why}; CI must run the terminal test`);
  return { skip: why };
}

/** Runs `metaflow ...args` on a pseudo-terminal in `cwd`; resolves with everything the terminal received. */
function onTerminal(cwd: string, args: readonly string[]): Promise<{ code: number | null; out: string }> {
  const command = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ");
  const child = spawn("script", ["-qfec", command, "/dev/null"], { cwd, env: { ...process.env, TERM: "xterm" }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  return new Promise((resolve) => child.once("close", (code) => (clearTimeout(timer), resolve({ code, out }))));
}

const missing = scriptAvailability();

void describe("progress of a large foreach", { skip: missing?.skip ?? false }, () => {
  const p = new Project();
  before(() => void p.write("progress.ts", FLOW));
  after(() => p.cleanup());

  void it("on a terminal: one status line for the large step, failures still printed, every task's lines in its logs", async () => {
    const { code, out } = await onTerminal(p.dir, ["run", "progress.ts", "--max-num-splits", "200"]);
    assert.equal(code, 0, out);
    const runId = await p.latestRun("ProgressFlow");
    // Small steps keep their per-task lines.
    assert.match(out, new RegExp(`\\[${runId}/start/1 \\(pid \\d+\\)\\] Task is starting\\.`));
    assert.match(out, new RegExp(`\\[${runId}/join/\\d+ \\(pid \\d+\\)\\] Task finished successfully\\.`));
    // The large one has a status line, redrawn in place, and a final line.
    assert.doesNotMatch(out, /\/work\/\d+ \(pid \d+\)\] Task is starting\./);
    assert.doesNotMatch(out, /working on/);
    assert.match(out, /\r\x1b\[2Kwork: \d+\/120 done/);
    assert.match(out, /work: 120\/120 done, 1 failed in \d+s\r?\n/);
    assert.ok(out.indexOf("work: 120/120 done") < out.search(/\/join\/\d+ \(pid/), "the step's final line comes before the next step's lines");
    // The failed attempt is still shown in full.
    assert.match(out, /\/work\/\d+ \(pid \d+\)\] Error: seven fails once/);
    assert.match(out, /\/work\/\d+ \(pid \d+\)\] Task failed; retrying \(attempt 2 of 2\)/);
    assert.match(out, /Done! ProgressFlow\/\d+: 123 tasks, 1 retried attempt/);

    const logs = await p.cli(["logs", `ProgressFlow/${runId}/work`]);
    assert.equal(logs.code, 0, logs.stderr);
    assert.equal(logs.stdout.match(/working on \d+/g)?.length, 120, "every task's output is in its logs");
  });

  void it("on a pipe: every line, as before, and no control sequences", async () => {
    const r = await p.cli(["run", "progress.ts", "--max-num-splits", "200"]);
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout + r.stderr;
    assert.equal(out.match(/\/work\/\d+ \(pid \d+\)\] Task is starting\./g)?.length, 121);
    assert.equal(out.match(/\/work\/\d+ \(pid \d+\)\] working on \d+/g)?.length, 121);
    assert.equal(out.match(/\/work\/\d+ \(pid \d+\)\] Task finished successfully\./g)?.length, 120);
    assert.doesNotMatch(out, /\x1b|work: \d+\/120 done/);
  });
});
