/**
 * Worker hosts: long-lived child processes that each run one task at a time in a fresh vm
 * context. The scheduler holds a `WorkerHost` per child; a task that needs total isolation gets a
 * dedicated host that exits after it.
 *
 * A host leads a process group of its own, so what its tasks spawn can be found and killed with
 * it. It gets commands on fd 3 and reports on fd 4 (no IPC channel: see task/channel.ts): task
 * output as text frames, read only as fast as the listener takes it (backpressure up to the step
 * that prints), and messages that must carry the host's secret key and the right shape — anything
 * else is refused with a warning, and bytes that are not frames fail the task, never the runtime.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Readable, Writable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import v8 from "node:v8";
import { fileURLToPath } from "node:url";
import type { PlainError } from "../errors.js";
import { CHANNEL_FD, COMMAND_FD, encodeFrame, FrameKind, FrameReader } from "../task/channel.js";
import { checkHostMessage } from "../task/host-messages.js";
import { killTree } from "../task/process-tree.js";
import type { AttemptIdentity, DoneReply, HostReply, HostRequest, TaskSpec } from "../task/protocol.js";

/** How a host process ended. */
export interface HostExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The last lines the host wrote to its own stderr (V8's out-of-memory report, a native crash). */
  readonly stderrTail: string;
}

/** What the scheduler hears from a host while it runs a task. */
export interface TaskListener {
  /** Output of the task; a returned promise holds further output until it settles. */
  onLog(stream: "stdout" | "stderr", text: string): void | Promise<void>;
  onDone(reply: DoneReply): void;
  onExit(exit: HostExit): void;
}

/** What a host reports outside of any task. */
export interface HostEvents {
  /** Output written while no task runs (a child process a task left, a native module). */
  stray(text: string): void;
  /** An error raised by the code of an attempt that had ended, or of no task (`task` undefined). */
  late(task: AttemptIdentity | undefined, error: PlainError): void;
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
  private running: { taskId: string; attempt: number } | undefined;
  private stderrTail = "";
  private alive = true;
  private reserved = false;
  private stopping = false;
  private readonly key = randomBytes(24).toString("hex");
  private readonly commands: Writable;
  private readonly frames = new FrameReader();
  private markReady!: () => void;

