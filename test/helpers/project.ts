/**
 * The one test harness: a throwaway project directory with its own `.metaflow`, flow files written
 * into it, and the real `metaflow` CLI run in it as a child process — against the local datastore,
 * or against S3 and the metadata service when given a setup's environment.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { ContentStore } from "../../src/datastore/cas.js";
import { LocalStorage } from "../../src/datastore/local.js";
import type { ArtifactRef } from "../../src/datastore/types.js";
import { LocalMetadata } from "../../src/metadata/local.js";

/** The repository root. */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** The built CLI (`npm run build` first). */
export const CLI = path.join(REPO, "bin", "metaflow.js");
/** The built library, for scripts that run in a process of their own. */
export const DIST_INDEX = path.join(REPO, "dist", "index.js");

/** What a finished CLI call printed and how it ended. */
export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of one CLI call. */
export interface CliOptions {
  /** Added to the project's environment. */
  readonly env?: Record<string, string>;
  /** SIGKILL the call after this long. @default 120 s */
  readonly timeoutMs?: number;
}

/** A temporary project: a directory with flows and a private datastore. */
export class Project {
  readonly dir: string;
  /** Its `.metaflow` directory (the local datastore and local metadata). */
  readonly root: string;
  readonly metadata: LocalMetadata;
  readonly store: ContentStore;
  private readonly children = new Set<ChildProcessWithoutNullStreams>();

  /**
   * @param options.prefix temp directory name prefix
   * @param options.env environment every CLI call of this project gets (a setup's S3 / service settings)
   */
  constructor(private readonly options: { prefix?: string; env?: Record<string, string> } = {}) {
    this.dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), options.prefix ?? "mf-test-")));
    this.root = path.join(this.dir, ".metaflow");
    fs.mkdirSync(this.root);
    this.metadata = new LocalMetadata(this.root);
    this.store = new ContentStore(new LocalStorage(this.root));
  }

  /** Writes a file (creating folders) and returns its path relative to the project. */
  write(rel: string, text: string): string {
    const abs = this.path(rel);
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.writeFileSync(abs, text);
    return rel;
  }

  /** The absolute path of a file of the project. */
  path(rel: string): string {
    return path.join(this.dir, rel);
  }

  /** Starts `metaflow ...args` here without waiting; `kill()` and `cleanup()` stop it if still running. */
  spawn(args: readonly string[], env: Record<string, string> = {}): ChildProcessWithoutNullStreams {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: this.dir, env: { ...process.env, ...this.options.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
    child.stdin.end();
    this.children.add(child);
    child.once("exit", () => this.children.delete(child));
    return child;
  }

  /** Runs `metaflow ...args` here and collects its output. */
  cli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
    const child = this.spawn(args, options.env);
    const timeoutMs = options.timeoutMs ?? 120_000;
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    return collect(child).finally(() => clearTimeout(timer));
  }

  /** The newest run id of a flow in the local metadata. */
  async latestRun(flow: string): Promise<string> {
    const runs = await this.metadata.listRuns(flow);
    if (!runs[0]) throw new Error(`no runs of ${flow}`);
    return runs[0];
  }

  /** The artifacts of a task's last attempt, by name (local metadata). */
  async artifacts(flow: string, runId: string, step: string, taskId?: string): Promise<Map<string, ArtifactRef>> {
    const id = taskId ?? (await this.metadata.listTasks(flow, runId, step))[0];
    if (!id) throw new Error(`no task of ${flow}/${runId}/${step}`);
    const task = await this.metadata.getTask(flow, runId, step, id);
    const last = task?.attempts[task.attempts.length - 1];
    return new Map((last?.end?.artifacts ?? []).map((a) => [a.name, a]));
  }

  /** One artifact's value from a task (the step's first task by default; local datastore). */
  async value(flow: string, runId: string, step: string, name: string, taskId?: string): Promise<unknown> {
    const refs = await this.artifacts(flow, runId, step, taskId);
    const ref = refs.get(name);
    if (!ref) throw new Error(`no artifact ${name} in ${flow}/${runId}/${step}: ${[...refs.keys()].join(", ")}`);
    return this.store.getValue(ref);
  }

  /** SIGKILLs every CLI process started here that is still running. */
  kill(): void {
    for (const child of this.children) child.kill("SIGKILL");
  }

  /** Stops what still runs and removes the directory. */
  cleanup(): void {
    this.kill();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Collects a child's output and resolves when it has exited and its pipes are closed. */
export function collect(child: ChildProcessWithoutNullStreams): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (t: string) => (stdout += t));
  child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr += t));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Runs the CLI in `cwd` (outside any project) and collects its output. */
export function runCli(args: readonly string[], options: CliOptions & { cwd: string }): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ["pipe", "pipe", "pipe"] });
  child.stdin.end();
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
  return collect(child).finally(() => clearTimeout(timer));
}

/** Resolves once `read()` matches `pattern` (polled every 20 ms); fails after `timeoutMs`. */
export function waitForOutput(read: () => string, pattern: RegExp, timeoutMs = 60_000): Promise<void> {
  return waitFor(`output matching ${pattern}`, async () => (pattern.test(read()) ? true : undefined), timeoutMs, 20).then(() => undefined);
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** True while a process with this id exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The worker pids a run printed (`(pid N)`) that are still alive. */
export function aliveTaskPids(output: string): number[] {
  const pids = [...new Set([...output.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1])))];
  return pids.filter(alive);
}

/** The run id a `metaflow run` printed (`run-id N`); fails the test when there is none. */
export function runIdOf(output: string): string {
  const m = /run-id (\d+)/.exec(output);
  assert.ok(m, `no run id in:\n${output}`);
  return m[1]!;
}

/** Asserts the CLI call succeeded, showing its output when it did not. */
export function assertOk(r: CliResult): void {
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
}

/** Process ids of live worker hosts started from this repository's dist/worker.js. */
export function liveWorkers(): number[] {
  const out: number[] = [];
  for (const pid of fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (cmd.includes(path.join(REPO, "dist", "worker.js"))) out.push(Number(pid));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}
