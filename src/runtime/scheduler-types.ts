/**
 * The scheduling loop's types: what it is given (`SchedulerSetup`), what it returns (`LoopResult`,
 * `TaskStat`), and its own records of queued and running attempts.
 */
import type { Backends } from "../backends.js";
import type { AttemptLogs } from "../datastore/logs.js";
import type { PlainError } from "../errors.js";
import type { StepNode } from "../graph/types.js";
import type { AttemptHandle, TaskLauncher } from "../launchers/types.js";
import type { SplitFrame } from "../metadata/types.js";
import type { ParentTask, TaskSpec, TaskTimings } from "../task/protocol.js";
import type { StepSetup } from "./plans.js";
import type { TaskProgress } from "./progress.js";
import type { OriginTask } from "./resume.js";

/** Per-attempt figures, for the benchmark and the summary. */
export interface TaskStat {
  readonly step: string;
  readonly taskId: string;
  readonly wallMs: number;
  readonly timings?: TaskTimings;
}

/** A task waiting to run. */
export interface QueuedTask {
  /** Identity of the task across runs (step, split positions, parents), used to match on resume. */
  readonly key: string;
  readonly step: string;
  readonly taskId: string;
  readonly attempt: number;
  readonly parents: readonly ParentTask[];
  readonly frames: readonly SplitFrame[];
  readonly notBefore: number;
  readonly recover?: TaskSpec["recover"];
}

/** The scheduler's handle on an attempt a launcher runs. */
export interface RunningAttempt {
  readonly task: QueuedTask;
  readonly launcher: TaskLauncher;
  readonly startedAt: number;
  readonly logs: AttemptLogs | undefined;
  handle: AttemptHandle | undefined;
  label: string;
  /** Its lines reach the console even when its step is shown by a status line (it failed). */
  loud: boolean;
  recordStart: Promise<void> | undefined;
  timer: NodeJS.Timeout | undefined;
  timedOut: boolean;
  cancelled: boolean;
  settled: boolean;
}

/** What the loop is given: the run's identity and everything a task spec is made of. */
export interface SchedulerSetup {
  readonly flowName: string;
  readonly runId: string;
  readonly nodes: ReadonlyMap<string, StepNode>;
  readonly setups: ReadonlyMap<string, StepSetup>;
  readonly backends: Backends;
  readonly maxWorkers: number;
  /** The parts of every task spec that are the same for the whole run. */
  readonly base: Omit<TaskSpec, "step" | "taskId" | "attempt" | "parents" | "frames" | "isJoin" | "isEnd" | "env" | "decorators" | "recover">;
  readonly say: (line: string, stream?: "stdout" | "stderr") => void;
  /** Counts tasks for a terminal's status lines; a `quiet` step's per-task lines stay in its logs. @default none */
  readonly progress?: TaskProgress;
  /** A promise while the console is backed up (a slow reader of its output), else undefined. */
  readonly pressure?: () => Promise<void> | undefined;
  readonly origin?: { readonly runId: string; readonly tasks: ReadonlyMap<string, OriginTask>; readonly rerun: ReadonlySet<string> };
}

/** How the loop ended. */
export interface LoopResult {
  readonly failure: { readonly step: string; readonly taskId: string; readonly error: PlainError } | undefined;
  readonly interrupted: boolean;
  readonly cloned: number;
  readonly stats: readonly TaskStat[];
  /** Set when recording an attempt failed (the metadata service is down, say): the loop stopped there. */
  readonly metadataError?: PlainError;
}
