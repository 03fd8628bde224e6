/**
 * Task ids of a deployed run. The state machine computes them, so every task (and every join
 * that needs its parents) knows them without listing anything: a task's id is `sfn`, then the
 * index of each enclosing foreach (outermost first), then `-r<k>` for the k-th iteration of a
 * step that repeats itself. `sfn`, `sfn-2`, `sfn-2-0`, `sfn-1-r3`.
 */

/** Prefix of every task id in a deployed run. */
export const TASK_ID_PREFIX = "sfn";

/** Longest task id the metadata service accepts. */
export const MAX_TASK_ID_LENGTH = 64;

/** Where a task sits: foreach indices (outermost first) and, for a repeating step, its iteration. */
export interface TaskPosition {
  readonly indices: readonly number[];
  /** Iteration of a step that repeats itself (0 for the first); undefined for other steps. */
  readonly iteration?: number;
}

/** The task id of a task at `position`. */
export function taskIdFor(position: TaskPosition): string {
  const parts = [TASK_ID_PREFIX, ...position.indices.map(String)];
  if (position.iteration !== undefined) parts.push(`r${position.iteration}`);
  return parts.join("-");
}

const ID_RE = /^sfn((?:-\d+)*)(?:-r(\d+))?$/;

/** The position a task id encodes; throws on an id the state machine would never produce. */
export function parseTaskId(taskId: string): TaskPosition {
  const m = ID_RE.exec(taskId);
  if (!m) {
    throw new Error(
      `'${taskId}' is not a Step Functions task id (expected sfn, sfn-2, sfn-2-0-r1, ...)`,
    );
  }
  const indices = m[1] ? m[1].slice(1).split("-").map(Number) : [];
  return m[2] === undefined ? { indices } : { indices, iteration: Number(m[2]) };
}

/**
 * Storage key (relative to the datastore root) where the task `step/taskId` of execution
 * `executionName` of `deployment` writes its output document, which the state machine reads.
 */
export function outputKey(
  deployment: string,
  executionName: string,
  step: string,
  taskId: string,
): string {
  return `sfn/${deployment}/${executionName}/${step}/${taskId}.json`;
}

/**
 * Why `key` is not where the state machine reads the output document of task `step/taskId`
 * (`sfn/<deployment>/<execution>/<step>/<taskId>.json`, as {@link outputKey} makes it), or
 * undefined when it is. Any other key could overwrite a content object or a metadata record.
 */
export function outputKeyProblem(key: string, step: string, taskId: string): string | undefined {
  const parts = key.split("/");
  const named = (p: string | undefined) => p !== undefined && p !== "" && p !== "." && p !== "..";
  const ok =
    parts.length === 5 &&
    parts[0] === "sfn" &&
    named(parts[1]) &&
    named(parts[2]) &&
    parts[3] === step &&
    parts[4] === `${taskId}.json`;
  return ok
    ? undefined
    : `--output-key must be sfn/<deployment>/<execution>/${step}/${taskId}.json (the key the state machine reads for this task), got ${JSON.stringify(key)}`;
}

/**
 * Where the start task of the execution `executionArn`
 * (`arn:aws:states:<region>:<account>:execution:<deployment>:<name>`) wrote its output document:
 * how the run-failed state finds the run id. Undefined for an ARN of another shape.
 */
export function startOutputKey(executionArn: string): string | undefined {
  const m = /^arn:[^:]+:states:[^:]*:[^:]*:execution:([^:]+):([^:]+)$/.exec(executionArn);
  return m ? outputKey(m[1]!, m[2]!, "start", TASK_ID_PREFIX) : undefined;
}
