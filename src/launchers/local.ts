/**
 * The local launchers: `host` runs an attempt in a fresh vm context inside one of a few long-lived
 * worker processes (the pool grows to the number of cores, and beyond while every host is busy
 * with long tasks); `process` runs it alone in a process of its own (a V8 heap limit from
 * `@resources({ memory })`), which exits after it.
 */
import * as os from "node:os";
import { appendLogLine, logKey } from "../datastore/logs.js";
import type { PlainError } from "../errors.js";
import type { AttemptIdentity } from "../task/protocol.js";
import type { AttemptListener, AttemptRequest, LauncherContext, TaskLauncher, AttemptHandle } from "./types.js";
import { WorkerHost, type HostEvents, type HostExit } from "./worker-host.js";

/** A shared host is replaced after this many tasks, to bound what leaks between them. */
const HOST_RECYCLE_AFTER = 500;
/** A pool of busy hosts grows past the core count once every host has been busy this long. */
const GROW_AFTER_MS = 100;

/** Sends one attempt to a host and reports its end; shared by both local launchers. */
function runOn(host: WorkerHost, request: AttemptRequest, listener: AttemptListener, retire: (host: WorkerHost, ok: boolean) => void): AttemptHandle {
  let settled = false;
  const done: AttemptListener["done"] = (outcome) => {
    if (settled) return;
    settled = true;
    listener.done(outcome);
  };
  host.ready.then(
    () => {
      if (settled) return;
      listener.started(`pid ${host.pid}`, host.pid);
      host.run(request.spec, {
        onLog: (stream, text) => listener.output(stream, text),
        onDone: (reply) => {
          done(
            reply.ok
              ? { ok: true, artifacts: reply.artifacts, transition: reply.transition, timings: reply.timings }
              : { ok: false, error: reply.error, ...(reply.timings ? { timings: reply.timings } : {}), ...(reply.artifacts ? { artifacts: reply.artifacts } : {}) },
          );
          retire(host, reply.ok);
        },
        onExit: (exit) => done({ ok: false, error: describeExit(exit, request) }),
      });
    },
    (err: unknown) => done({ ok: false, error: { name: "HostError", message: `could not start a worker process: ${(err as Error).message}` } }),
  );
  return { cancel: () => host.kill("SIGKILL") };
}

/**
 * Where a host's output and errors outside of any task go: the console, and for an error a finished
 * attempt's code raised later, that attempt's stderr log too (as a warning: its outcome stands).
 */
function hostEvents(context: LauncherContext, host: () => WorkerHost | undefined): HostEvents {
  return {
    stray: (text) => context.say("stderr", text.trimEnd()),
    late: (task: AttemptIdentity | undefined, error: PlainError) => {
      const pid = host()?.pid ?? -1;
      if (!task) {
        context.say("stderr", `[worker host pid ${pid}] Warning: an error no task can be charged with was raised: ${error.name}: ${error.message}`);
        return;
      }
      const line = `Warning: after the task ended, its code raised ${error.name}: ${error.message}`;
      context.say("stderr", `[${task.runId}/${task.step}/${task.taskId} (pid ${pid})] ${line}`);
      const key = logKey(task.flowName, task.runId, task.step, task.taskId, task.attempt, "stderr");
      void appendLogLine(context.backends.storage, key, line).catch((err: unknown) =>
        context.say("stderr", `[${task.runId}/${task.step}/${task.taskId}] Warning: could not add that warning to the task's stored log: ${(err as Error).message}`),
      );
    },
  };
}

/** Runs attempts in fresh contexts inside shared, long-lived worker hosts. */
export class HostPoolLauncher implements TaskLauncher {
  readonly kind = "host";
  readonly remote = false;
  private readonly hosts = new Set<WorkerHost>();
  private readonly cpuCount = Math.max(1, os.availableParallelism());
  private growThisPass: boolean | undefined;

  constructor(
    private readonly context: LauncherContext,
    warm?: WorkerHost,
  ) {
    if (warm) this.adopt(warm);
  }