  constructor(
    readonly dedicated: boolean,
    execArgv: readonly string[],
    /** Where output and errors outside of any task go; a launcher that adopts a warm host sets its own. */
    public events: HostEvents,
  ) {
    this.proc = spawn(process.execPath, [...execArgv, workerPath()], {
      stdio: ["ignore", "pipe", "pipe", "pipe", "pipe"],
      // Its own process group: the host and whatever its tasks spawn are stopped together.
      detached: true,
    });
    this.ready = new Promise((resolve, reject) => {
      this.markReady = resolve;
      this.proc.once("exit", (code, signal) =>
        reject(new Error(`worker host exited before it was ready (code ${code}, signal ${signal}): ${this.stderrTail}`)),
      );
    });
    this.ready.catch(() => undefined);
    // A process that could not be spawned (EAGAIN, EMFILE, ENOMEM) may never emit "exit": end it
    // here, so its task fails and nothing waits on it for ever. Other errors (a failed kill) do not.
    this.proc.on("error", (err) => {
      if (this.proc.pid !== undefined) return;
      this.stderrTail += `could not start a worker process: ${err.message}`;
      this.proc.emit("exit", null, null);
    });
    this.commands = this.proc.stdio[COMMAND_FD] as Writable;
    // Writing to a host that just died fails with EPIPE; its task then ends through the exit event.
    this.commands.on("error", () => undefined);
    this.command({ type: "init", key: this.key });
    // The host never writes back on its command pipe: whatever arrives there came from a task's code.
    (this.proc.stdio[COMMAND_FD] as Readable).on("data", (chunk: Buffer) =>
      this.refused(`${chunk.length} bytes a task's code wrote into the host's command pipe (fd ${COMMAND_FD})`),
    );
    const channel = this.proc.stdio[CHANNEL_FD] as Readable;
    this.pump(channel, (chunk) => this.onChannel(chunk));
    // Output that bypassed the task's console (a child process, a native module) still belongs to
    // the task that is running.
    const [out, err] = [new StringDecoder("utf8"), new StringDecoder("utf8")];
    this.pump(this.proc.stdout!, (chunk) => this.stray("stdout", out.write(chunk)));
    this.pump(this.proc.stderr!, (chunk) => {
      const text = err.write(chunk);
      this.stderrTail = (this.stderrTail + text).slice(-4000);
      return this.stray("stderr", text);
    });
    this.exited = new Promise((resolve) => {
      this.proc.once("exit", (code, signal) => {
        this.alive = false;
        const l = this.listener;
        this.listener = undefined;
        this.reserved = false;
        // Let the pipes drain so the crash report reaches the task's log first.
        setImmediate(() => {
          const exit = { code, signal, stderrTail: this.stderrTail };
          l?.onExit(exit);
          resolve(exit);
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

  /** Reads a stream chunk by chunk, pausing while the handler's promise (backpressure) is pending. */
  private pump(stream: Readable, handle: (chunk: Buffer) => void | Promise<void>): void {
    stream.on("data", (chunk: Buffer) => {
      const wait = handle(chunk);
      if (wait) {
        stream.pause();
        void wait.finally(() => stream.resume());
      }
    });
  }

  private onChannel(chunk: Buffer): Promise<void> | undefined {
    let frames;
    try {
      frames = this.frames.push(chunk);
    } catch (err) {
      // Bytes that are not frames can only come from a task's code writing into fd 4; the
      // channel cannot be trusted after that, so the task fails and the host goes.
      this.violation(`the task's code wrote into the worker host's protocol channel (fd ${CHANNEL_FD}): ${(err as Error).message}`);
      return undefined;
    }
    let wait: Promise<void> | undefined;
    for (const f of frames) {
      if (f.kind === FrameKind.Message) this.onMessage(f.payload);
      else {
        const w = this.listener?.onLog(f.kind === FrameKind.Stdout ? "stdout" : "stderr", f.payload.toString("utf8"));
        if (w) wait = wait ? wait.then(() => w) : w;
      }
    }
    return wait;
  }

  private onMessage(payload: Buffer): void {
    const checked = checkHostMessage(payload, this.key);
    if (!checked.ok) {
      if (checked.forged) this.refused(`${checked.reason} (written into the host's channel by a task's code)`);
      else this.violation(`the worker host sent ${checked.reason}`);
      return;
    }
    this.dispatch(checked.reply);
  }

  private dispatch(m: HostReply): void {
    if (m.type === "ready") {
      this.markReady();
    } else if (m.type === "done") {
      if (!this.running || m.taskId !== this.running.taskId || m.attempt !== this.running.attempt) {
        this.refused(`a done message for task ${m.taskId} attempt ${m.attempt}, which this host is not running`);
        return;
      }
      const l = this.listener;
      this.listener = undefined;
      this.running = undefined;
      this.busySince = undefined;
      if (m.retiring) this.kill("SIGKILL");
      l?.onDone(m);
    } else {
      this.events.late(m.task, m.error);
      // An idle host whose state a stray error spoiled is replaced; a busy one finishes its task first.
      if (m.retiring && !this.busy) this.kill("SIGKILL");
    }
  }

  /** A message that did not come from the host's own code: dropped, with a warning where it belongs. */
  private refused(what: string): void {
    const line = `Warning: ignored ${what}; only the runtime speaks on this channel.\n`;
    if (this.listener) void this.listener.onLog("stderr", line);
    else this.events.stray(line);
  }

  /** The protocol cannot be trusted any more: the task fails and the host is stopped. */
  private violation(message: string): void {
    const l = this.listener;
    this.listener = undefined;
    this.running = undefined;
    this.kill("SIGKILL");
    l?.onDone({ type: "done", taskId: "", attempt: 0, ok: false, error: { name: "ProtocolError", code: "protocol", message } });
  }

  private stray(stream: "stdout" | "stderr", text: string): void | Promise<void> {
    if (this.listener) return this.listener.onLog(stream, text);
    this.events.stray(text);
  }

  /** Sends a task; the listener hears its logs and its end (done or host exit). */
  run(task: TaskSpec, listener: TaskListener): void {
    this.listener = listener;
    // A crash report describes this task only, not what an earlier task left on stderr.
    this.stderrTail = "";
    this.running = { taskId: task.taskId, attempt: task.attempt };
    this.reserved = false;
    this.busySince = performance.now();
    this.tasksRun += 1;
    this.command({ type: "run", task });
  }

  private command(msg: HostRequest): void {
    this.commands.write(encodeFrame(FrameKind.Message, v8.serialize(msg)));
  }

  /**
   * Stops the host and every process its tasks started (its process group, and descendants that
   * left it); a running task ends through `onExit`.
   */
  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    this.stopping = true;
    if (!this.alive) return;
    const pid = this.proc.pid;
    if (pid === undefined) return;
    // An idle host's tasks already took their processes with them; a busy one's task may have
    // started processes that left the group (a detached child), found by walking the tree.
    if (this.busy) killTree(pid, signal);
    try {
      process.kill(-pid, signal);
    } catch {
      this.proc.kill(signal);
    }
  }
}

let spare: WorkerHost | undefined;

/** Starts a shared host ahead of time (while the CLI bundles the flow); the next run takes it. */
export function prewarmHost(): void {
  spare ??= new WorkerHost(false, [], { stray: () => undefined, late: () => undefined });
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
