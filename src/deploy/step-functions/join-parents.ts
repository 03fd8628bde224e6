/**
 * How a join task of a deployed run finds its parents without listing anything: from the task
 * that opened the split (its id is in the join's command), the split's recorded transition (how
 * many foreach splits, or which branches), and the deterministic task ids, it walks each branch's
 * recorded transitions — one lookup per task — to the task that went to the join. A step that
 * repeats itself is followed iteration by iteration; a nested split jumps to its own join.
 */
import type { TakenTransition } from "../../metadata/types.js";
import type { TaskRef } from "./command.js";
import { parseTaskId, taskIdFor } from "./ids.js";
import { stepOf, type FlowStructure } from "./structure.js";

/**
 * The transition recorded by the successful attempt of task `step/taskId`, or undefined when the
 * task has none (it never ran, or no attempt succeeded).
 */
export type TransitionLookup = (
  step: string,
  taskId: string,
) => Promise<TakenTransition | undefined>;

/** A join's parents cannot be found: a task on the way has no successful attempt recorded. */
export class JoinParentsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "JoinParentsError";
  }
}

/** Most tasks one walk visits before giving up (a repeating step looping that long is a bug). */
const MAX_WALK = 100_000;
/** Lookups in flight at once. */
const CONCURRENCY = 16;

/**
 * The parents of join `join`, whose split was opened by task `split`, in split order (foreach
 * index, or branch order): exactly the inputs the join step receives.
 * @example
 * const parents = await resolveJoinParents(structure, "join", { step: "start", taskId: "sfn" }, lookup);
 */
export async function resolveJoinParents(
  structure: FlowStructure,
  join: string,
  split: TaskRef,
  lookup: TransitionLookup,
): Promise<TaskRef[]> {
  if (structure.joinOf.get(split.step) !== join) {
    throw new JoinParentsError(
      `Step '${split.step}' does not open the split that '${join}' closes`,
    );
  }
  const t = await lookup(split.step, split.taskId);
  const base = parseTaskId(split.taskId).indices;
  let starts: Array<{ step: string; indices: readonly number[] }>;
  if (t?.kind === "foreach") {
    starts = Array.from({ length: t.count }, (_, i) => ({ step: t.to, indices: [...base, i] }));
  } else if (t?.kind === "branch") {
    starts = t.to.map((step) => ({ step, indices: base }));
  } else {
    throw new JoinParentsError(
      `Task ${split.step}/${split.taskId} has no recorded split (its transition is ${t ? t.kind : "missing"})`,
    );
  }
  const parents: TaskRef[] = new Array<TaskRef>(starts.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < starts.length) {
      const i = next++;
      parents[i] = await walk(structure, join, starts[i]!.step, starts[i]!.indices, lookup);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, starts.length) }, worker));
  return parents;
}

async function walk(
  structure: FlowStructure,
  join: string,
  firstStep: string,
  indices: readonly number[],
  lookup: TransitionLookup,
): Promise<TaskRef> {
  const at = (step: string, iteration?: number): TaskRef => ({
    step,
    taskId: taskIdFor({
      indices,
      ...(structure.repeating.has(step) ? { iteration: iteration ?? 0 } : {}),
    }),
  });
  let task = at(firstStep);
  for (let visited = 0; visited < MAX_WALK; visited++) {
    const t = await lookup(task.step, task.taskId);
    if (!t)
      throw new JoinParentsError(
        `Task ${task.step}/${task.taskId} has no successful attempt recorded, so join '${join}' cannot gather its inputs`,
      );
    let to: string;
    if (t.kind === "linear" || t.kind === "switch") to = t.to;
    else if (t.kind === "foreach" || t.kind === "branch")
      to = structure.joinOf.get(task.step) ?? "";
    else
      throw new JoinParentsError(
        `Task ${task.step}/${task.taskId} ended the flow before reaching join '${join}'`,
      );
    if (to === join && t.kind !== "foreach" && t.kind !== "branch") return task;
    if (to === task.step) {
      task = at(to, parseTaskId(task.taskId).iteration! + 1);
    } else {
      stepOf(structure, to);
      task = at(to);
    }
  }
  throw new JoinParentsError(
    `Gave up finding the inputs of join '${join}' after ${MAX_WALK} tasks`,
  );
}