  tryLaunch(request: AttemptRequest, listener: AttemptListener): AttemptHandle | undefined {
    const host = this.pick();
    if (!host) return undefined;
    host.reserve();
    return runOn(host, request, listener, (h, ok) => {
      // A host that ran a failing task may hold broken state; start clean.
      if (!ok || h.tasksRun >= HOST_RECYCLE_AFTER) h.kill("SIGTERM");
    });
  }

  /**
   * An idle host, a new one while there are fewer hosts than cores, or (up to max-workers) when
   * every host has been busy for a while — short tasks are better served by waiting than by
   * paying for a process start. The growth decision holds for one scheduling pass, so a burst of
   * waiting tasks gets all the hosts it needs at once.
   */
  private pick(): WorkerHost | undefined {
    const alive = [...this.hosts].filter((h) => h.isAlive);
    const idle = alive.find((h) => !h.busy);
    if (idle) return idle;
    if (this.growThisPass === undefined) {
      this.growThisPass = alive.length >= this.cpuCount && alive.every((h) => h.busySince !== undefined && performance.now() - h.busySince > GROW_AFTER_MS);
      queueMicrotask(() => (this.growThisPass = undefined));
    }
    if (alive.length < this.cpuCount || this.growThisPass) {
      return this.adopt(new WorkerHost(false, [], { stray: () => undefined, late: () => undefined }));
    }
    return undefined;
  }

  private adopt(host: WorkerHost): WorkerHost {
    host.events = hostEvents(this.context, () => host);
    this.hosts.add(host);
    void host.exited.then(() => {
      this.hosts.delete(host);
      this.context.wake();
    });
    return host;
  }

  async close(): Promise<void> {
    await stopAll(this.hosts);
  }
}

/** Runs each attempt alone in a fresh process, with a V8 heap limit when memory was requested. */
export class ProcessLauncher implements TaskLauncher {
  readonly kind = "process";
  readonly remote = false;
  private readonly hosts = new Set<WorkerHost>();

  constructor(private readonly context: LauncherContext) {}

  tryLaunch(request: AttemptRequest, listener: AttemptListener): AttemptHandle {
    const memory = request.plan.resources.memoryMb;
    const host = new WorkerHost(true, memory ? [`--max-old-space-size=${memory}`] : [], { stray: () => undefined, late: () => undefined });
    host.events = hostEvents(this.context, () => host);
    this.hosts.add(host);
    void host.exited.then(() => {
      this.hosts.delete(host);
      this.context.wake();
    });
    host.reserve();
    return runOn(host, request, listener, (h) => h.kill("SIGTERM"));
  }

  async close(): Promise<void> {
    await stopAll(this.hosts);
  }
}

async function stopAll(hosts: ReadonlySet<WorkerHost>): Promise<void> {
  const all = [...hosts];
  for (const h of all) h.kill("SIGTERM");
  await Promise.all(all.map((h) => h.exited));
}

/** Turns a host's death into an error that says what happened, never a bare exit code. */
function describeExit(exit: HostExit, request: AttemptRequest): PlainError {
  const step = request.spec.step;
  const tail = exit.stderrTail;
  if (/heap out of memory|Reached heap limit|Allocation failed/i.test(tail)) {
    const memory = request.plan.resources.memoryMb;
    const limit = memory ? ` (the V8 heap limit was ${memory} MiB from @resources memory)` : "";
    return {
      name: "OutOfMemoryError",
      code: "out-of-memory",
      message: `Step '${step}' ran out of memory${limit}; give it more with @resources({ memory: ... }) or use less`,
    };
  }
  if (exit.signal) {
    const hint =
      exit.signal === "SIGKILL"
        ? " (by the kernel's out-of-memory killer or by kill -9)"
        : exit.signal === "SIGSEGV" || exit.signal === "SIGBUS" || exit.signal === "SIGABRT"
          ? " (a native crash, e.g. in a native module)"
          : "";
    return { name: "HostExit", code: "killed", message: `Step '${step}': the task's process was killed by ${exit.signal}${hint}` };
  }
  return {
    name: "HostExit",
    code: "crashed",
    message: `Step '${step}': the task's process exited unexpectedly with code ${exit.code}${tail ? `; its last output: ${tail.trim().split("\n").slice(-3).join(" | ")}` : ""}`,
  };
}
