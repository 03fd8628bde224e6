/**
 * Worker hosts: long-lived child processes that each run one task at a time in a fresh vm
 * context. The scheduler holds a `WorkerHost` per child; a task that needs total isolation gets a
 * dedicated host that exits after it.
 */
import { fork, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { HostReply, TaskSpec } from "../task/protocol.js";

/** How a host process ended. */
export interface HostExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The last lines the host wrote to its own stderr (V8's out-of-memory report, a native crash). */
  readonly stderrTail: string;
}

/** What the scheduler hears from a host while it runs a task. */
export interface TaskListener {
  onLog(stream: "stdout" | "stderr", text: string): void;
  onDone(reply: Extract<HostReply, { type: "done" }>): void;
  onExit(exit: HostExit): void;
}

let workerScript: string | undefined;

/** Path of the built worker entry (`dist/worker.js`), found from this module's location. */
export function workerPath(): string {
  if (workerScript) return workerScript;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, "dist", "worker.js");
    if (fs.existsSync(path.join(dir, "package.json")) && fs.existsSync(candidate)) {
      workerScript = candidate;
      return candidate;
    }
    const sibling = path.join(dir, "worker.js");
    if (path.basename(dir) === "dist" && fs.existsSync(sibling)) {
      workerScript = sibling;
      return sibling;
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error("Cannot find dist/worker.js: run `npm run build` in the metaflow-ts package");
    dir = up;
  }
}

/** The scheduler's handle on one worker host process. */
export class WorkerHost {
  readonly proc: ChildProcess;
  readonly ready: Promise<void>;
  readonly exited: Promise<HostExit>;
  /** Tasks this host has run; hosts are recycled after a while to bound leaks. */
  tasksRun = 0;
  /** `performance.now()` when the current task started, if any. */
  busySince: number | undefined;
  private listener: TaskListener | undefined;
  private stderrTail = "";
  private alive = true;
  private reserved = false;
  private stopping = false;

  constructor(
    readonly dedicated: boolean,
    execArgv: readonly string[],
    private readonly onStray: (text: string) => void,
  ) {
    this.proc = fork(workerPath(), [], {
      serialization: "advanced",
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      execArgv: [...execArgv],
    });
    this.ready = new Promise((resolve, reject) => {
      const onMsg = (m: HostReply) => {
        if (m.type === "ready") {
          this.proc.off("message", onMsg);
          resolve();
        }
      };
      this.proc.on("message", onMsg);
      this.proc.once("exit", (code, signal) =>
        reject(new Error(`worker host exited before it was ready (code ${code}, signal ${signal}): ${this.stderrTail}`)),
      );
    });
    this.ready.catch(() => undefined);
    // A send to a host that just died fails with EPIPE; the task then ends through the exit event.
    this.proc.on("error", () => undefined);
    this.proc.on("message", (m: HostReply) => {
      if (m.type === "log") this.listener?.onLog(m.stream, m.text);
      else if (m.type === "done") {
        const l = this.listener;
        this.listener = undefined;
        this.busySince = undefined;
        l?.onDone(m);
      }
    });
    // Output that bypassed the task's console (a child process, a native module) still belongs to
    // the task that is running.
    this.proc.stdout!.setEncoding("utf8").on("data", (t: string) => this.stray("stdout", t));
    this.proc.stderr!.setEncoding("utf8").on("data", (t: string) => {
      this.stderrTail = (this.stderrTail + t).slice(-4000);
      this.stray("stderr", t);
    });
    this.exited = new Promise((resolve) => {
      this.proc.once("exit", (code, signal) => {
        this.alive = false;
        const exit = { code, signal, stderrTail: this.stderrTail };
        const l = this.listener;
        this.listener = undefined;
        this.reserved = false;
        // Let the stderr pipe drain so the crash report reaches the task's log first.
        setImmediate(() => {
          l?.onExit({ ...exit, stderrTail: this.stderrTail });
          resolve({ ...exit, stderrTail: this.stderrTail });
        });
      });
    });
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  /** False once the host exited or is being stopped: no task may be sent to it any more. */
  get isAlive(): boolean {
    return this.alive && !this.stopping;
  }

  /** True from the moment the scheduler picks this host until its task ends. */
  get busy(): boolean {
    return this.reserved || this.listener !== undefined;
  }

  /** Claims the host for a task before it is ready to receive it. */
  reserve(): void {
    this.reserved = true;
  }

  private stray(stream: "stdout" | "stderr", text: string): void {
    if (this.listener) this.listener.onLog(stream, text);
    else this.onStray(text);
  }

  /** Sends a task; the listener hears its logs and its end (done or host exit). */
  run(task: TaskSpec, listener: TaskListener): void {
    this.listener = listener;
    this.reserved = false;
    this.busySince = performance.now();
    this.tasksRun += 1;
    this.proc.send({ type: "run", task });
  }

  /** Stops the host; a running task ends through `onExit`. */
  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    this.stopping = true;
    if (this.alive) this.proc.kill(signal);
  }
}

let spare: WorkerHost | undefined;

/** Starts a shared host ahead of time (while the CLI bundles the flow); the next run takes it. */
export function prewarmHost(): void {
  spare ??= new WorkerHost(false, [], () => undefined);
  spare.ready.catch(() => undefined);
}

/** Stops the prewarmed host when no run will take it (the command failed early). */
export function discardWarmHost(): void {
  spare?.kill();
  spare = undefined;
}

/** Takes the prewarmed host, if there is one. */
export function takeWarmHost(): WorkerHost | undefined {
  const host = spare;
  spare = undefined;
  return host;
}
