/**
 * Test helpers: a throwaway project directory with its own `.metaflow`, and the real `metaflow`
 * CLI run in a child process against it.
 */
import { spawn } from "node:child_process";
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
/** The CLI entry point. */
export const CLI = path.join(REPO, "bin", "metaflow.js");

/** What a finished CLI call printed and returned. */
export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A temporary project: a directory with flows and a private datastore. */
export class Project {
  readonly dir: string;
  readonly root: string;
  readonly metadata: LocalMetadata;
  readonly store: ContentStore;

  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "mf-test-"));
    this.root = path.join(this.dir, ".metaflow");
    fs.mkdirSync(this.root);
    this.metadata = new LocalMetadata(this.root);
    this.store = new ContentStore(new LocalStorage(this.root));
  }

  /** Writes a file (creating folders) and returns its relative path. */
  write(rel: string, text: string): string {
    const abs = path.join(this.dir, rel);
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.writeFileSync(abs, text);
    return rel;
  }

  /** Runs `metaflow ...args` in the project and waits for it. */
  cli(args: readonly string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
    return runCli(args, { cwd: this.dir, ...options });
  }

  /** Starts `metaflow ...args` without waiting. */
  spawn(args: readonly string[], env: Record<string, string> = {}) {
    return spawn(process.execPath, [CLI, ...args], {
      cwd: this.dir,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
  }

  /** The newest run id of a flow. */
  async latestRun(flow: string): Promise<string> {
    const runs = await this.metadata.listRuns(flow);
    if (!runs[0]) throw new Error(`no runs of ${flow}`);
    return runs[0];
  }

  /** The artifacts of a task's last attempt, by name. */
  async artifacts(flow: string, runId: string, step: string, taskId?: string): Promise<Map<string, ArtifactRef>> {
    const id = taskId ?? (await this.metadata.listTasks(flow, runId, step))[0];
    if (!id) throw new Error(`no task of ${flow}/${runId}/${step}`);
    const task = await this.metadata.getTask(flow, runId, step, id);
    const last = task?.attempts[task.attempts.length - 1];
    return new Map((last?.end?.artifacts ?? []).map((a) => [a.name, a]));
  }

  /** One artifact's value from a task (the step's first task by default). */
  async value(flow: string, runId: string, step: string, name: string, taskId?: string): Promise<unknown> {
    const refs = await this.artifacts(flow, runId, step, taskId);
    const ref = refs.get(name);
    if (!ref) throw new Error(`no artifact ${name} in ${flow}/${runId}/${step}: ${[...refs.keys()].join(", ")}`);
    return this.store.getValue(ref);
  }

  /** Removes the directory. */
  cleanup(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs the CLI in `cwd` and collects its output. */
export function runCli(
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string>; timeoutMs?: number },
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (t: string) => (stdout += t));
    child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr += t));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`metaflow ${args.join(" ")} did not finish in ${options.timeoutMs ?? 60000} ms\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 60000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Resolves once `read()` matches `pattern` (polled every 20 ms). */
export function waitForOutput(read: () => string, pattern: RegExp): Promise<void> {
  return new Promise((resolve) => {
    const poll = setInterval(() => {
      if (pattern.test(read())) {
        clearInterval(poll);
        resolve();
      }
    }, 20);
  });
}

/** The worker pids a run printed (`(pid N)`) that are still alive. */
export function aliveTaskPids(output: string): number[] {
  const pids = [...new Set([...output.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1])))];
  return pids.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
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
