/**
 * The `slurm` task launcher: each attempt runs `metaflow task` as a Slurm job. The attempts of one
 * step that arrive in one scheduling pass (a foreach fanning out) are submitted together as one
 * job array, at most `--max-workers` elements running at once. Jobs are followed with one `squeue`
 * per poll for the whole run; the task's stored logs are tailed to the console while it runs; the
 * outcome comes from the attempt's record, or — when the job died before the task could record its
 * end — from the job's state.
 */
import { spawnSync } from "node:child_process";
import type { SlurmSettings } from "../../config/index.js";
import { LocalStorage } from "../../datastore/local.js";
import type { PlainError } from "../../errors.js";
import {
  attemptLogTail,
  outcomeFromRecord,
  readAttempt,
  unreadableRecord,
  type AttemptEntry,
  type LogTail,
} from "../remote-attempt.js";
import type {
  AttemptHandle,
  AttemptListener,
  AttemptOutcome,
  AttemptRequest,
  LauncherContext,
  TaskLauncher,
} from "../types.js";
import { SlurmCli } from "./cli.js";
import { cancelJobs } from "./jobs.js";
import { runLocalRecovery, type LocalRecovery } from "./local-recovery.js";
import { jobFailure, plainError } from "./outcome-record.js";
import { SlurmPoller, pollerOptions, type JobOutcome } from "./poller.js";
import { submitStep } from "./submission.js";
import { jobEnvironment } from "./task-command.js";

export { slurmPreflight } from "./preflight.js";

/** One attempt, from `tryLaunch` until `done`. */
interface SlurmAttempt {
  readonly request: AttemptRequest;
  readonly listener: AttemptListener;
  phase: "queued" | "submitting" | "submitted" | "local" | "done";
  /** `1234`, or `1234_7` for element 7 of array job 1234. */
  id?: string;
  /** The job id to cancel the whole job by (the array's id for an element). */
  jobId?: string;
  label?: string;
  started: boolean;
  running: boolean;
  cancelRequested: boolean;
  outputFile?: string;
  tail?: LogTail;
  local?: LocalRecovery;
}

const TAIL_LOCAL_MS = 1000;
const TAIL_REMOTE_MS = 3000;

/** Makes the `slurm` launcher of a run. */
export function slurmLauncher(context: LauncherContext): TaskLauncher {
  return new SlurmLauncher(context);
}

/** Runs attempts as Slurm jobs; see the module comment. */
export class SlurmLauncher implements TaskLauncher {
  readonly kind = "slurm";
  readonly remote = true;
  private readonly cli: SlurmCli;
  private readonly settings: SlurmSettings;
  private readonly poller: SlurmPoller;
  private readonly env: Record<string, string>;
  private queued: SlurmAttempt[] = [];
  private readonly live = new Set<SlurmAttempt>();
  private readonly toCancel = new Set<SlurmAttempt>();
  private flushing = false;
  private cancelling = false;
  private tailTimer: NodeJS.Timeout | undefined;
  private readonly onExit = () => this.cancelOnExit();

  constructor(
    private readonly context: LauncherContext,
    cli: SlurmCli = new SlurmCli(),
  ) {
    this.cli = cli;
    this.settings = context.backends.config.slurm;
    this.poller = new SlurmPoller(cli, {
      ...pollerOptions(this.settings),
      onQueryError: (err) => context.say("stderr", `Slurm: ${err.message} (trying again)`),
    });
    this.env = jobEnvironment(context.backends);
  }

