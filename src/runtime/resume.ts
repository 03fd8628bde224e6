/**
 * Resume: which tasks of an earlier run can be cloned into a new one. Tasks are matched by
 * identity — step, position in every enclosing split, and the identities of their parents — so a
 * foreach split, a branch or a switch iteration finds its counterpart however ids were assigned.
 */
import { createHash } from "node:crypto";
import type { Backends } from "../backends.js";
import { logKey } from "../datastore/logs.js";
import type { ArtifactRef } from "../datastore/types.js";
import { UsageError } from "../errors.js";
import type { StepNode } from "../graph/types.js";
import type {
  MetadataProvider,
  RunRecord,
  SplitFrame,
  TakenTransition,
  TaskRecord,
} from "../metadata/types.js";

/** A finished task of the origin run that resume may clone. */
export interface OriginTask {
  readonly step: string;
  readonly taskId: string;
  readonly attempt: number;
  readonly artifacts: readonly ArtifactRef[];
  readonly transition: TakenTransition;
}

/** What a resume starts from. */
export interface Origin {
  readonly record: RunRecord;
  /** Finished tasks by identity (`taskKey`). */
  readonly tasks: ReadonlyMap<string, OriginTask>;
  /** Steps that run again whatever the origin did (the chosen step and all after it). */
  readonly rerun: ReadonlySet<string>;
}

/** A task's identity across runs: its step, its positions in enclosing splits, and its parents'. */
export function taskKey(
  step: string,
  frames: readonly SplitFrame[],
  parentKeys: readonly string[],
): string {
  const data = JSON.stringify([
    step,
    frames.map((f) => [f.step, f.kind, f.index, f.count]),
    parentKeys,
  ]);
  return createHash("sha1").update(data).digest("hex");
}

/**
 * Reads the origin run — the given id, else the user's latest run of the flow — and indexes every
 * task whose last attempt finished.
 */
export async function loadOrigin(
  metadata: MetadataProvider,
  flowName: string,
  user: string,
  resume: { readonly originRunId?: string; readonly step?: string },
  nodes: ReadonlyMap<string, StepNode>,
): Promise<Origin> {
  let originRunId = resume.originRunId;
  if (originRunId === undefined) {
    for (const id of await metadata.listRuns(flowName)) {
      const r = await metadata.getRun(flowName, id);
      if (r?.user === user) {
        originRunId = id;
        break;
      }
    }
    if (originRunId === undefined) {
      throw new UsageError(
        `resume: user ${user} has no run of ${flowName} to resume; run it first, or pass --origin-run-id`,
      );
    }
  }
  const record = await metadata.getRun(flowName, originRunId);
  if (!record) {
    throw new UsageError(
      `resume: there is no run ${flowName}/${originRunId} (see 'metaflow runs' for the runs of ${flowName})`,
    );
  }
  const records = new Map<string, TaskRecord>();
  for (const step of await metadata.listSteps(flowName, originRunId)) {
    const ids = await metadata.listTasks(flowName, originRunId, step);
    const tasks = await Promise.all(
      ids.map((id) => metadata.getTask(flowName, originRunId, step, id)),
    );
    for (const t of tasks)
      if (t) records.set(`${flowName}/${originRunId}/${t.step}/${t.taskId}`, t);
  }
  const keyOf = new Map<string, string>();
  const computeKey = (pathspec: string, seen: Set<string>): string | undefined => {
    if (keyOf.has(pathspec)) return keyOf.get(pathspec);
    const t = records.get(pathspec);
    const start = t?.attempts[t.attempts.length - 1]?.start;
    if (!t || !start || seen.has(pathspec)) return undefined;
    seen.add(pathspec);
    const parentKeys = start.parents.map((p) => computeKey(p, seen));
    if (parentKeys.some((k) => k === undefined)) return undefined;
    const key = taskKey(t.step, start.frames, parentKeys as string[]);
    keyOf.set(pathspec, key);
    return key;
  };
  const tasks = new Map<string, OriginTask>();
  for (const [pathspec, t] of records) {
    const last = t.attempts[t.attempts.length - 1];
    if (last?.end?.status !== "completed" || !last.end.transition) continue;
    const key = computeKey(pathspec, new Set());
    if (key === undefined) continue;
    tasks.set(key, {
      step: t.step,
      taskId: t.taskId,
      attempt: last.end.attempt,
      artifacts: last.end.artifacts,
      transition: last.end.transition,
    });
  }
  const rerun = new Set<string>();
  if (resume.step !== undefined) {
    // The chosen step and everything reachable from it run again.
    const stack = [resume.step];
    while (stack.length > 0) {
      const s = stack.pop()!;
      if (rerun.has(s)) continue;
      rerun.add(s);
      stack.push(...(nodes.get(s)?.out ?? []));
    }
  }
  return { record, tasks, rerun };
}

/** The task of the new run a clone fills in. */
export interface CloneTarget {
  readonly step: string;
  readonly taskId: string;
  /** Pathspecs of its parents in the new run. */
  readonly parents: readonly string[];
  readonly frames: readonly SplitFrame[];
}

/**
 * Copies a finished task of the origin run into the new run: an attempt that ended as the origin's
 * did, with the same artifacts (by reference) and logs, marked as cloned.
 */
export async function cloneTask(backends: Backends, flow: string, runId: string, target: CloneTarget, originRunId: string, o: OriginTask): Promise<void> {
  const from = `${flow}/${originRunId}/${o.step}/${o.taskId}`;
  await backends.metadata.startAttempt(flow, runId, target.step, target.taskId, {
    attempt: 0,
    startedAt: Date.now(),
    pid: process.pid,
    parents: target.parents,
    frames: target.frames,
  });
  // The origin attempt's logs come along, so the clone reads like the task it copies.
  await Promise.all(
    (["stdout", "stderr"] as const).map(async (stream) => {
      const text = await backends.storage.get(logKey(flow, originRunId, o.step, o.taskId, o.attempt, stream));
      if (text) await backends.storage.put(logKey(flow, runId, target.step, target.taskId, 0, stream), text);
    }),
  );
  await backends.metadata.endAttempt(flow, runId, target.step, target.taskId, {
    attempt: 0,
    finishedAt: Date.now(),
    status: "completed",
    artifacts: o.artifacts,
    transition: o.transition,
    clonedFrom: from,
  });
}

/** A clone must lead where the current code's graph leads. */
export function canClone(o: OriginTask, nodes: ReadonlyMap<string, StepNode>): boolean {
  const t = o.transition;
  const targets = t.kind === "end" ? [] : t.kind === "branch" ? t.to : [t.to];
  return nodes.has(o.step) && targets.every((s) => nodes.has(s));
}
