/** What one attempt of one task needs (`TaskSpec`), and the messages between a worker host and its parent. */
import type { DecoratorSpec } from "../decorators/contract.js";
import type { ArtifactRef } from "../datastore/types.js";
import type { PlainError } from "../errors.js";
import type { RecordedTransition } from "../flow/flowspec.js";
import type { SplitFrame, TakenTransition } from "../metadata/types.js";
import type { StorageSpec } from "../backends.js";

/** One incoming task of the task to run: where its artifacts are. */
export interface ParentTask {
  readonly step: string;
  readonly taskId: string;
  readonly artifacts: readonly ArtifactRef[];
  readonly frames: readonly SplitFrame[];
}

/** Everything a worker host needs to execute one attempt of one task. */
export interface TaskSpec {
  readonly flowName: string;
  readonly className: string;
  readonly runId: string;
  readonly step: string;
  readonly taskId: string;
  readonly attempt: number;
  /** Absolute path of the flow file (module resolution and `__filename`). */
  readonly flowFile: string;
  /** Absolute path of the bundled flow code on local disk. */
  readonly bundlePath: string;
  /** How to open the run's datastore. */
  readonly storage: StorageSpec;
  readonly parents: readonly ParentTask[];
  readonly frames: readonly SplitFrame[];
  readonly isJoin: boolean;
  readonly isEnd: boolean;
  readonly parameterNames: readonly string[];
  readonly maxNumSplits: number;
  readonly env: Readonly<Record<string, string>>;
  /** The step decorators that apply, outermost first: their in-task hooks wrap the step. */
  readonly decorators: readonly DecoratorSpec[];
  /** Hash of the stored run plan (what `metaflow task` reads to run a task elsewhere). */
  readonly runPlan?: string;
  /** The flow decorators of the class: their in-task hooks wrap the step decorators'. */
  readonly flowDecorators: readonly DecoratorSpec[];
  readonly username: string;
  readonly tags: readonly string[];
  readonly namespace: string | null;
  readonly originRunId: string | undefined;
  /**
   * When set, do not run the step: every attempt failed and the step recovers; store the error in
   * the artifact `storeIn` (when given) and follow the step's static transition.
   */
  readonly recover?: { readonly storeIn: string | undefined; readonly error: PlainError; readonly next: RecordedTransition | undefined };
}

/** Timings of one attempt, in milliseconds. */
export interface TaskTimings {
  readonly setupMs: number;
  readonly stepMs: number;
  readonly persistMs: number;
  /** Time spent loading (reading + verifying + decoding) artifacts during the step. */
  readonly loadMs: number;
  readonly bytesWritten: number;
  readonly bytesLoaded: number;
}

/** Parent → host, as frames on the host's fd 3 (see channel.ts): first the host's secret key, then one task at a time. */
export type HostRequest = { readonly type: "init"; readonly key: string } | { readonly type: "run"; readonly task: TaskSpec };

/** Which attempt of which task a message is about. */
export interface AttemptIdentity {
  readonly flowName: string;
  readonly runId: string;
  readonly step: string;
  readonly taskId: string;
  readonly attempt: number;
}

/** How an attempt ended, as the host reports it. */
export type DoneReply = {
  readonly type: "done";
  readonly taskId: string;
  readonly attempt: number;
  /** The host will exit after this task (its state can no longer be trusted); send it nothing more. */
  readonly retiring?: boolean;
} & (
  | { readonly ok: true; readonly artifacts: readonly ArtifactRef[]; readonly transition: TakenTransition; readonly timings: TaskTimings }
  | {
      readonly ok: false;
      readonly error: PlainError;
      readonly timings?: TaskTimings;
      /** What the failed attempt had assigned, stored best effort. */
      readonly artifacts?: readonly ArtifactRef[];
    }
);

/**
 * Host → parent, as message frames on the host's channel (task output travels as text frames).
 * `stray`: an error surfaced in the code of an attempt that had already ended (a fire-and-forget
 * promise rejected later), or in no task's code at all (`task` undefined); it is reported, never
 * charged to the task running now.
 */
export type HostReply =
  | { readonly type: "ready"; readonly pid: number }
  | DoneReply
  | { readonly type: "stray"; readonly task?: AttemptIdentity; readonly error: PlainError; readonly retiring: boolean };
