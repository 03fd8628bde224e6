/**
 * The scheduling loop: queues ready tasks, hands each attempt to the launcher its plan names,
 * records attempts, decides after a failure (retry, recover, fail) and routes finished tasks to
 * the next steps. A task's failure fails only that task; the bookkeeping goes on.
 */
import { afterFailure, describeDecision } from "../decorators/failure-policy.js";
import { AttemptLogs } from "../datastore/logs.js";
import type { ArtifactRef } from "../datastore/types.js";
import { toPlainError, type PlainError } from "../errors.js";
import { launcherFactory, launcherKinds } from "../launchers/builtins.js";
import type { AttemptOutcome, TaskLauncher } from "../launchers/types.js";
import type { TakenTransition } from "../metadata/types.js";
import type { ParentTask, TaskSpec } from "../task/protocol.js";
import { formatTaskError } from "../task/stack.js";
import { ReadyQueue } from "./queue.js";
import { attemptEnd, attemptStart } from "./run-record.js";
import { JoinBarrier, staticTransition, successors } from "./routing.js";
import { canClone, CloneChecker, cloneTask, describeCloneProblem, taskKey, type OriginTask } from "./resume.js";
import type { LoopResult, QueuedTask, RunningAttempt, SchedulerSetup, TaskStat } from "./scheduler-types.js";
import { cancelledError, timeoutError } from "./task-errors.js";

export type { LoopResult, SchedulerSetup, TaskStat } from "./scheduler-types.js";

/** Clones in flight at once: a resume of a 10,000-split foreach must not open 10,000 reads at once. */
const MAX_CLONES_AT_ONCE = 32;
/** The longest delay setTimeout honours. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Runs the tasks of one run, from `start` to the end or the first failure. */
export class Scheduler {
  private readonly queue = new ReadyQueue<QueuedTask>();
  private readonly running = new Map<string, RunningAttempt>();
  private readonly launchers = new Map<string, TaskLauncher>();
  private readonly joins = new JoinBarrier();
  private readonly keys = new Map<string, string>();
  private readonly stats: TaskStat[] = [];
  private readonly pendingWrites = new Set<Promise<unknown>>();
  /** Tasks this run executes (rather than clones): on resume, nothing after them is cloned. */
  private readonly executed = new Set<string>();
  private readonly cloneChecker: CloneChecker | undefined;
  private nextTaskId = 1;
  /** Clones not finished (waiting or in flight), and those in flight; each reads records and objects. */
  private cloning = 0;
  private cloneActive = 0;
  private readonly cloneBacklog: Array<() => void> = [];
  private cloned = 0;
  private failure: LoopResult["failure"];
  private metadataError: PlainError | undefined;
  private interrupted = false;
  private wakeTimer: NodeJS.Timeout | undefined;
  private finished!: () => void;
  private readonly done = new Promise<void>((resolve) => (this.finished = resolve));

  constructor(private readonly s: SchedulerSetup) {
    this.cloneChecker = s.origin ? new CloneChecker(s.backends.store) : undefined;
  }

