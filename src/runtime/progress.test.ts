import assert from "node:assert/strict";
import { test } from "node:test";
import { formatDuration, formatProgress, formatStepDone, LiveConsole, RunProgress, type TerminalStream } from "./progress.js";

void test("formatProgress: counts with thousands separators, parts that are zero left out, an eta from the pace so far", () => {
  const t0 = 1_000_000;
  assert.equal(formatProgress("train", { total: 1000, done: 312, running: 16, failed: 2, startedAt: t0 }, t0 + 31_200), "train: 312/1,000 done, 16 running, 2 failed, eta 1m09s");
  assert.equal(formatProgress("train", { total: 1000, done: 0, running: 16, failed: 0, startedAt: t0 }, t0 + 5000), "train: 0/1,000 done, 16 running");
  assert.equal(formatProgress("x", { total: 3, done: 3, running: 0, failed: 0, startedAt: t0 }, t0 + 5000), "x: 3/3 done");
  assert.equal(formatStepDone("train", { total: 1000, done: 998, running: 0, failed: 2, startedAt: t0 }, t0 + 100_000), "train: 998/1,000 done, 2 failed in 1m40s");
  assert.deepEqual([0, 42_400, 100_000, 7_500_000].map(formatDuration), ["0s", "42s", "1m40s", "2h05m"]);
});

void test("RunProgress: only steps with more tasks than the threshold are quiet; a finished step reports once", () => {
  let now = 0;
  const p = new RunProgress(3, () => now);
  p.queued("start");
  p.started("start");
  p.ended("start", true);
  assert.equal(p.quiet("start"), false);
  for (let i = 0; i < 5; i++) p.queued("train");
  assert.equal(p.quiet("train"), true);
  assert.deepEqual(p.lines(), [], "no line before the step starts");
  p.started("train");
  p.started("train");
  now = 2000;
  p.ended("train", true);
  p.ended("train", false);
  p.started("train");
  assert.deepEqual(p.lines(), ["train: 1/5 done, 1 running, 1 failed, eta 8s"]);
  assert.deepEqual(p.finished(), []);
  p.ended("train", true);
  for (let i = 0; i < 3; i++) p.cloned("train");
  now = 4000;
  assert.deepEqual(p.finished(), ["train: 5/5 done, 1 failed in 4s"]);
  assert.deepEqual(p.finished(), [], "reported once");
  assert.deepEqual(p.lines(), []);
});

/** A fake terminal that applies the control sequences LiveConsole writes, to check what the screen shows. */
class Screen implements TerminalStream {
  readonly isTTY = true;
  readonly columns = 40;
  lines: string[] = [""];
  raw = "";
  write(text: string): boolean {
    this.raw += text;
    for (const part of text.split(/(\r\x1b\[2K|\x1b\[1A|\n)/)) {
      if (part === "\r\x1b[2K") this.lines[this.lines.length - 1] = "";
      else if (part === "\x1b[1A") this.lines.pop();
      else if (part === "\n") this.lines.push("");
      else this.lines[this.lines.length - 1] += part;
    }
    return true;
  }
}

void test("LiveConsole keeps the status lines below the printed lines, cut to the terminal's width, and ends with the final lines", () => {
  const screen = new Screen();
  let now = 0;
  const counts = new RunProgress(2, () => now);
  const live = new LiveConsole(screen, screen, counts, 10_000);
  live.write("stdout", "[1/start/1] Task is starting.");
  for (let i = 0; i < 3; i++) live.progress.queued("a_step_with_a_rather_long_name");
  live.progress.queued("b");
  live.progress.started("a_step_with_a_rather_long_name");
  live.write("stdout", "first");
  assert.deepEqual(screen.lines, ["[1/start/1] Task is starting.", "first", "a_step_with_a_rather_long_name: 0/3 do…"]);
  for (let i = 0; i < 3; i++) live.progress.queued("b");
  live.progress.started("b");
  live.write("stderr", "an error line");
  assert.deepEqual(screen.lines.slice(2), ["an error line", "a_step_with_a_rather_long_name: 0/3 do…", "b: 0/4 done, 1 running"]);
  live.progress.ended("a_step_with_a_rather_long_name", true);
  live.progress.started("a_step_with_a_rather_long_name");
  live.progress.started("a_step_with_a_rather_long_name");
  live.progress.ended("a_step_with_a_rather_long_name", true);
  now = 3000;
  live.progress.ended("a_step_with_a_rather_long_name", true);
  live.write("stdout", "second");
  assert.deepEqual(screen.lines.slice(3), ["a_step_with_a_rather_long_name: 3/3 done in 3s", "second", "b: 0/4 done, 1 running"]);
  live.close();
  assert.deepEqual(screen.lines.slice(5), ["b: 0/4 done in 3s", ""]);
  live.write("stdout", "Done!");
  assert.deepEqual(screen.lines.slice(6), ["Done!", ""]);
});

void test("LiveConsole leaves the status lines alone for lines to a stream that is not the terminal", () => {
  const screen = new Screen();
  const file: string[] = [];
  const counts = new RunProgress(1);
  const live = new LiveConsole(screen, { write: (t: string) => file.push(t) }, counts, 10_000);
  live.progress.queued("s");
  live.progress.queued("s");
  live.progress.started("s");
  live.write("stdout", "x");
  const before = screen.raw;
  live.write("stderr", "to the file");
  assert.equal(screen.raw, before);
  assert.deepEqual(file, ["to the file\n"]);
  live.close();
});
