/**
 * What the compiler (and a join resolving its parents) needs to know about a flow's shape beyond
 * the graph itself: which join closes each split, how many foreach splits enclose each step, and
 * which steps repeat themselves. Computed once from a graph that passed the linter.
 */
import { assertValidGraph, type FlowGraph, type StepNode } from "../../graph/index.js";

/** The shape of a flow, derived from its graph. */
export interface FlowStructure {
  readonly graph: FlowGraph;
  readonly steps: ReadonlyMap<string, StepNode>;
  /** For each split step (a branch or a foreach), the join step that closes it. */
  readonly joinOf: ReadonlyMap<string, string>;
  /** For each step, how many foreach splits enclose it: the number of indices in its task ids. */
  readonly foreachDepth: ReadonlyMap<string, number>;
  /** Steps whose switch names the step itself, so it runs again until another case is picked. */
  readonly repeating: ReadonlySet<string>;
}

/** Analyses a graph; throws the linter's GraphError when the graph is not valid. */
export function analyseFlow(graph: FlowGraph): FlowStructure {
  assertValidGraph(graph);
  const steps = new Map(graph.steps.map((s) => [s.name, s]));
  const joinOf = new Map<string, string>();
  const foreachDepth = new Map<string, number>();
  const repeating = new Set<string>();
  const node = (name: string): StepNode => {
    const n = steps.get(name);
    if (!n) throw new Error(`internal: no step '${name}'`);
    return n;
  };

  // The linter guarantees every path into a step carries the same open splits, so the first
  // visit of each step tells all.
  const visit = (name: string, open: readonly StepNode[]): void => {
    if (foreachDepth.has(name)) return;
    const step = node(name);
    let stack = open;
    if (step.isJoin) {
      const split = stack.at(-1);
      if (!split) throw new Error(`internal: join '${name}' outside a split`);
      joinOf.set(split.name, name);
      stack = stack.slice(0, -1);
    }
    foreachDepth.set(name, stack.filter((s) => s.next.kind === "foreach").length);
    const next = step.next;
    switch (next.kind) {
      case "linear":
        visit(next.to, stack);
        return;
      case "branch":
        for (const to of next.to) visit(to, [...stack, step]);
        return;
      case "foreach":
        visit(next.to, [...stack, step]);
        return;
      case "switch":
        for (const to of Object.values(next.cases)) {
          if (to === name) repeating.add(name);
          else visit(to, stack);
        }
        return;
      case "end":
        return;
    }
  };
  visit("start", []);
  return { graph, steps, joinOf, foreachDepth, repeating };
}

/** The step named `name`; throws for a name the flow does not have. */
export function stepOf(structure: FlowStructure, name: string): StepNode {
  const n = structure.steps.get(name);
  if (!n) throw new Error(`The flow ${structure.graph.className} has no step '${name}'`);
  return n;
}
