/**
 * The transition a finished step takes: the `this.next(...)` it recorded, checked against what the
 * task holds — a foreach's list (any finite iterable), a switch's condition value.
 */
import { StepRuntimeError } from "../errors.js";
import type { RecordedTransition } from "../flow/flowspec.js";
import type { TakenTransition } from "../metadata/types.js";

/** A transition as the executor resolves it, before a foreach list is stored. */
export type Resolved =
  | Exclude<TakenTransition, { kind: "foreach" }>
  | {
      kind: "foreach";
      to: string;
      count: number;
      foreach: string;
      /** The elements, when the artifact is not itself indexable (a Set, a Map, a generator, ...). */
      elements?: unknown[];
    };

/** What the transition is resolved against. */
export interface TransitionContext {
  readonly step: string;
  readonly isEnd: boolean;
  readonly maxNumSplits: number;
}

const TYPED_ARRAY = Object.getPrototypeOf(Int8Array) as abstract new () => unknown;

/** Resolves the recorded transition, or throws a StepRuntimeError that says how to fix the step. */
export function resolveTransition(ctx: TransitionContext, flow: Record<string, unknown>, t: RecordedTransition | undefined): Resolved {
  if (ctx.isEnd) return { kind: "end" };
  if (!t) {
    throw new StepRuntimeError(
      "no-next",
      `Step '${ctx.step}' ended without calling this.next()`,
      `Step '${ctx.step}' ended without calling this.next(); end every step but 'end' with this.next(...)`,
    );
  }
  switch (t.kind) {
    case "linear":
    case "branch":
      return t;
    case "foreach":
      return resolveForeach(ctx, flow, t);
    case "switch": {
      const value = flow[t.condition];
      const key = typeof value === "string" || typeof value === "number" || typeof value === "boolean" ? String(value) : undefined;
      const to = key === undefined ? undefined : t.cases[key];
      if (to === undefined) {
        throw new StepRuntimeError(
          "switch-no-case",
          `Step '${ctx.step}': condition '${t.condition}' = ${JSON.stringify(value) ?? String(value)} matches no case`,
          `Step '${ctx.step}' switches on artifact '${t.condition}', whose value ${JSON.stringify(value) ?? String(value)} is not one of the cases ${Object.keys(t.cases).map((k) => JSON.stringify(k)).join(", ")}`,
        );
      }
      return { kind: "switch", to, case: key! };
    }
  }
}

function resolveForeach(ctx: TransitionContext, flow: Record<string, unknown>, t: Extract<RecordedTransition, { kind: "foreach" }>): Resolved {
  const value = flow[t.foreach];
  const where = `Step '${ctx.step}' does a foreach over artifact '${t.foreach}'`;
  let count: number;
  let elements: unknown[] | undefined;
  if (Array.isArray(value) || value instanceof TYPED_ARRAY || isForeignTypedArray(value)) {
    count = (value as ArrayLike<unknown>).length;
  } else if (isIterable(value)) {
    elements = materialise(value, ctx, t.foreach, where);
    count = elements.length;
  } else {
    throw new StepRuntimeError(
      "foreach-not-list",
      `Step '${ctx.step}': foreach artifact '${t.foreach}' is not iterable`,
      `${where}, which is ${describe(value)}; assign an array (or a string, Set, Map or other finite iterable) to this.${t.foreach} before this.next()`,
    );
  }
  if (count === 0) {
    throw new StepRuntimeError(
      "foreach-empty",
      `Step '${ctx.step}': foreach artifact '${t.foreach}' is empty`,
      `${where}, which is empty, so the join would have no inputs; give it at least one element`,
    );
  }
  if (count > ctx.maxNumSplits) throw tooMany(ctx, t.foreach, String(count));
  return { kind: "foreach", to: t.to, count, foreach: t.foreach, ...(elements ? { elements } : {}) };
}

/** Reads an iterable once, stopping past --max-num-splits so an endless one cannot hang the task. */
function materialise(value: Iterable<unknown>, ctx: TransitionContext, foreach: string, where: string): unknown[] {
  const out: unknown[] = [];
  try {
    for (const v of value) {
      out.push(v);
      if (out.length > ctx.maxNumSplits) break;
    }
  } catch (err) {
    throw new StepRuntimeError("foreach-iterate", `Step '${ctx.step}': iterating the foreach artifact threw`, `${where}; iterating it threw: ${(err as Error)?.message ?? String(err)}`);
  }
  if (out.length > ctx.maxNumSplits) {
    throw tooMany(ctx, foreach, `more than ${ctx.maxNumSplits} (it may be endless)`);
  }
  return out;
}

function tooMany(ctx: TransitionContext, foreach: string, count: string): StepRuntimeError {
  return new StepRuntimeError(
    "too-many-splits",
    `Step '${ctx.step}': foreach over '${foreach}' makes ${count} splits, more than --max-num-splits ${ctx.maxNumSplits}`,
    `Step '${ctx.step}' does a foreach over '${foreach}' with ${count} elements, more than --max-num-splits (${ctx.maxNumSplits}); raise --max-num-splits or split the work into fewer tasks`,
  );
}

function isIterable(v: unknown): v is Iterable<unknown> {
  return (typeof v === "object" && v !== null) || typeof v === "string"
    ? typeof (v as { [Symbol.iterator]?: unknown })[Symbol.iterator] === "function"
    : false;
}

/** A typed array from the step's realm (whose intrinsics differ from the host's). */
function isForeignTypedArray(v: unknown): boolean {
  return ArrayBuffer.isView(v) && !(v instanceof DataView) && Object.prototype.toString.call(v) !== "[object DataView]";
}

function describe(v: unknown): string {
  if (v === undefined) return "undefined (was it assigned?)";
  if (v === null) return "null";
  const name = typeof v === "object" ? ((v as object).constructor?.name ?? "object") : typeof v;
  return `${/^[aeiou]/i.test(name) ? "an" : "a"} ${name}`;
}
