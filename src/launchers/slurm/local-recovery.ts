/**
 * The attempt that stores a caught error (`@catchError` after every attempt failed) runs on this
 * machine as `metaflow task --recover`, not as a job: it runs no step code and needs no cluster
 * resources, and it must work when the cluster itself was the problem (a down partition, a job
 * stuck PENDING). It records its attempt and stores its logs like any remote task.
 */
import { spawn } from "node:child_process";
import type { PlainError } from "../../errors.js";
import type { TaskSpec } from "../../task/protocol.js";
import { remoteTaskArgs } from "../remote-task.js";
import { localCommand } from "./task-command.js";

/** The launcher's handle on a recovery process. */
export interface LocalRecovery {
  kill(): void;
}

/** What the launcher hears from a recovery process. */
export interface RecoveryListener {
  started(pid: number): void;
  /** The process exited; `describe()` explains a failure the task could not record itself. */
  exited(describe: () => PlainError): void;
}

/** Starts `metaflow task --recover` for the spec's attempt with the run's datastore settings. */
export function runLocalRecovery(
  spec: TaskSpec,
  env: Readonly<Record<string, string>>,
  listener: RecoveryListener,
): LocalRecovery {
  const [command, ...prefix] = localCommand();
  const child = spawn(
    command!,
    [...prefix, "task", "--label", "local recovery", ...remoteTaskArgs(spec)],
    {
      env: { ...process.env, ...env },
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr = (stderr + t).slice(-4000)));
  child.once("spawn", () => listener.started(child.pid ?? -1));
  let reported = false;
  const exited = (describe: () => PlainError) => {
    if (reported) return;
    reported = true;
    listener.exited(describe);
  };
  child.once("error", (err) =>
    exited(() => ({
      name: "RecoveryError",
      message: `Step '${spec.step}': could not start the process that stores the caught error: ${err.message}`,
    })),
  );
  child.once("close", (code, signal) =>
    exited(() => ({
      name: "RecoveryError",
      message: `Step '${spec.step}': the process that stores the caught error ${signal ? `was killed by ${signal}` : `exited with code ${code}`} without recording it${stderr.trim() ? `; its last output: ${stderr.trim().split("\n").slice(-3).join(" | ")}` : ""}`,
    })),
  );
  return { kill: () => child.kill("SIGTERM") };
}
