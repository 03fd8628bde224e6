/**
 * The task-launcher contract: where and how one attempt of one task runs — a fresh context in a
 * shared worker host, a process of its own, a cluster job. The scheduler knows only this
 * interface; a step's plan names the launcher kind (`plan.launcher.kind`).
 */
import type { Backends } from "../backends.js";
import type { TaskPlan } from "../decorators/contract.js";
import type { ArtifactRef } from "../datastore/types.js";
import type { PlainError } from "../errors.js";
import type { TakenTransition } from "../metadata/types.js";
import type { TaskSpec, TaskTimings } from "../task/protocol.js";

/** One attempt to start. */
export interface AttemptRequest {
  readonly spec: TaskSpec;
  readonly plan: TaskPlan;
}

/** How an attempt ended. */
export type AttemptOutcome =
  | { readonly ok: true; readonly artifacts: readonly ArtifactRef[]; readonly transition: TakenTransition; readonly timings?: TaskTimings }
  | {
      readonly ok: false;
      readonly error: PlainError;
      readonly timings?: TaskTimings;
      /** What the failed attempt had assigned (stored best effort), recorded with its end. */
      readonly artifacts?: readonly ArtifactRef[];
      /**
       * From a remote launcher: the task did not record how this attempt ended (its job died,
       * was cancelled or never started), so the scheduler records the failure — the end only
       * (`"end"`), or the start too when the attempt never began (`"attempt"`).
       */
      readonly unrecorded?: "end" | "attempt";
    };

/** What the scheduler hears about one attempt. */
export interface AttemptListener {
  /**
   * The attempt is running; `label` says where, for the console prefix (`pid 1234`,
   * `slurm job 77_3`), and `pid` is the local process id when there is one.
   */
  started(label: string, pid?: number): void;
  /**
   * Raw output of a local attempt; the scheduler shows and stores it. Remote tasks store their own.
   * A returned promise means the console or log is backed up: hold further output until it settles.
   */
  output(stream: "stdout" | "stderr", text: string): void | Promise<void>;
  /** Called exactly once, also when the attempt never started. */
  done(outcome: AttemptOutcome): void;
}

/** The scheduler's handle on an attempt a launcher started. */
export interface AttemptHandle {
  /** Stops the attempt (a timeout, Ctrl-C, a failed run); `done` still follows. */
  cancel(): void;
}

/** Starts attempts of one kind. */
export interface TaskLauncher {
  readonly kind: string;
  /**
   * True when the task runs elsewhere and records its own attempt and logs in the metadata and
   * datastore (`metaflow task`); the scheduler then neither records nor stores them, and does not
   * count the attempt against `--max-workers` (the launcher throttles itself).
   */
  readonly remote: boolean;
  /** Starts the attempt now, or returns undefined when it has no room yet (asked again later). */
  tryLaunch(request: AttemptRequest, listener: AttemptListener): AttemptHandle | undefined;
  /** Stops every attempt still running and releases processes; resolves when they are gone. */
  close(): Promise<void>;
}

/** What a launcher is made with. */
export interface LauncherContext {
  /** `--max-workers`. */
  readonly maxWorkers: number;
  readonly backends: Backends;
  /** The run's console. */
  readonly say: (stream: "stdout" | "stderr", line: string) => void;
  /** Tells the scheduler that room freed up, so it offers queued attempts again. */
  readonly wake: () => void;
}

/** Makes a launcher of one kind for a run. */
export type LauncherFactory = (context: LauncherContext) => TaskLauncher;

/** What a launcher kind checks before a run starts. */
export interface PreflightContext {
  readonly backends: Backends;
  /** The steps whose plans name this launcher kind. */
  readonly steps: ReadonlyArray<{ readonly step: string; readonly plan: TaskPlan }>;
  /** `--max-workers`. */
  readonly maxWorkers: number;
}

/**
 * Checks, before anything is recorded or submitted, that a launcher kind can run the steps that
 * ask for it (its tools, its settings, a datastore its tasks reach); throws a MetaflowError that
 * says what to configure.
 */
export type LauncherPreflight = (context: PreflightContext) => Promise<void>;
