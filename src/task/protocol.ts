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

/** Parent → host. */
export type HostRequest = { readonly type: "run"; readonly task: TaskSpec };

/** Host → parent. */
export type HostReply =
  | { readonly type: "ready"; readonly pid: number }
  | { readonly type: "log"; readonly stream: "stdout" | "stderr"; readonly text: string }
  | {
      readonly type: "done";
      readonly ok: true;
      readonly artifacts: readonly ArtifactRef[];
      readonly transition: TakenTransition;
      readonly timings: TaskTimings;
    }
  | { readonly type: "done"; readonly ok: false; readonly error: PlainError; readonly timings?: TaskTimings };
