/**
 * How a join task of a deployed run finds its parents without listing anything: from the task
 * that opened the split (its id is in the join's command), the split's recorded transition (how
 * many foreach splits, or which branches), and the deterministic task ids, it walks each branch's
 * recorded transitions — one lookup per task — to the task that went to the join. A step that
 * repeats itself is followed iteration by iteration; a nested split jumps to its own join.
 */
import { MetaflowError } from "../errors.js";
import type { TakenTransition } from "../metadata/types.js";
import type { TaskRef } from "./command.js";
import type { RunPlan } from "./run-plan.js";
import { parseTaskId, taskIdFor } from "./task-ids.js";

/** What the walk needs to know about a flow's shape. */
export interface JoinShape {
  /** The flow's steps. */
  readonly steps: { has(step: string): boolean };
  /** For each split step (a branch or a foreach), the join step that closes it. */
  readonly joinOf: ReadonlyMap<string, string>;
  /** Steps whose switch names the step itself (their task ids carry the iteration). */
  readonly repeating: ReadonlySet<string>;
}

/** The join shape of a run plan, from each step's transition as written. */
export function joinShapeOf(plan: RunPlan): JoinShape {
  const joinOf = new Map<string, string>();
  const repeating = new Set<string>();
  const seen = new Set<string>();
  // Every path into a step carries the same open splits (the linter checks it), so the first
  // visit of each step tells all.
  const visit = (name: string, open: readonly string[]): void => {
    const step = plan.steps[name];
    if (!step || seen.has(name)) return;
    seen.add(name);
    let stack = open;
    if (step.isJoin) {
      const split = stack.at(-1);
      if (split !== undefined) joinOf.set(split, name);
      stack = stack.slice(0, -1);
    }
    const next = step.next;
    if (!next) return;
    if (next.kind === "linear") visit(next.to, stack);
    else if (next.kind === "branch") for (const to of next.to) visit(to, [...stack, name]);
    else if (next.kind === "foreach") visit(next.to, [...stack, name]);
    else
      for (const to of Object.values(next.cases)) {
        if (to === name) repeating.add(name);
        else visit(to, stack);
      }
  };
  visit("start", []);
  return { steps: new Set(Object.keys(plan.steps)), joinOf, repeating };
}

/**
 * The transition recorded by the successful attempt of task `step/taskId`, or undefined when the
 * task has none (it never ran, or no attempt succeeded).
 */
export type TransitionLookup = (
  step: string,
  taskId: string,
) => Promise<TakenTransition | undefined>;

/** A join's parents cannot be found: a task on the way has no successful attempt recorded. */
export class JoinParentsError extends MetaflowError {
  constructor(message: string) {
    super("join-parents", "A join cannot find its inputs", message);
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
  structure: JoinShape,
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
  structure: JoinShape,
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
      if (!structure.steps.has(to))
        throw new JoinParentsError(
          `Task ${task.step}/${task.taskId} went to '${to}', a step the flow does not have`,
        );
      task = at(to);
    }
  }
  throw new JoinParentsError(
    `Gave up finding the inputs of join '${join}' after ${MAX_WALK} tasks`,
  );
}