  tryLaunch(request: AttemptRequest, listener: AttemptListener): AttemptHandle {
    const a: SlurmAttempt = {
      request,
      listener,
      phase: "queued",
      started: false,
      running: false,
      cancelRequested: false,
    };
    if (request.spec.recover) {
      // Storing a caught error needs no cluster: it runs here, also when the cluster is the problem.
      a.phase = "local";
      this.live.add(a);
      a.local = runLocalRecovery(request.spec, this.env, {
        started: (pid) => this.start(a, `pid ${pid}`),
        exited: (describe) => void this.settle(a, describe),
      });
      return { cancel: () => a.local?.kill() };
    }
    this.queued.push(a);
    // Everything the scheduler offers in this pass is submitted together, on the next turn.
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => void this.flush());
    }
    return { cancel: () => this.cancel(a) };
  }

  private async flush(): Promise<void> {
    this.flushing = false;
    const batch = this.queued;
    this.queued = [];
    const byStep = new Map<string, SlurmAttempt[]>();
    for (const a of batch)
      byStep.set(a.request.spec.step, [...(byStep.get(a.request.spec.step) ?? []), a]);
    await Promise.all([...byStep.values()].map((group) => this.submitGroup(group)));
  }

  private async submitGroup(group: SlurmAttempt[]): Promise<void> {
    for (const a of group) a.phase = "submitting";
    const ctx = {
      cli: this.cli,
      settings: this.settings,
      backends: this.context.backends,
      env: this.env,
      maxWorkers: this.context.maxWorkers,
      say: this.context.say,
    };
    await submitStep(
      ctx,
      group.map((a) => a.request),
      (i, result) => {
        const a = group[i]!;
        if ("error" in result) return this.fail(a, result.error);
        if (!result.array) void a.listener.output("stdout", `Submitted as Slurm job ${result.id}.`);
        this.accept(a, result.id, result.jobId, result.outputFile);
      },
    );
  }

  /** A job was submitted for the attempt: follow it. */
  private accept(a: SlurmAttempt, id: string, jobId: string, output: string | undefined): void {
    Object.assign(a, {
      id,
      jobId,
      label: `slurm job ${id}`,
      phase: "submitted",
      ...(output ? { outputFile: output } : {}),
    });
    if (this.live.size === 0) process.on("exit", this.onExit);
    this.live.add(a);
    a.tail = this.tailOf(a);
    if (a.cancelRequested) this.requestCancel(a);
    const memoryMb = a.request.plan.resources.memoryMb;
    this.poller
      .follow(id, {
        ...(output ? { stderrFile: output } : {}),
        ...(memoryMb !== undefined ? { memoryMb } : {}),
        onUpdate: (s) => {
          a.running = s.phase === "running";
          // A job cancelled while it waited never ran; one seen running or ended otherwise did.
          if (s.phase === "running" || (s.phase === "finished" && s.state !== "CANCELLED"))
            this.start(a, a.label!);
          if (a.running) this.scheduleTail();
        },
      })
      .then(
        (outcome) => this.settle(a, () => this.jobError(a, outcome)),
        (err: unknown) => this.settle(a, () => plainError(err)),
      );
  }

  /** Follows the attempt's stored logs onto the console. */
  private tailOf(a: SlurmAttempt): LogTail {
    return attemptLogTail(this.context.backends.storage, a.request.spec, (stream, line) =>
      a.listener.output(stream, line),
    );
  }

  private start(a: SlurmAttempt, label: string): void {
    if (a.started) return;
    a.started = true;
    a.listener.started(label);
  }

  /** The error for a job that ended without the task recording its end; the job is cancelled if still queued. */
  private async jobError(a: SlurmAttempt, outcome: JobOutcome): Promise<PlainError> {
    if (outcome.state?.phase !== "finished" && outcome.error) {
      // A stuck job is still queued: it must not start later, after its attempt was given up.
      await cancelJobs(this.cli, [a.id!]).catch(() => undefined);
    }
    return jobFailure(a.id!, outcome, a.outputFile);
  }

  /** The attempt is over: read its record and the last log lines, then report the outcome. */
  private async settle(
    a: SlurmAttempt,
    failure: () => Promise<PlainError> | PlainError,
  ): Promise<void> {
    if (a.phase === "done") return;
    const spec = a.request.spec;
    let entry: AttemptEntry | undefined;
    try {
      entry = await readAttempt(this.context.backends.metadata, spec);
    } catch (err) {
      return this.finish(a, unreadableRecord(spec, a.label ?? "its job", err));
    }
    if (entry) this.start(a, a.label ?? "slurm");
    a.tail ??= this.tailOf(a);
    await a.tail.read();
    this.finish(a, await outcomeFromRecord(spec, entry, failure));
  }

  private fail(a: SlurmAttempt, error: PlainError): void {
    this.finish(a, { ok: false, error, unrecorded: "attempt" });
  }

  private finish(a: SlurmAttempt, outcome: AttemptOutcome): void {
    if (a.phase === "done") return;
    a.phase = "done";
    a.running = false;
    this.live.delete(a);
    this.toCancel.delete(a);
    if (this.live.size === 0) process.off("exit", this.onExit);
    a.listener.done(outcome);
  }

  private cancel(a: SlurmAttempt): void {
    if (a.phase === "queued") {
      this.queued = this.queued.filter((q) => q !== a);
      this.fail(a, {
        name: "SlurmCancelledError",
        code: "slurm-cancelled",
        message: `Step '${a.request.spec.step}': the task was stopped before it was submitted to Slurm.`,
      });
    } else if (a.phase === "submitting") {
      a.cancelRequested = true;
    } else if (a.phase === "submitted") {
      this.requestCancel(a);
    }
  }

  /** Cancels with one `scancel` for everything asked in this turn; a whole array by its id. */
  private requestCancel(a: SlurmAttempt): void {
    this.toCancel.add(a);
    if (this.cancelling) return;
    this.cancelling = true;
    setImmediate(() => {
      this.cancelling = false;
      const asked = [...this.toCancel];
      const ids = new Set<string>();
      for (const c of asked) {
        const whole = [...this.live]
          .filter((l) => l.jobId === c.jobId)
          .every((l) => this.toCancel.has(l));
        ids.add(whole ? c.jobId! : c.id!);
      }
      this.context.say(
        "stderr",
        `Cancelling Slurm job${ids.size === 1 ? "" : "s"} ${[...ids].join(", ")}.`,
      );
      cancelJobs(this.cli, [...ids]).catch((err: Error) =>
        this.context.say(
          "stderr",
          `Slurm: could not cancel ${[...ids].join(", ")}: ${err.message}`,
        ),
      );
    });
  }

  private scheduleTail(): void {
    if (this.tailTimer) return;
    const every =
      this.context.backends.storage instanceof LocalStorage ? TAIL_LOCAL_MS : TAIL_REMOTE_MS;
    this.tailTimer = setTimeout(() => {
      this.tailTimer = undefined;
      const running = [...this.live].filter((a) => a.running && a.tail);
      if (running.length === 0) return;
      void Promise.all(running.map((a) => a.tail!.read())).finally(() => this.scheduleTail());
    }, every);
  }

  /** The runtime is exiting with jobs still queued or running (a second Ctrl-C): cancel them now. */
  private cancelOnExit(): void {
    const ids = [
      ...new Set([...this.live].map((a) => a.jobId).filter((id): id is string => id !== undefined)),
    ];
    if (ids.length > 0)
      spawnSync("scancel", ids, {
        env: this.cli.env as NodeJS.ProcessEnv,
        stdio: "ignore",
        timeout: 10_000,
      });
  }

  async close(): Promise<void> {
    if (this.tailTimer) clearTimeout(this.tailTimer);
    this.tailTimer = undefined;
    const jobIds = [
      ...new Set([...this.live].map((a) => a.jobId).filter((id): id is string => id !== undefined)),
    ];
    if (jobIds.length > 0) await cancelJobs(this.cli, jobIds).catch(() => undefined);
    for (const a of this.live) a.local?.kill();
    this.poller.close(new Error("the run ended while the Slurm job was still followed"));
    process.off("exit", this.onExit);
  }
}
