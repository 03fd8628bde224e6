/** `FlowSpec`, the base class of every flow, and the typing of join inputs. */
import { stepNameOf } from "./steps.js";

/** Step methods are referenced as `this.stepName`. */
export type StepRef = (...args: any[]) => unknown;

/** Options of a foreach transition. */
export interface ForeachOptions {
  /** Name of the artifact holding the list; one task runs per element. */
  foreach: string;
}
/** Options of a switch transition. */
export interface SwitchOptions {
  /** Name of the artifact whose value picks the case. */
  condition: string;
}

/** What a step's `this.next(...)` call recorded. */
export type RecordedTransition =
  | { kind: "linear"; to: string }
  | { kind: "branch"; to: string[] }
  | { kind: "foreach"; to: string; foreach: string }
  | { kind: "switch"; cases: Record<string, string>; condition: string };

/** Options of `mergeArtifacts`. */
export interface MergeOptions {
  /** Only merge these artifacts (each must exist in some input). */
  include?: readonly string[];
  /** Never merge these artifacts. */
  exclude?: readonly string[];
}

/** One enclosing foreach of a running task, as `this.foreachStack()` lists it. */
export interface ForeachFrame {
  /** The step that did the foreach. */
  readonly step: string;
  /** This task's position in that foreach. */
  readonly index: number;
  /** How many tasks that foreach made. */
  readonly numSplits: number;
  /** The element at `index` (loaded when first read). */
  readonly value: unknown;
}

/** The hooks the task executor installs on the running flow instance. */
export interface TaskHooks {
  next(t: RecordedTransition): void;
  merge(inputs: unknown, options: MergeOptions): void;
  foreachStack(): ForeachFrame[];
}

const hooks = new WeakMap<object, TaskHooks>();

/** Attaches the executor's hooks to a flow instance; called by the task executor only. */
export function attachTaskHooks(flow: object, h: TaskHooks): void {
  hooks.set(flow, h);
}

function hooksOf(flow: object, what: string): TaskHooks {
  const h = hooks.get(flow);
  if (!h) throw new Error(`${what} can only be called inside a running step`);
  return h;
}

function nameOf(ref: unknown, what: string): string {
  const name = stepNameOf(ref);
  if (!name) {
    throw new TypeError(`${what}: expected a step method such as this.train, got ${describe(ref)}`);
  }
  return name;
}

function describe(v: unknown): string {
  if (typeof v === "function") return `function ${v.name || "(anonymous)"} (is it missing @step?)`;
  if (v === undefined) return "undefined (is the step name misspelled?)";
  return typeof v;
}

/**
 * The base class of a flow: subclass it, mark methods with `@step`, and end each step but `end`
 * with one `this.next(...)` call.
 * @example
 * export default class HelloFlow extends FlowSpec {
 *   @step start() { this.next(this.end); }
 *   @step end() {}
 * }
 */
export abstract class FlowSpec {
  /** In a foreach task: the element of the list this task handles. */
  declare readonly input: unknown;
  /** In a foreach task: the position of `input` in the list. */
  declare readonly index: number;

  /** Goes to one step (linear), several steps (static branch) or one step per list element (foreach). */
  next(target: StepRef, options: ForeachOptions): void;
  /** Picks one case by the value of the `condition` artifact (switch). */
  next(cases: Readonly<Record<string, StepRef>>, options: SwitchOptions): void;
  next(...targets: StepRef[]): void;
  next(...args: unknown[]): void {
    const h = hooksOf(this, "this.next()");
    const last = args[args.length - 1];
    const isOptions = (v: unknown): v is Record<string, unknown> =>
      typeof v === "object" && v !== null && typeof v !== "function" && ("foreach" in v || "condition" in v);
    if (args.length === 2 && isOptions(last) && "condition" in last) {
      const cases = args[0];
      if (typeof cases !== "object" || cases === null) {
        throw new TypeError("this.next(cases, { condition }): cases must be an object such as { high: this.high }");
      }
      const named: Record<string, string> = {};
      for (const [k, v] of Object.entries(cases)) named[k] = nameOf(v, `this.next case '${k}'`);
      h.next({ kind: "switch", cases: named, condition: String(last.condition) });
      return;
    }
    if (args.length === 2 && isOptions(last) && "foreach" in last) {
      h.next({ kind: "foreach", to: nameOf(args[0], "this.next"), foreach: String(last.foreach) });
      return;
    }
    if (args.length === 0) throw new TypeError("this.next() needs at least one step, e.g. this.next(this.end)");
    const to = args.map((a) => nameOf(a, "this.next"));
    h.next(to.length === 1 ? { kind: "linear", to: to[0]! } : { kind: "branch", to });
  }

  /**
   * In a join: copies every artifact whose value is the same in all inputs that have it; an
   * artifact whose values differ raises an error naming it (set it yourself or exclude it).
   */
  mergeArtifacts(inputs: ReadonlyArray<object>, options: MergeOptions = {}): void {
    hooksOf(this, "this.mergeArtifacts()").merge(inputs, options);
  }

  /**
   * The foreach splits this task is inside, outermost first: for each, the step that split, this
   * task's index, the number of splits and the element (Metaflow's `foreach_stack()`).
   * @example const [outer, inner] = this.foreachStack(); console.log(outer.value, inner.index);
   */
  foreachStack(): ForeachFrame[] {
    return hooksOf(this, "this.foreachStack()").foreachStack();
  }
}

type FlowSpecKeys = keyof FlowSpec;

/** Names of a flow's artifacts: its non-method properties. */
export type ArtifactNames<F> = {
  [K in keyof F]: K extends FlowSpecKeys ? never : F[K] extends (...args: any[]) => unknown ? never : K;
}[keyof F] &
  string;

/** Names of a flow's steps: its methods. */
export type StepNames<F> = {
  [K in keyof F]: K extends FlowSpecKeys ? never : F[K] extends (...args: any[]) => unknown ? K : never;
}[keyof F] &
  string;

/** One input of a join: the artifacts of one incoming task, read-only. */
export type InputView<F> = { readonly [K in ArtifactNames<F>]: F[K] } & {
  /** The foreach element of the incoming task (after a foreach). */
  readonly input: unknown;
  /** The foreach position of the incoming task (after a foreach). */
  readonly index: number;
};

/**
 * What a join step receives: iterable, indexable by position, with `length` and `map`, and after a
 * static branch addressable by step name (`inputs.a.x`).
 */
export type Inputs<F> = ReadonlyArray<InputView<F>> & {
  readonly [K in Exclude<StepNames<F>, keyof ReadonlyArray<unknown>>]: InputView<F>;
};
