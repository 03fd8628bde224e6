/**
 * The metadata provider interface: what the runtime records about flows, runs, steps, tasks and
 * attempts, and what the client reads back. Implementations: local files (default), a service.
 */
import type { ArtifactRef } from "../datastore/types.js";
import type { PlainError } from "../errors.js";
import type { TagChange } from "./tags.js";

/** A run as recorded when it starts. */
export interface RunRecord {
  readonly flow: string;
  readonly runId: string;
  readonly user: string;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
  /** Parameter values as given to the run (JSON-able; IncludeFile values are summarised). */
  readonly parameters: Readonly<Record<string, unknown>>;
  /** Stored parameter artifacts (every task inherits them). */
  readonly parameterRefs: readonly ArtifactRef[];
  readonly systemTags: readonly string[];
  /** User tags: those given at start, as later edited with `updateTags`. */
  readonly tags: readonly string[];
  /** Content hash of the run's code package manifest. */
  readonly codePackage: string;
  readonly flowFile: string;
  readonly className: string;
  readonly originRunId?: string;
  /** Hash of the stored run plan, from which `metaflow task` runs any of the run's tasks. */
  readonly runPlan?: string;
  /**
   * Who drives the run when no process of this library does (`step-functions`): such a run sends
   * no heartbeats, and records its own end. @default undefined (a `metaflow run` process)
   */
  readonly orchestrator?: string;
}

/** Options of `MetadataProvider.newRun`. */
export interface NewRunOptions {
  /**
   * Makes the call idempotent: a second `newRun` with the same key returns the run the first one
   * created (a retried deployed start task). 8 to 128 letters, digits, `_` or `-`.
   */
  readonly idempotencyKey?: string;
}

/** How a run ended. */
export interface RunEnd {
  readonly status: "completed" | "failed";
  readonly finishedAt: number;
  readonly failedStep?: string;
  readonly error?: PlainError;
}

/** Foreach position of a task in one enclosing split. */
export interface SplitFrame {
  readonly kind: "foreach" | "branch";
  /** Step that opened the split. */
  readonly step: string;
  /** Task id of the task that opened the split. */
  readonly taskId: string;
  readonly index: number;
  readonly count: number;
  /** The foreach list artifact (foreach only). */
  readonly items?: ArtifactRef;
}

/** An attempt as recorded when it starts. */
export interface AttemptStart {
  readonly attempt: number;
  readonly startedAt: number;
  readonly pid: number;
  /** Pathspecs (`Flow/run/step/task`) of the parent tasks. */
  readonly parents: readonly string[];
  readonly frames: readonly SplitFrame[];
}

/** The transition a finished task took. */
export type TakenTransition =
  | { readonly kind: "linear"; readonly to: string }
  | { readonly kind: "branch"; readonly to: readonly string[] }
  | { readonly kind: "foreach"; readonly to: string; readonly count: number; readonly items: ArtifactRef }
  | { readonly kind: "switch"; readonly to: string; readonly case: string }
  | { readonly kind: "end" };

/** An attempt as recorded when it ends. */
export interface AttemptEnd {
  readonly attempt: number;
  readonly finishedAt: number;
  readonly status: "completed" | "failed";
  readonly artifacts: readonly ArtifactRef[];
  readonly transition?: TakenTransition;
  readonly error?: PlainError;
  /** The task was copied from this task of the origin run by `resume`. */
  readonly clonedFrom?: string;
}

/** Everything recorded about one task. */
export interface TaskRecord {
  readonly flow: string;
  readonly runId: string;
  readonly step: string;
  readonly taskId: string;
  readonly attempts: ReadonlyArray<{ start: AttemptStart; end?: AttemptEnd }>;
}

/** Where the runtime and the client keep metadata. */
export interface MetadataProvider {
  /** Allocates a new run id and records the run; unique even when many runs start at once. */
  newRun(record: Omit<RunRecord, "runId">, options?: NewRunOptions): Promise<string>;
  startAttempt(flow: string, runId: string, step: string, taskId: string, start: AttemptStart): Promise<void>;
  endAttempt(flow: string, runId: string, step: string, taskId: string, end: AttemptEnd): Promise<void>;
  finishRun(flow: string, runId: string, end: RunEnd): Promise<void>;

  listFlows(): Promise<string[]>;
  /** Run ids of a flow, newest first. */
  listRuns(flow: string): Promise<string[]>;
  getRun(flow: string, runId: string): Promise<RunRecord | undefined>;
  getRunEnd(flow: string, runId: string): Promise<RunEnd | undefined>;
  listSteps(flow: string, runId: string): Promise<string[]>;
  listTasks(flow: string, runId: string, step: string): Promise<string[]>;
  getTask(flow: string, runId: string, step: string, taskId: string): Promise<TaskRecord | undefined>;

  /** A run's current user tags (the same as `getRun(...).tags`). */
  getTags(flow: string, runId: string): Promise<string[]>;
  /**
   * Removes then adds user tags of a run as one atomic edit and returns the new user tags; two
   * processes editing at once both see their change kept. Refuses to remove a system tag.
   */
  updateTags(flow: string, runId: string, change: TagChange): Promise<string[]>;
}
