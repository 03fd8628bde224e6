/**
 * Output figures (issue 8): the peak RSS of the CLI while a step prints 500 MB and the CLI's
 * stdout is read by a slow reader, and of reading a 200 MB log with `metaflow logs`,
 * `task.loglines()` and `task.stdout()`. Each process reports its own peak RSS as it exits.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CLI, DIST_INDEX, type BenchRow } from "./common.js";



const LOUD = `import { FlowSpec, Parameter, step } from "metaflow-ts";
export default class LoudFlow extends FlowSpec {
  mb = Parameter("mb", { default: 500 });
  @step start() {
    const line = "x".repeat(1023);
    for (let i = 0; i < this.mb * 1024; i++) console.log(line);
    this.next(this.end);
  }
  @step end() {}
}
`;

/** Runs node with `args`, reading its stdout `slowly` or as fast as it comes; resolves to its peak RSS (MB) and wall time. */
function measure(dir: string, args: string[], slowly: boolean): Promise<{ mb: number; seconds: number; bytes: number }> {
  const preload = path.join(dir, "maxrss.mjs");
  fs.writeFileSync(preload, `import { writeSync } from "node:fs";\nprocess.on("exit", () => writeSync(2, "\\nmaxrss-kb=" + process.resourceUsage().maxRSS + "\\n"));\n`);
  const t0 = performance.now();
  const child = spawn(process.execPath, ["--import", preload, ...args], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  let bytes = 0;
  child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr = (stderr + t).slice(-20_000)));
  child.stdout.on("data", (chunk: Buffer) => {
    bytes += chunk.length;
    if (!slowly) return;
    // A slow reader: about 64 KiB per millisecond at most, well below what a step can print.
    child.stdout.pause();
    setTimeout(() => child.stdout.resume(), 1);
  });
  return new Promise((resolve, reject) => {
    child.on("close", (code) => {
      const kb = Number(/maxrss-kb=(\d+)/.exec(stderr)?.[1]);
      if (code !== 0 || !kb) reject(new Error(`${args.join(" ")} failed (${code}):\n${stderr}`));
      else resolve({ mb: kb / 1024, seconds: (performance.now() - t0) / 1000, bytes });
    });
  });
}

/** The figures, as rows for bench/run.ts. */
export async function benchOutput(): Promise<BenchRow[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mf-bench-output-"));
  fs.mkdirSync(path.join(dir, ".metaflow"));
  fs.writeFileSync(path.join(dir, "loud.ts"), LOUD);
  const rows: BenchRow[] = [];
  try {
    const run = await measure(dir, [CLI, "run", "loud.ts"], true);
    rows.push({ name: "CLI peak RSS, 500 MB of task output, slow reader", value: run.mb, unit: "MB", note: `${(run.bytes / 2 ** 20).toFixed(0)} MB read in ${run.seconds.toFixed(1)} s` });

    // A 200 MB stored log: the run's own 500 MB log, cut to 200 MB of whole lines.
    const flowDir = path.join(dir, ".metaflow", "flows", "LoudFlow");
    const runId = fs.readdirSync(flowDir).find((d) => /^\d+$/.test(d))!;
    const log = path.join(flowDir, runId, "start", "1", "attempt-0.stdout.log");
    const fd = fs.openSync(log, "r+");
    const cutAt = 200 * 2 ** 20;
    const probe = Buffer.alloc(4096);
    fs.readSync(fd, probe, 0, probe.length, cutAt);
    fs.ftruncateSync(fd, cutAt + probe.indexOf(10) + 1);
    fs.closeSync(fd);
    const size = `${(fs.statSync(log).size / 2 ** 20).toFixed(0)} MB log`;
    const pathspec = `LoudFlow/${runId}/start/1`;

    const logs = await measure(dir, [CLI, "logs", pathspec, "--stdout"], false);
    rows.push({ name: "`metaflow logs` peak RSS, 200 MB log", value: logs.mb, unit: "MB", note: `${size}, ${logs.seconds.toFixed(1)} s` });

    const client = (body: string) => [
      "--input-type=module",
      "-e",
      `import { Task, namespace } from ${JSON.stringify(DIST_INDEX)}; namespace(null); const task = await Task.get(${JSON.stringify(pathspec)}); ${body}`,
    ];
    const lines = await measure(dir, client(`let n = 0; for await (const l of task.loglines({ streams: ["stdout"] })) n += l.line.length; console.log(n);`), false);
    rows.push({ name: "task.loglines() peak RSS, 200 MB log", value: lines.mb, unit: "MB", note: `${size}, ${lines.seconds.toFixed(1)} s` });
    const whole = await measure(dir, client(`console.log((await task.stdout()).length);`), false);
    rows.push({ name: "task.stdout() peak RSS, 200 MB log", value: whole.mb, unit: "MB", note: `returns the whole text as one string; ${whole.seconds.toFixed(1)} s` });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
