/**
 * The run plan: everything about a flow's steps that a task needs and that is the same for every
 * task of a run (or of a deployment) — the code package, each step's shape and decorators, the
 * parameters. Stored content-addressed, so `metaflow task` on another machine needs only its hash.
 */
import type { DecoratorSpec, StepShape } from "../decorators/contract.js";
import type { ContentStore } from "../datastore/cas.js";
import { DatastoreError } from "../errors.js";
import type { RecordedTransition } from "../flow/flowspec.js";
import type { ParameterSpec } from "../flow/parameter.js";

/** What a task needs to know about its step. */
export interface StepPlan {
  readonly isJoin: boolean;
  readonly isEnd: boolean;
  /** The step decorators that apply, outermost first. */
  readonly decorators: readonly DecoratorSpec[];
  /** Environment variables the plan adds to `process.env`. */
  readonly env: Readonly<Record<string, string>>;
  /** The step's transition as written, followed by a task that stores a caught error. */
  readonly next: RecordedTransition | undefined;
  /** Where a caught error is stored when every attempt failed (undefined: not stored). */
  readonly storeErrorIn: string | undefined;
}

/** A parameter as a task that creates its run (a deployed start task) resolves it. */
export interface PlannedParameter extends ParameterSpec {
  /** The class field holding it: the artifact's name. */
  readonly field: string;
  /** IncludeFile: content hash of its file, read and stored when the plan was made. */
  readonly includedHash?: string;
}

/** The plan of a run. */
export interface RunPlan {
  readonly version: 1;
  readonly flowName: string;
  readonly className: string;
  /** Hash of the code package manifest. */
  readonly codePackage: string;
  /** The flow file as the user named it (module resolution base on the task's machine). */
  readonly flowFile: string;
  readonly parameterNames: readonly string[];
  readonly maxNumSplits: number;
  readonly flowDecorators: readonly DecoratorSpec[];
  readonly steps: Readonly<Record<string, StepPlan>>;
  /**
   * The parameters as declared, with the defaults of the moment the plan was made: present in the
   * plan of a deployment, whose start task creates each run. @default undefined
   */
  readonly parameters?: readonly PlannedParameter[];
}

/** Stores a run plan; returns its hash. */
export async function storeRunPlan(store: ContentStore, plan: RunPlan): Promise<string> {
  return (await store.put([Buffer.from(JSON.stringify(plan))])).hash;
}

/** Reads a run plan by hash. */
export async function readRunPlan(store: ContentStore, hash: string): Promise<RunPlan> {
  let plan: RunPlan;
  try {
    plan = JSON.parse((await store.get(hash)).toString("utf8")) as RunPlan;
  } catch (err) {
    throw new DatastoreError(`Cannot read the run plan ${hash} from the datastore: ${(err as Error).message}; check that the task uses the same datastore as the run (METAFLOW_DATASTORE_SYSROOT_*)`);
  }
  if (plan?.version !== 1 || typeof plan.steps !== "object") {
    throw new DatastoreError(`Object ${hash} is not a run plan this version of metaflow-ts can read`);
  }
  return plan;
}

const graphs = new Map<string, Promise<StepShape[]>>();

/**
 * The flow's steps and transitions from the run plan `hash` (read once per process): what in-task
 * hooks see as `task.graph`. Empty when the task has no run plan.
 */
export function stepGraph(store: ContentStore, hash: string | undefined): Promise<StepShape[]> {
  if (hash === undefined) return Promise.resolve([]);
  let graph = graphs.get(hash);
  if (!graph) {
    graph = readRunPlan(store, hash).then((plan) => Object.entries(plan.steps).map(([name, s]) => shapeOf(name, s)));
    // A failed read is not kept: the next task tries again.
    void graph.catch(() => graphs.delete(hash));
    graphs.set(hash, graph);
  }
  return graph;
}

function shapeOf(name: string, step: StepPlan): StepShape {
  const t = step.next;
  if (step.isEnd || t === undefined) return { name, kind: "end", next: [] };
  switch (t.kind) {
    case "linear":
    case "foreach":
      return { name, kind: t.kind, next: [t.to] };
    case "branch":
      return { name, kind: "branch", next: [...t.to] };
    case "switch":
      return { name, kind: "switch", next: [...new Set(Object.values(t.cases))] };
  }
}
