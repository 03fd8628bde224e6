/**
 * A worker host: a long-lived child process of the scheduler that runs one task at a time, each in
 * a fresh vm context. A crash here costs only the task it was running. `src/worker.ts` starts it
 * with the library that flows import as "metaflow-ts".
 *
 * It reads its parent's commands on fd 3 and answers on fd 4 (see channel.ts), each message
 * carrying the secret key the parent sent first; it has no IPC channel, so a step cannot
 * `process.send` anything. An error no step awaited is charged to the task whose code made it —
 * known from the realm of the error or of the rejected promise, each task having its own — so an
 * error that surfaces after its task ended is a warning of that task, never the running task's
 * failure; one of no task's realm (Node's own) fails nothing and is reported as the host's.
 */
import * as path from "node:path";
import { Socket } from "node:net";
import v8 from "node:v8";
import { Worker } from "node:worker_threads";
import { COMMAND_FD, FrameKind, FrameReader, FrameWriter } from "./channel.js";
import { executeTask, ExecutionFailure } from "./executor.js";
import { killTree } from "./process-tree.js";
import type { AttemptIdentity, DoneReply, HostReply, HostRequest, TaskSpec } from "./protocol.js";
import { watchSpawns } from "./spawns.js";
import { ownerOf } from "./sandbox.js";
import { mapError } from "./stack.js";
import { toPlainError } from "../errors.js";

/** The task whose sandbox made a value (see `ownerOf`). */
interface TaskContext {
  readonly identity: AttemptIdentity;
  readonly bundlePath: string;
}

/** Runs this process as a worker host; `library` is what flows import as "metaflow-ts". */
export function startHost(library: Record<string, unknown>): void {
  // Ctrl-C reaches the whole process group; the scheduler decides how tasks stop.
  process.on("SIGINT", () => undefined);
  hideLoaderWarning();
  // Built beside this entry (dist/watchdog.js); ends the host and its tasks' processes when orphaned.
  new Worker(path.join(path.dirname(process.argv[1]!), "watchdog.js")).unref();
  const host = new Host(Object.freeze({ ...library }));
  process.on("unhandledRejection", (reason, promise) => host.stray(reason, promise));
  process.on("uncaughtException", (err) => host.stray(err));
  readCommands((msg) => host.command(msg));
}

/** Reads the parent's commands on fd 3; exits when the parent is gone (nothing will ask again). */
function readCommands(onCommand: (msg: HostRequest) => void): void {
  const commands = new Socket({ fd: COMMAND_FD, readable: true, writable: false });
  const reader = new FrameReader();
  commands.on("data", (chunk: Buffer) => {
    for (const f of reader.push(chunk)) if (f.kind === FrameKind.Message) onCommand(v8.deserialize(f.payload) as HostRequest);
  });
  commands.on("close", () => process.exit(0));
  commands.on("error", () => process.exit(0));
}

/** The host's state: its key, the task it runs, and whether an escaped error spoiled it. */
class Host {
  private readonly channel = new FrameWriter();
  private readonly spawns = watchSpawns();
  private key: string | undefined;
  private active: { context: TaskContext; settle: (err: unknown) => void } | undefined;
  /** Set once an error escaped a task: the host finishes what it runs, then exits. */
  private tainted = false;

  constructor(private readonly library: Record<string, unknown>) {}

  private send(msg: HostReply): void {
    this.channel.message({ ...msg, key: this.key });
  }

  /** One command of the parent: the key (first, once), then tasks one at a time. */
  command(msg: HostRequest): void {
    if (msg?.type === "init" && this.key === undefined && typeof msg.key === "string") {
      this.key = msg.key;
      this.send({ type: "ready", pid: process.pid });
    } else if (msg?.type === "run" && this.key !== undefined && this.active === undefined) {
      this.run(msg.task);
    }
  }

  /**
   * An error no step awaited (an unhandled rejection, a throw from an I/O callback): it fails the
   * task whose code made it if that task still runs; a finished task's, or one of no task's realm,
   * is reported as a warning and fails nothing.
   */
  stray(err: unknown, promise?: unknown): void {
    const owner = (ownerOf(err) ?? ownerOf(promise)) as TaskContext | undefined;
    this.tainted = true;
    if (this.active && owner === this.active.context) {
      this.active.settle(err);
      return;
    }
    this.send({
      type: "stray",
      ...(owner ? { task: owner.identity } : {}),
      error: owner ? mapError(err, owner.bundlePath) : toPlainError(err),
      retiring: this.active === undefined,
    });
  }

  private run(spec: TaskSpec): void {
    const context: TaskContext = {
      identity: { flowName: spec.flowName, runId: spec.runId, step: spec.step, taskId: spec.taskId, attempt: spec.attempt },
      bundlePath: spec.bundlePath,
    };
    let settled = false;
    const finish = (reply: DoneReply): void => {
      if (settled) return;
      settled = true;
      this.finish(reply);
    };
    const ids = { type: "done" as const, taskId: spec.taskId, attempt: spec.attempt };
    this.active = { context, settle: (err) => finish({ ...ids, ok: false, error: mapError(err, spec.bundlePath) }) };
    executeTask(spec, this.library, (stream, text) => this.channel.text(stream, text), context).then(
      (r) => finish({ ...ids, ok: true, artifacts: r.artifacts, transition: r.transition, timings: r.timings }),
      (err: unknown) => {
        const f = err instanceof ExecutionFailure ? err : new ExecutionFailure(err, undefined);
        const extra = { ...(f.timings ? { timings: f.timings } : {}), ...(f.artifacts ? { artifacts: f.artifacts } : {}) };
        finish({ ...ids, ok: false, error: mapError(f.cause, spec.bundlePath), ...extra });
      },
    );
  }

  private finish(reply: DoneReply): void {
    this.active = undefined;
    // What the task spawned and left running dies with it.
    if (this.spawns.take()) killTree(process.pid, "SIGKILL");
    this.send({ ...reply, ...(this.tainted ? { retiring: true } : {}) });
    if (this.tainted) setImmediate(() => process.exit(70));
  }
}

/** `await import(name)` in a step uses Node's loader through an experimental vm option, which warns once. */
function hideLoaderWarning(): void {
  const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
    if (String((warning as Error)?.message ?? warning).includes("USE_MAIN_CONTEXT_DEFAULT_LOADER")) return;
    emitWarning(warning, ...rest);
  }) as typeof process.emitWarning;
}
