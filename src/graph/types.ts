/** Where a transition goes when a step ends: the discriminated union of a step's `this.next` call. */
export type Transition =
  | { readonly kind: "linear"; readonly to: string }
  | { readonly kind: "branch"; readonly to: readonly string[] }
  | { readonly kind: "foreach"; readonly to: string; readonly foreach: string }
  | {
      readonly kind: "switch";
      readonly cases: Readonly<Record<string, string>>;
      readonly condition: string;
    }
  | { readonly kind: "end" };

/** A node's role in the graph: how its tasks are entered (join) or left (the transition kind). */
export type NodeKind = "linear" | "branch" | "foreach" | "switch" | "join" | "end";

/** One step of a flow, as derived from the flow class's source. */
export interface StepNode {
  readonly name: string;
  /** `join` when the step takes `inputs`; otherwise its transition's kind. */
  readonly kind: NodeKind;
  /** True when the step method declares a parameter (the join's `inputs`). */
  readonly isJoin: boolean;
  /** The `this.next(...)` call at the end of the step; `{kind: "end"}` when there is none. */
  readonly next: Transition;
  /** Step names this step can go to, in order (empty for `end`). */
  readonly out: readonly string[];
  /** Step names that can come to this step, in source order. */
  readonly in: readonly string[];
  /** Doc comment (JSDoc or line comments) right above the step, without comment markers. */
  readonly doc: string;
  /** 1-based line of the step's method name in the flow file. */
  readonly line: number;
  /** 1-based line of the `this.next` call (or of the method when there is none). */
  readonly nextLine: number;
  /** Decorator names written on the method besides `step`, e.g. `["retry", "timeout"]`. */
  readonly decorators: readonly string[];
  readonly isAsync: boolean;
  /** Artifacts the step assigns with a name written in the source (`this.x = ...`), where. */
  readonly artifacts?: readonly { readonly name: string; readonly line: number }[];
}

/** A flow's whole graph. */
export interface FlowGraph {
  readonly className: string;
  /** Path of the flow file as the user named it (relative when they gave a relative path). */
  readonly file: string;
  readonly classLine: number;
  /** Doc comment above the class. */
  readonly doc: string;
  /** Decorator names written on the class (flow decorators, and step decorators for every step). */
  readonly decorators: readonly string[];
  /** Steps in source order. */
  readonly steps: readonly StepNode[];
  /** Problems found while reading the source (e.g. a malformed `this.next` call). */
  readonly sourceProblems: readonly import("../errors.js").GraphProblem[];
}
