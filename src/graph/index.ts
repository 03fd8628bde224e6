// The graph module: derive a flow's graph from its source, check it, and show it.
import { GraphError } from "../errors.js";
import { lintGraph } from "./lint.js";
import type { FlowGraph } from "./types.js";

export { buildGraph, type BuildGraphOptions } from "./parse.js";
export { lintGraph, lintRules, type LintContext, type LintRule } from "./lint.js";
export { formatGraph } from "./show.js";
export type { FlowGraph, StepNode, Transition, NodeKind } from "./types.js";

/** Throws a {@link GraphError} listing every problem when the graph does not pass {@link lintGraph}. */
export function assertValidGraph(graph: FlowGraph): void {
  const problems = lintGraph(graph);
  if (problems.length > 0) throw new GraphError(problems);
}