  /** Runs from `start` (whose only parent is the run's parameters) until nothing is left to run. */
  async run(parameterRefs: readonly ArtifactRef[], signal?: AbortSignal): Promise<LoopResult> {
    const onAbort = () => this.interrupt();
    if (signal?.aborted) this.interrupt();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      this.enqueue({
        key: taskKey("start", [], []),
        step: "start",
        taskId: this.newTaskId(),
        attempt: 0,
        parents: [{ step: "_parameters", taskId: "0", artifacts: parameterRefs, frames: [] }],
        frames: [],
        notBefore: 0,
      });
      this.pump();
      await this.done;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      await this.close();
    }
    return { failure: this.failure, interrupted: this.interrupted, cloned: this.cloned, stats: this.stats, ...(this.metadataError ? { metadataError: this.metadataError } : {}) };
  }

  /** Stops every launcher and waits for the metadata writes in flight. */
  async close(): Promise<void> {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    await Promise.all([...this.launchers.values()].map((l) => l.close()));
    // A write that failed has been reported where it was awaited.
    await Promise.allSettled(this.pendingWrites);
  }

  private get stopping(): boolean {
    return this.failure !== undefined || this.interrupted;
  }

  private newTaskId(): string {
    return String(this.nextTaskId++);
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.pendingWrites.add(p);
    void p.finally(() => this.pendingWrites.delete(p)).catch(() => undefined);
    return p;
  }

  private pathspec(step: string, taskId: string): string {
    return `${this.s.flowName}/${this.s.runId}/${step}/${taskId}`;
  }

  private prefix(task: QueuedTask, label: string | undefined): string {
    return `[${this.s.runId}/${task.step}/${task.taskId}${label ? ` (${label})` : ""}]`;
  }

  /** A per-task line for the console, unless its step is shown by a status line. */
  private sayTask(task: QueuedTask, line: string, stream: "stdout" | "stderr" = "stdout", loud = false): void {
    if (loud || !this.s.progress?.quiet(task.step)) this.s.say(line, stream);
  }

  private enqueue(task: QueuedTask): void {
    this.keys.set(task.taskId, task.key);
    if (task.attempt === 0) this.s.progress?.queued(task.step);
    const origin = this.s.origin;
    const match = origin && !origin.rerun.has(task.step) ? origin.tasks.get(task.key) : undefined;
    // A task after one that runs again starts from new inputs, so it runs again too.
    const afterRerun = task.parents.some((p) => this.executed.has(p.taskId));
    if (match && !afterRerun && canClone(match, this.s.nodes)) {
      // Counted at once (the run is not over), started when fewer than the limit are in flight.
      this.cloning += 1;
      const start = () => void this.clone(task, match);
      if (this.cloneActive < MAX_CLONES_AT_ONCE) start();
      else this.cloneBacklog.push(start);
      return;
    }
    this.executed.add(task.taskId);
    this.queue.push(this.s.setups.get(task.step)!.plan.launcher.kind, task);
  }

  /** Copies a finished task of the origin run into this run instead of running it again. */
  private async clone(task: QueuedTask, o: OriginTask): Promise<void> {
    this.cloneActive += 1;
    try {
      // Never clone a task whose stored objects are gone or damaged: its clone would point at nothing.
      const problem = await this.cloneChecker?.problem(o);
      if (problem) {
        this.s.say(`${this.prefix(task, undefined)} ${describeCloneProblem(problem)}`);
        this.executed.add(task.taskId);
        if (!this.stopping) this.queue.push(this.s.setups.get(task.step)!.plan.launcher.kind, task);
        return;
      }
      this.sayTask(task, `${this.prefix(task, undefined)} Cloned from ${this.s.flowName}/${this.s.origin!.runId}/${o.step}/${o.taskId}.`);
      const parents = task.parents.filter((p) => p.step !== "_parameters").map((p) => this.pathspec(p.step, p.taskId));
      await cloneTask(this.s.backends, this.s.flowName, this.s.runId, { step: task.step, taskId: task.taskId, parents, frames: task.frames }, this.s.origin!.runId, o);
      this.cloned += 1;
      this.s.progress?.cloned(task.step);
      if (!this.stopping) this.route(task, o.artifacts, o.transition);
    } catch (err) {
      this.failure ??= { step: task.step, taskId: task.taskId, error: { name: "CloneError", message: `could not clone the task: ${(err as Error).message}` } };
    } finally {
      this.cloneActive -= 1;
      this.cloning -= 1;
      this.cloneBacklog.shift()?.();
      this.pump();
    }
  }

  private launcher(kind: string): TaskLauncher {
    let l = this.launchers.get(kind);
    if (!l) {
      const factory = launcherFactory(kind);
      if (!factory) throw new Error(`no task launcher of kind '${kind}' (known: ${launcherKinds().join(", ")})`);
      l = factory({ maxWorkers: this.s.maxWorkers, backends: this.s.backends, say: (stream, line) => this.s.say(line, stream), wake: () => this.pump() });
      this.launchers.set(kind, l);
    }
    return l;
  }

  /** Starts queued tasks while launchers have room; ends the loop when nothing is left. */
  private pump(): void {
    if (this.wakeTimer) {
      clearTimeout(this.wakeTimer);
      this.wakeTimer = undefined;
    }
    if (this.stopping) this.queue.clear();
    const now = Date.now();
    let local = 0;
    for (const r of this.running.values()) if (!r.launcher.remote) local++;
    // In order, until the launcher (or, for local ones, --max-workers) has no more room.
    const earliest = this.queue.offer(now, (kind, task) => {
      const launcher = this.launcher(kind);
      if ((!launcher.remote && local >= this.s.maxWorkers) || !this.dispatch(task, launcher)) return false;
      if (!launcher.remote) local++;
      return true;
    });
    const queued = this.queue.size;
    if (queued === 0 && this.running.size === 0 && this.cloning === 0) {
      this.finished();
      return;
    }
    if (queued > 0) {
      // Re-check soon: a delayed retry comes due, or long tasks justify another worker.
      const wait = Number.isFinite(earliest) ? Math.max(5, earliest - now) : 50;
      this.wakeTimer = setTimeout(() => this.pump(), Math.min(wait, 50));
    }
  }

  private specFor(task: QueuedTask): TaskSpec {
    const node = this.s.nodes.get(task.step)!;
    const setup = this.s.setups.get(task.step)!;
    return {
      ...this.s.base,
      step: task.step,
      taskId: task.taskId,
      attempt: task.attempt,
      parents: task.parents,
      frames: task.frames,
      isJoin: node.isJoin,
      isEnd: node.next.kind === "end",
      env: setup.plan.env,
      decorators: setup.decorators,
      ...(task.recover ? { recover: task.recover } : {}),
    };
  }

  /** Offers one attempt to its launcher; false when the launcher has no room yet. */
  private dispatch(task: QueuedTask, launcher: TaskLauncher): boolean {
    const plan = this.s.setups.get(task.step)!.plan;
    const attempt: RunningAttempt = {
      task,
      launcher,
      startedAt: performance.now(),
      logs: launcher.remote
        ? undefined
        : new AttemptLogs(this.s.backends.storage, `flows/${this.s.flowName}/${this.s.runId}/${task.step}/${task.taskId}`, task.attempt, (stream, line) =>
            this.sayTask(task, `${this.prefix(task, attempt.label)} ${line}`, stream, attempt.loud),
          ),
      handle: undefined,
      label: "",
      loud: false,
      recordStart: undefined,
      timer: undefined,
      timedOut: false,
      cancelled: false,
      settled: false,
    };
    this.running.set(task.taskId, attempt);
    const handle = launcher.tryLaunch(
      { spec: this.specFor(task), plan },
      {
        started: (label, pid) => this.started(attempt, label, pid),
        output: (stream, text) => {
          if (attempt.logs) attempt.logs.write(stream, text);
          else this.sayTask(task, `${this.prefix(task, attempt.label)} ${text.replace(/\n$/, "")}`, stream);
          // Backpressure: the task's output is read no faster than the console and log take it.
          return this.s.pressure?.() ?? attempt.logs?.pressure();
        },
        done: (outcome) => void this.ended(attempt, outcome).catch((err: unknown) => this.bookkeepingFailed(attempt, err)),
      },
    );
    if (!handle) {
      this.running.delete(task.taskId);
      return false;
    }
    attempt.handle = handle;
    return true;
  }

  private started(attempt: RunningAttempt, label: string, pid: number | undefined): void {
    const { task, launcher } = attempt;
    const plan = this.s.setups.get(task.step)!.plan;
    attempt.label = label;
    if (!launcher.remote && !this.metadataError) {
      attempt.recordStart = this.track(this.recordStart(task, pid ?? -1));
      attempt.recordStart.catch((err: unknown) => this.recordingFailed(task, err));
    }
    const retry = task.attempt > 0 && !task.recover ? ` (retry ${task.attempt})` : "";
    this.s.progress?.started(task.step);
    this.sayTask(task, `${this.prefix(task, label)} ${task.recover ? "Storing the caught error." : "Task is starting."}${retry}`);
    if (task.recover && plan.onFailure?.print) {
      const e = task.recover.error;
      this.showLine(attempt, "stderr", `@catchError caught ${e.name}: ${e.message}`);
    }
    if (plan.timeoutMs !== undefined && !task.recover) {
      const deadline = Date.now() + plan.timeoutMs;
      // setTimeout fires at once past 2^31-1 ms (~24.8 days): longer limits wait in steps.
      const arm = () => {
        const left = deadline - Date.now();
        attempt.timer = setTimeout(() => {
          if (Date.now() < deadline) return arm();
          attempt.timedOut = true;
          attempt.handle?.cancel();
        }, Math.min(Math.max(left, 0), MAX_TIMER_MS));
      };
      arm();
    }
  }

  private recordStart(task: QueuedTask, pid: number): Promise<void> {
    return this.s.backends.metadata.startAttempt(this.s.flowName, this.s.runId, task.step, task.taskId, attemptStart(this.s.flowName, this.s.runId, task, pid));
  }

  private async ended(attempt: RunningAttempt, outcome: AttemptOutcome): Promise<void> {
    if (attempt.settled) return;
    attempt.settled = true;
    if (attempt.timer) clearTimeout(attempt.timer);
    const { task, launcher } = attempt;
    const plan = this.s.setups.get(task.step)!.plan;
    // A remote task records its own attempt, unless its launcher says it could not (a job that died).
    const unrecorded = outcome.ok ? undefined : outcome.unrecorded;
    const record = (!launcher.remote || unrecorded !== undefined) && !this.metadataError;
    // An attempt that ended before it started (a worker that could not start) still gets a record.
    if ((!launcher.remote || unrecorded === "attempt") && attempt.recordStart === undefined && !this.metadataError) attempt.recordStart = this.track(this.recordStart(task, -1));
    const error = outcome.ok ? undefined : attempt.timedOut ? timeoutError(task.step, plan.timeoutMs ?? 0) : attempt.cancelled && this.stopping ? this.cancelled(task) : outcome.error;
    attempt.loud = !outcome.ok;
    // A remote task that recorded its error also wrote it to its logs, which the console showed
    // (unless one progress line stands for the step's tasks).
    const shown = !record && !this.s.progress?.quiet(task.step);
    if (error && !shown && !(attempt.cancelled && this.stopping)) {
      for (const line of formatTaskError(error)) this.showLine(attempt, "stderr", line);
    }
    try {
      await attempt.recordStart;
      await attempt.logs?.close();
      if (record && !this.metadataError) {
        await this.track(this.s.backends.metadata.endAttempt(this.s.flowName, this.s.runId, task.step, task.taskId, attemptEnd(task.attempt, outcome, error)));
      }
    } catch (err) {
      this.recordingFailed(task, err);
    }
    this.stats.push({ step: task.step, taskId: task.taskId, wallMs: performance.now() - attempt.startedAt, ...(outcome.timings ? { timings: outcome.timings } : {}) });
    // Only now may the run end: until the attempt is recorded, the task still counts as running.
    this.running.delete(task.taskId);
    this.s.progress?.ended(task.step, outcome.ok);
    if (outcome.ok) {
      this.sayTask(task, `${this.prefix(task, attempt.label)} Task finished successfully.`);
      if (!this.stopping) this.route(task, outcome.artifacts, outcome.transition);
    } else if (!this.stopping) {
      this.afterFailure(attempt, error!);
    }
    this.pump();
  }

  /**
   * An attempt could not be recorded (the metadata service is down past its retry window, or
   * refused the request): nothing after it could be either, so the run stops — every running
   * attempt is cancelled rather than each waiting out its own failing writes.
   */
  private recordingFailed(task: QueuedTask, err: unknown): void {
    if (this.metadataError) return;
    const e = toPlainError(err);
    const what = `could not record task ${this.pathspec(task.step, task.taskId)} in the metadata`;
    this.metadataError = { name: "MetadataError", ...(e.code ? { code: e.code } : {}), headline: what, message: `${what}: ${e.headline && e.headline !== e.message ? `${e.headline}: ` : ""}${e.message}` };
    this.failure ??= { step: task.step, taskId: task.taskId, error: this.metadataError };
    this.queue.clear();
    for (const r of this.running.values()) {
      r.cancelled = true;
      r.handle?.cancel();
    }
  }

  /** Why an attempt the run stopped ended: said in its record instead of how its process died. */
  private cancelled(task: QueuedTask): PlainError {
    const why = this.interrupted ? "the run was interrupted (Ctrl-C or a stop signal)" : this.metadataError ? "the run could not record its tasks in the metadata" : "the run was stopping";
    return cancelledError(task.step, why);
  }

  /**
   * A bug in the loop's own bookkeeping after an attempt (routing, recording): the run fails with
   * the error rather than the process dying with the run's end unrecorded, or waiting for ever.
   */
  private bookkeepingFailed(attempt: RunningAttempt, err: unknown): void {
    const { task } = attempt;
    this.running.delete(task.taskId);
    const e = toPlainError(err);
    this.failure ??= { step: task.step, taskId: task.taskId, error: { ...e, message: `internal error after the attempt ended: ${e.message}` } };
    this.s.say(`${this.prefix(task, attempt.label)} Internal error after the attempt ended: ${e.message}`, "stderr");
    this.pump();
  }

  private showLine(attempt: RunningAttempt, stream: "stdout" | "stderr", line: string): void {
    if (attempt.logs) attempt.logs.line(stream, line);
    else this.s.say(`${this.prefix(attempt.task, attempt.label)} ${line}`, stream);
  }

  private afterFailure(attempt: RunningAttempt, error: PlainError): void {
    const { task } = attempt;
    const plan = this.s.setups.get(task.step)!.plan;
    const decision = afterFailure(plan, task.attempt, task.recover !== undefined);
    this.s.say(`${this.prefix(task, attempt.label)} ${describeDecision(decision, plan)}`, "stderr");
    switch (decision.kind) {
      case "retry":
        this.enqueue({ ...task, attempt: decision.attempt, notBefore: Date.now() + decision.delayMs });
        return;
      case "recover":
        this.enqueue({
          ...task,
          attempt: decision.attempt,
          notBefore: 0,
          recover: { storeIn: decision.storeIn, error, next: staticTransition(this.s.nodes.get(task.step)!) },
        });
        return;
      case "fail": {
        this.failure = { step: task.step, taskId: task.taskId, error };
        // Nothing new starts, but tasks already running finish: their results are kept, so a
        // resume clones them instead of running them again. Ctrl-C stops them at once.
        this.queue.clear();
        const others = this.running.size;
        if (others > 0) {
          this.s.say(`Waiting for ${others} running task${others === 1 ? "" : "s"} to finish before the run ends (Ctrl-C stops them).`, "stderr");
        }
      }
    }
  }

  /** Queues the tasks that follow a finished one; a join waits for every branch of its split. */
  private route(task: QueuedTask, artifacts: readonly ArtifactRef[], t: TakenTransition): void {
    const me: ParentTask = { step: task.step, taskId: task.taskId, artifacts, frames: task.frames };
    for (const next of successors(task, t)) {
      const node = this.s.nodes.get(next.step);
      if (!node) throw new Error(`internal: unknown step ${next.step}`);
      if (!node.isJoin) {
        const key = taskKey(next.step, next.frames, [this.keys.get(task.taskId)!]);
        this.enqueue({ key, step: next.step, taskId: this.newTaskId(), attempt: 0, parents: [me], frames: next.frames, notBefore: 0 });
        continue;
      }
      const ready = this.joins.arrive(next.step, me, next.frames);
      if (ready) {
        const key = taskKey(ready.step, ready.frames, ready.parents.map((p) => this.keys.get(p.taskId)!));
        this.enqueue({ key, step: ready.step, taskId: this.newTaskId(), attempt: 0, parents: ready.parents, frames: ready.frames, notBefore: 0 });
      }
    }
  }

  /** Ctrl-C or an abort: stops every running attempt; the run ends failed. */
  interrupt(): void {
    if (this.interrupted) return;
    this.interrupted = true;
    this.s.say(`Interrupted: stopping ${this.running.size} running task(s)...`, "stderr");
    this.queue.clear();
    for (const r of this.running.values()) {
      r.cancelled = true;
      r.handle?.cancel();
    }
    this.pump();
  }
}
