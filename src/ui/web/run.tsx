/** A run's page: status, tags (editable), parameters, the graph with live step statuses, the task timeline. */
import { useState } from "preact/hooks";
import { layoutGraph } from "../../graph/layout.js";
import {
  apiUrl,
  fetchJson,
  type RunSummary,
  type RunView,
  type StepView,
  type TaskSummary,
} from "./api.js";
import { usePolled } from "./hooks.js";
import { Crumbs, elapsed, formatTime, href, Loading, Problem, Status, Tag } from "./parts.js";

export function RunPage({ flow, runId }: { flow: string; runId: string }) {
  const { data, error, reload } = usePolled<RunView>(
    apiUrl("runs", flow, runId),
    (d) => d.run.status === "running",
    1000,
  );
  return (
    <main>
      <Crumbs
        parts={[
          [flow, href("flows", flow)],
          [runId, undefined],
        ]}
      />
      {error && <Problem>{error}</Problem>}
      {!data ? <Loading /> : <RunBody view={data} onTags={reload} />}
    </main>
  );
}

function RunBody({ view, onTags }: { view: RunView; onTags: () => void }) {
  const r = view.run;
  const params = Object.entries(view.parameters);
  return (
    <>
      <h1>
        {r.flow} / {r.id} <Status status={r.status} />
      </h1>
      <RunFacts view={view} onTags={onTags} />
      {params.length > 0 && (
        <section>
          <h2>Parameters</h2>
          <table class="grid" data-testid="parameters">
            <tbody>
              {params.map(([k, v]) => (
                <tr>
                  <th>{k}</th>
                  <td class="mono">{typeof v === "string" ? v : JSON.stringify(v)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
      <section>
        <h2>Graph</h2>
        {view.graphProblem ? (
          <Problem>{view.graphProblem}</Problem>
        ) : (
          <Graph run={r} steps={view.steps} tasks={view.tasks} />
        )}
      </section>
      <section>
        <h2>Timeline</h2>
        <Timeline run={r} tasks={view.tasks} />
      </section>
    </>
  );
}

function RunFacts({ view, onTags }: { view: RunView; onTags: () => void }) {
  const r = view.run;
  return (
    <table class="facts">
      <tbody>
        <tr>
          <th>User</th>
          <td>{r.user}</td>
        </tr>
        <tr>
          <th>Started</th>
          <td>{formatTime(r.createdAt)}</td>
        </tr>
        <tr>
          <th>Duration</th>
          <td>{elapsed(r.createdAt, r.finishedAt)}</td>
        </tr>
        <tr>
          <th>Flow file</th>
          <td>{view.flowFile}</td>
        </tr>
        {view.exception && (
          <tr>
            <th>Failed</th>
            <td class="bad">
              {r.failedStep ? `in step ${r.failedStep}: ` : ""}
              {view.exception.name}: {view.exception.message}
            </td>
          </tr>
        )}
        <tr>
          <th>Tags</th>
          <td>
            <Tags run={r} onChange={onTags} />
          </td>
        </tr>
      </tbody>
    </table>
  );
}

function Tags({ run, onChange }: { run: RunSummary; onChange: () => void }) {
  const [text, setText] = useState("");
  const [problem, setProblem] = useState<string | undefined>();
  const edit = async (change: { add?: string[]; remove?: string[] }) => {
    try {
      await fetchJson(apiUrl("runs", run.flow, run.id, "tags"), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(change),
      });
      setProblem(undefined);
      setText("");
      onChange();
    } catch (err) {
      setProblem((err as Error).message);
    }
  };
  return (
    <div class="tags" data-testid="run-tags">
      {run.tags.map((t) => (
        <span class="tag">
          {t}
          <button
            class="tag-remove"
            title={`remove ${t}`}
            onClick={() => void edit({ remove: [t] })}
          >
            ×
          </button>
        </span>
      ))}
      {run.systemTags.map((t) => (
        <Tag tag={t} system />
      ))}
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          if (text.trim()) void edit({ add: [text.trim()] });
        }}
      >
        <input
          value={text}
          onInput={(e) => setText((e.target as HTMLInputElement).value)}
          placeholder="add a tag"
          aria-label="add a tag"
        />
      </form>
      {problem && <Problem>{problem}</Problem>}
    </div>
  );
}

function Graph({
  run,
  steps,
  tasks,
}: {
  run: RunSummary;
  steps: StepView[];
  tasks: TaskSummary[];
}) {
  const layout = layoutGraph(steps, { nodeWidth: 170, nodeHeight: 44 });
  const byName = new Map(steps.map((s) => [s.name, s]));
  const firstTask = new Map<string, string>();
  for (const t of tasks) if (!firstTask.has(t.step)) firstTask.set(t.step, t.id);
  return (
    <div class="graph">
      <svg
        width={layout.width}
        height={layout.height}
        viewBox={`0 0 ${layout.width} ${layout.height}`}
        data-testid="graph"
      >
        <defs>
          <marker
            id="arrow"
            viewBox="0 0 10 10"
            refX="9"
            refY="5"
            markerWidth="7"
            markerHeight="7"
            orient="auto-start-reverse"
          >
            <path d="M0,0 L10,5 L0,10 z" class="arrow" />
          </marker>
        </defs>
        {layout.edges.map((e) => (
          <path class={e.back ? "edge back" : "edge"} d={e.path} marker-end="url(#arrow)" />
        ))}
        {layout.nodes.map((n) => {
          const s = byName.get(n.name)!;
          const task = firstTask.get(n.name);
          const count = s.counts.total > 1 ? `${s.counts.completed}/${s.counts.total}` : "";
          const box = (
            <g class={`node node-${s.status}`} data-step={n.name} data-status={s.status}>
              <title>{`${n.name}: ${s.status}${s.doc ? `\n${s.doc}` : ""}`}</title>
              <rect x={n.x} y={n.y} width={n.width} height={n.height} rx={7} />
              <text x={n.x + 10} y={n.y + 18} class="node-name">
                {n.name.length > 18 ? `${n.name.slice(0, 17)}…` : n.name}
              </text>
              <text x={n.x + 10} y={n.y + 34} class="node-status">
                {s.status}
                {count && ` · ${count}`}
                {s.counts.failed ? ` · ${s.counts.failed} failed` : ""}
              </text>
            </g>
          );
          return task ? (
            <a
              href={
                s.counts.total === 1
                  ? href("tasks", run.flow, run.id, n.name, task)
                  : `#step-${n.name}`
              }
            >
              {box}
            </a>
          ) : (
            box
          );
        })}
      </svg>
    </div>
  );
}

const MAX_ROWS = 400;

function Timeline({ run, tasks }: { run: RunSummary; tasks: TaskSummary[] }) {
  if (tasks.length === 0) return <div class="muted">No task has started yet.</div>;
  const start = run.createdAt;
  const end = Math.max(
    run.finishedAt ?? Date.now(),
    ...tasks.map((t) => t.finishedAt ?? Date.now()),
  );
  const span = Math.max(1, end - start);
  const shown = tasks.slice(0, MAX_ROWS);
  return (
    <div class="timeline" data-testid="timeline">
      {shown.map((t) => {
        const left = ((t.startedAt - start) / span) * 100;
        const width = Math.max(0.3, (((t.finishedAt ?? Date.now()) - t.startedAt) / span) * 100);
        return (
          <div class="tl-row" id={`step-${t.step}`} key={`${t.step}/${t.id}`}>
            <a class="tl-label" href={href("tasks", run.flow, run.id, t.step, t.id)}>
              {t.step}/{t.id}
              {t.index !== undefined ? ` [${t.index}]` : ""}
            </a>
            <div class="tl-track">
              <div
                class={`tl-bar bar-${t.status}`}
                style={{ left: `${left}%`, width: `${width}%` }}
                title={`${t.step}/${t.id}: ${t.status}, ${elapsed(t.startedAt, t.finishedAt)}${t.attempts > 1 ? `, ${t.attempts} attempts` : ""}`}
              />
            </div>
            <span class="tl-time">{elapsed(t.startedAt, t.finishedAt)}</span>
          </div>
        );
      })}
      {tasks.length > MAX_ROWS && (
        <div class="muted">{tasks.length - MAX_ROWS} more tasks not shown</div>
      )}
    </div>
  );
}
