/** A task's page: attempts, logs (live while it runs), artifacts (preview, download) and cards (live). */
import { useEffect, useState } from "preact/hooks";
import { apiUrl, BASE, fetchJson, type LogLine, type TaskView } from "./api.js";
import { usePolled } from "./hooks.js";
import { Crumbs, elapsed, formatBytes, formatTime, href, Loading, Problem, Status } from "./parts.js";

type Address = { flow: string; runId: string; step: string; taskId: string };

export function TaskPage(a: Address) {
  const { data, error } = usePolled<TaskView>(apiUrl("tasks", a.flow, a.runId, a.step, a.taskId), (d) => d.status === "running" || d.cards.some((c) => c.live), 1000);
  return (
    <main>
      <Crumbs parts={[[a.flow, href("flows", a.flow)], [a.runId, href("runs", a.flow, a.runId)], [`${a.step}/${a.taskId}`, undefined]]} />
      {error && <Problem>{error}</Problem>}
      {!data ? <Loading /> : <TaskBody a={a} view={data} />}
    </main>
  );
}

function TaskBody({ a, view }: { a: Address; view: TaskView }) {
  const latest = view.attempts[view.attempts.length - 1];
  const [attempt, setAttempt] = useState<number | undefined>(undefined);
  const shown = attempt ?? latest?.attempt ?? 0;
  return (
    <>
      <h1>
        {a.step}/{a.taskId} <Status status={view.status} />
      </h1>
      <section>
        <h2>Attempts</h2>
        <table class="grid" data-testid="attempts">
          <thead>
            <tr>
              <th>Attempt</th>
              <th>Status</th>
              <th>Started</th>
              <th>Duration</th>
              <th>Error</th>
            </tr>
          </thead>
          <tbody>
            {view.attempts.map((t) => (
              <tr class={t.attempt === shown ? "selected" : ""} onClick={() => setAttempt(t.attempt)}>
                <td>{t.attempt}</td>
                <td>
                  <Status status={t.status} />
                </td>
                <td>{formatTime(t.startedAt)}</td>
                <td class="num">{elapsed(t.startedAt, t.finishedAt)}</td>
                <td class="bad">{t.error ? `${t.error.name}: ${t.error.message}` : t.clonedFrom ? `cloned from ${t.clonedFrom}` : ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <section>
        <h2>Logs{view.attempts.length > 1 ? ` (attempt ${shown})` : ""}</h2>
        <Logs a={a} attempt={shown} live={view.attempts.find((t) => t.attempt === shown)?.status === "running"} />
      </section>
      <section>
        <h2>Artifacts</h2>
        <Artifacts a={a} view={view} />
      </section>
      <section>
        <h2>Cards</h2>
        {view.cards.length === 0 ? (
          <div class="muted">This task has no cards (add @card to the step).</div>
        ) : (
          view.cards.map((c) => <CardFrame a={a} card={c} key={`${c.attempt}/${c.index}`} />)
        )}
      </section>
    </>
  );
}

/** The logs of one attempt: read once when it has ended, streamed (Server-Sent Events) while it runs. */
function Logs({ a, attempt, live }: { a: Address; attempt: number; live: boolean }) {
  const [lines, setLines] = useState<LogLine[]>([]);
  const [problem, setProblem] = useState<string | undefined>();
  useEffect(() => {
    setLines([]);
    const base = apiUrl("tasks", a.flow, a.runId, a.step, a.taskId, "logs");
    if (!live) {
      fetchJson<{ lines: LogLine[] }>(`${base}?attempt=${attempt}`).then(
        (d) => setLines(d.lines),
        (err: Error) => setProblem(err.message),
      );
      return;
    }
    const source = new EventSource(`${base}/stream?attempt=${attempt}`);
    const batch: LogLine[] = [];
    source.onmessage = (e: MessageEvent<string>) => {
      batch.push(JSON.parse(e.data) as LogLine);
      setLines([...batch]);
    };
    source.addEventListener("end", () => source.close());
    return () => source.close();
  }, [a.flow, a.runId, a.step, a.taskId, attempt, live]);
  if (problem) return <Problem>{problem}</Problem>;
  return (
    <pre class="logs" data-testid="logs">
      {lines.length === 0 ? <span class="muted">{live ? "waiting for output…" : "no output"}</span> : lines.map((l) => <div class={`log-${l.stream}`}>{l.line}</div>)}
    </pre>
  );
}

function Artifacts({ a, view }: { a: Address; view: TaskView }) {
  const [open, setOpen] = useState<Record<string, string>>({});
  if (!view.artifacts) return <div class="muted">{view.status === "running" ? "Artifacts are stored when the task succeeds." : "The task failed and stored no artifacts."}</div>;
  const preview = async (name: string) => {
    try {
      const p = await fetchJson<{ preview?: string }>(apiUrl("tasks", a.flow, a.runId, a.step, a.taskId, "artifacts", name));
      setOpen((o) => ({ ...o, [name]: p.preview ?? "(too large to preview; download it)" }));
    } catch (err) {
      setOpen((o) => ({ ...o, [name]: `cannot preview: ${(err as Error).message}` }));
    }
  };
  return (
    <table class="grid" data-testid="artifacts">
      <thead>
        <tr>
          <th>Name</th>
          <th>Type</th>
          <th>Size</th>
          <th>Value</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {view.artifacts.map((x) => (
          <tr data-artifact={x.name}>
            <td class="mono">{x.name}</td>
            <td>{x.type}</td>
            <td class="num">{formatBytes(x.size)}</td>
            <td>{open[x.name] !== undefined ? <pre class="preview">{open[x.name]}</pre> : <button onClick={() => void preview(x.name)}>preview</button>}</td>
            <td>
              <a href={apiUrl("tasks", a.flow, a.runId, a.step, a.taskId, "artifacts", x.name, "download")} download>
                download
              </a>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** One card in a sandboxed frame; while the card is live its page is checked every second and the frame reloads when it changed. */
function CardFrame({ a, card }: { a: Address; card: TaskView["cards"][number] }) {
  const url = `${BASE}cards/${[a.flow, a.runId, a.step, a.taskId, String(card.index)].map(encodeURIComponent).join("/")}?attempt=${card.attempt}`;
  const [version, setVersion] = useState("");
  useEffect(() => {
    if (!card.live) return;
    let etag = "";
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const check = async () => {
      try {
        const res = await fetch(url, { credentials: "same-origin", headers: etag ? { "if-none-match": etag } : {} });
        if (res.status === 200) {
          etag = res.headers.get("etag") ?? "";
          if (!stopped) setVersion(etag);
        }
        if (res.headers.get("x-metaflow-card-live") === "false") return;
      } catch {
        // Try again on the next tick.
      }
      if (!stopped) timer = setTimeout(() => void check(), 1000);
    };
    void check();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [url, card.live]);
  const title = card.id ?? card.type;
  return (
    <div class="card" data-card={title}>
      <div class="card-head">
        <strong>{title}</strong> <span class="muted">({card.type}{card.live ? ", live" : ""})</span>{" "}
        <a href={url} target="_blank" rel="noopener">
          open
        </a>
      </div>
      <iframe src={`${url}&v=${encodeURIComponent(version)}`} sandbox="allow-scripts" title={`card ${title}`} />
    </div>
  );
}
