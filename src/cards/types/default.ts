/** The `default` card: the task's facts, the run's parameters, the task's artifacts and the flow's graph with this step marked. */
import { Table } from "../components/table.js";
import { KeyValue, Section } from "../components/layout.js";
import { GraphDiagram } from "../graph-svg.js";
import { describeType, PREVIEW_LIMIT, previewValue } from "../preview.js";
import { defineCardType, type CardData } from "../card-type.js";
import { Markdown } from "../components/text.js";

function formatBytes(n: number | undefined): string {
  if (n === undefined) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function taskFacts(data: CardData): KeyValue {
  const t = data.task;
  const entries: [string, unknown][] = [
    ["Pathspec", `${t.flow}/${t.runId}/${t.step}/${t.taskId}`],
    ["Status", t.status],
    ["Attempt", t.attempt],
  ];
  if (t.user) entries.push(["User", t.user]);
  if (t.startedAt) entries.push(["Started", t.startedAt.toISOString()]);
  if (t.finishedAt) entries.push(["Finished", t.finishedAt.toISOString()]);
  if (t.startedAt && t.finishedAt) entries.push(["Duration", `${((t.finishedAt.getTime() - t.startedAt.getTime()) / 1000).toFixed(2)} s`]);
  return new KeyValue(entries);
}

/** `@card()` or `@card({ type: "default" })`. */
export const defaultCard = defineCardType({
  type: "default",
  help: "task facts, parameters, artifacts with type and a preview, and the flow's graph with this step marked",
  render(data, components) {
    const parts: unknown[] = [new Section("Task", [taskFacts(data)])];
    const params = Object.entries(data.parameters ?? {});
    if (params.length) {
      parts.push(new Section("Parameters", [new Table(params.map(([k, v]) => [k, previewValue(v, { maxChars: 300 })]), { headers: ["name", "value"] })]));
    }
    const paramNames = new Set(params.map(([k]) => k));
    const artifacts = (data.artifacts ?? []).filter((a) => !paramNames.has(a.name) && !a.name.startsWith("_"));
    if (data.final) {
      const rows = artifacts.map((a) => [
        a.name,
        a.type || describeType(a.value),
        formatBytes(a.size),
        a.size !== undefined && a.size > PREVIEW_LIMIT ? "(too large to preview)" : "value" in a ? previewValue(a.value, { maxChars: 400 }) : "",
      ]);
      parts.push(new Section("Artifacts", rows.length ? [new Table(rows, { headers: ["name", "type", "size", "value"] })] : ["This task stored no artifacts."]));
    }
    if (data.graph?.length) parts.push(new Section("Flow", [new GraphDiagram(data.graph, data.task.step)]));
    if (components.length) parts.push(new Section("From the step", components));
    else if (!data.final) parts.push(new Markdown("_The task is running; artifacts are listed when it ends._"));
    return parts;
  },
});
