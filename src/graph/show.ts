// Renders a flow graph as plain text for `metaflow show`.
import type { FlowGraph, StepNode } from "./types.js";

const INDENT = "    ";

/**
 * Formats the flow as `metaflow show` prints it: the class name and doc, then each step with its
 * kind, doc and where it goes next.
 * @example
 * console.log(formatGraph(buildGraph(file, source)));
 */
export function formatGraph(graph: FlowGraph): string {
  const decorators = graph.decorators.length > 0 ? [`${INDENT}Decorators: ${graph.decorators.map((d) => `@${d}`).join(", ")}`] : [];
  const header = [graph.className, ...indent(graph.doc), ...decorators].join("\n");
  return [header, ...graph.steps.map(formatStep)].join("\n\n") + "\n";
}

function formatStep(step: StepNode): string {
  const labels = stepLabels(step);
  const title = `Step ${step.name}${labels.length ? ` (${labels.join(", ")})` : ""}`;
  return [title, ...indent(step.doc), `${INDENT}=> ${describeTransition(step)}`].join("\n");
}

/** The parenthesised notes after a step's name: `join`, `foreach over items`, `switch on level`. */
function stepLabels(step: StepNode): string[] {
  const labels: string[] = [];
  if (step.isJoin) labels.push("join");
  const next = step.next;
  if (next.kind === "foreach") labels.push(`foreach over ${next.foreach}`);
  else if (next.kind === "branch") labels.push("split");
  else if (next.kind === "switch") labels.push(`switch on ${next.condition}`);
  for (const d of step.decorators) labels.push(`@${d}`);
  return labels;
}

function describeTransition(step: StepNode): string {
  const next = step.next;
  switch (next.kind) {
    case "end":
      return step.name === "end" ? "end of flow" : "(no next step)";
    case "switch":
      return Object.entries(next.cases)
        .map(([value, target]) => `${target} (${next.condition} = ${JSON.stringify(value)})`)
        .join(" | ");
    default:
      return step.out.join(", ");
  }
}

function indent(text: string): string[] {
  if (!text) return [];
  return text.split("\n").map((line) => (line ? INDENT + line : ""));
}
