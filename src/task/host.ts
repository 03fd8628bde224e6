/**
 * A worker host: a long-lived child process of the scheduler that runs one task at a time, each in
 * a fresh vm context. A crash here costs only the task it was running. `src/worker.ts` starts it
 * with the library that flows import as "metaflow-ts".
 */
import { Worker } from "node:worker_threads";
import { executeTask, ExecutionFailure } from "./executor.js";
import type { HostReply, HostRequest } from "./protocol.js";
import { mapError } from "./stack.js";

/** Runs this process as a worker host; `library` is what flows import as "metaflow-ts". */
export function startHost(library: Record<string, unknown>): void {
  const send = (msg: HostReply): void => {
    process.send?.(msg);
  };

  // Ctrl-C reaches the whole process group; the scheduler decides how tasks stop.
  process.on("SIGINT", () => undefined);
  process.on("disconnect", () => process.exit(0));

  // A step stuck in a synchronous loop never lets this thread see the scheduler go away; a watchdog
  // thread does, and ends the host so no orphan keeps burning a core.
  const watchdog = new Worker(
    `const ppid = process.ppid;
     setInterval(() => { if (process.ppid !== ppid) process.kill(process.pid, "SIGKILL"); }, 500);`,
    { eval: true },
  );
  watchdog.unref();

  let active: { bundlePath: string; settle: (err: unknown) => void } | undefined;

  // Errors no step awaited (an unhandled rejection, a throw from an I/O callback) fail the task
  // that is running; the host then exits, because its state can no longer be trusted.
  const onStray = (err: unknown): void => {
    if (active) {
      active.settle(err);
    } else {
      process.exitCode = 1;
    }
    setImmediate(() => process.exit(70));
  };
  process.on("unhandledRejection", onStray);
  process.on("uncaughtException", onStray);

  const taskLibrary = Object.freeze({ ...library });

  process.on("message", (msg: HostRequest) => {
    if (msg?.type !== "run") return;
    const spec = msg.task;
    let settled = false;
    const finish = (reply: HostReply): void => {
      if (settled) return;
      settled = true;
      active = undefined;
      send(reply);
    };
    active = {
      bundlePath: spec.bundlePath,
      settle: (err) => finish({ type: "done", ok: false, error: mapError(err, spec.bundlePath) }),
    };
    executeTask(spec, taskLibrary, (stream, text) => send({ type: "log", stream, text })).then(
      (r) => finish({ type: "done", ok: true, artifacts: r.artifacts, transition: r.transition, timings: r.timings }),
      (err: unknown) => {
        const f = err instanceof ExecutionFailure ? err : new ExecutionFailure(err, undefined);
        finish({
          type: "done",
          ok: false,
          error: mapError(f.cause, spec.bundlePath),
          ...(f.timings ? { timings: f.timings } : {}),
        });
      },
    );
  });

  send({ type: "ready", pid: process.pid });
}
