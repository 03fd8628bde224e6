/** The flows page and a flow's runs page (filter by user, tag, status; paged). */
import { useState } from "preact/hooks";
import { apiUrl, type FlowsAnswer, type RunPage } from "./api.js";
import { usePolled } from "./hooks.js";
import { Crumbs, elapsed, formatTime, href, Loading, Problem, Status, Tag } from "./parts.js";

const PAGE = 50;

export function FlowsPage() {
  const { data, error } = usePolled<FlowsAnswer>(apiUrl("flows"), () => true, 5000);
  return (
    <main>
      <Crumbs parts={[]} />
      <h1>Flows</h1>
      {error && <Problem>{error}</Problem>}
      {!data ? (
        <Loading />
      ) : data.flows.length === 0 ? (
        <p class="muted">No runs are stored yet. Run a flow: npx metaflow run examples/helloworld.ts</p>
      ) : (
        <table class="grid" data-testid="flows">
          <thead>
            <tr>
              <th>Flow</th>
              <th>Runs</th>
              <th>Latest run</th>
              <th>Status</th>
              <th>Started</th>
              <th>User</th>
            </tr>
          </thead>
          <tbody>
            {data.flows.map((f) => (
              <tr key={f.name}>
                <td>
                  <a href={href("flows", f.name)}>{f.name}</a>
                </td>
                <td class="num">{f.runs.toLocaleString("en-US")}</td>
                <td>{f.latest && <a href={href("runs", f.name, f.latest.id)}>{f.latest.id}</a>}</td>
                <td>{f.latest && <Status status={f.latest.status} />}</td>
                <td>{formatTime(f.latest?.createdAt)}</td>
                <td>{f.latest?.user}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}

/** Filters of the runs page, kept in the route's query (`#/flows/F?tag=x&status=failed&page=2`). */
interface Filters {
  user: string;
  tag: string;
  status: string;
  page: number;
}

function readFilters(query: URLSearchParams): Filters {
  return { user: query.get("user") ?? "", tag: query.get("tag") ?? "", status: query.get("status") ?? "", page: Math.max(1, Number(query.get("page")) || 1) };
}

function go(flow: string, f: Filters): void {
  const q = new URLSearchParams();
  if (f.user) q.set("user", f.user);
  if (f.tag) q.set("tag", f.tag);
  if (f.status) q.set("status", f.status);
  if (f.page > 1) q.set("page", String(f.page));
  const qs = q.toString();
  location.hash = `${href("flows", flow).slice(1)}${qs ? `?${qs}` : ""}`;
}

export function RunsPage({ flow, query }: { flow: string; query: URLSearchParams }) {
  const filters = readFilters(query);
  const params = new URLSearchParams({ offset: String((filters.page - 1) * PAGE), limit: String(PAGE) });
  if (filters.user) params.set("user", filters.user);
  if (filters.tag) params.set("tag", filters.tag);
  if (filters.status) params.set("status", filters.status);
  const { data, error } = usePolled<RunPage>(`${apiUrl("flows", flow, "runs")}?${params}`, (d) => d.runs.some((r) => r.status === "running"), 2000);
  const pages = data ? Math.max(1, Math.ceil(data.total / PAGE)) : 1;
  return (
    <main>
      <Crumbs parts={[[flow, undefined]]} />
      <h1>{flow}</h1>
      <FilterBar flow={flow} filters={filters} users={data?.users ?? []} />
      {error && <Problem>{error}</Problem>}
      {!data ? (
        <Loading />
      ) : (
        <>
          <div class="muted" data-testid="run-count">
            {data.total === 0 ? "No runs match." : `Runs ${((filters.page - 1) * PAGE + 1).toLocaleString("en-US")}–${Math.min(filters.page * PAGE, data.total).toLocaleString("en-US")} of ${data.total.toLocaleString("en-US")}`}
          </div>
          <RunsTable runs={data.runs} />
          {pages > 1 && (
            <div class="pager">
              <button disabled={filters.page <= 1} onClick={() => go(flow, { ...filters, page: filters.page - 1 })}>
                ← Newer
              </button>
              <span>
                page {filters.page} of {pages}
              </span>
              <button disabled={filters.page >= pages} onClick={() => go(flow, { ...filters, page: filters.page + 1 })}>
                Older →
              </button>
            </div>
          )}
        </>
      )}
    </main>
  );
}

function FilterBar({ flow, filters, users }: { flow: string; filters: Filters; users: string[] }) {
  const [tagInput, setTagInput] = useState(filters.tag);
  const pick = (field: "user" | "status") => (e: Event) => go(flow, { ...filters, [field]: (e.target as HTMLSelectElement).value, page: 1 });
  return (
    <form
      class="filters"
      onSubmit={(e) => {
        e.preventDefault();
        go(flow, { ...filters, tag: tagInput.trim(), page: 1 });
      }}
    >
      <label>
        User{" "}
        <select value={filters.user} onChange={pick("user")} data-testid="filter-user">
          <option value="">anyone</option>
          {[...new Set([...users, ...(filters.user ? [filters.user] : [])])].map((u) => (
            <option value={u}>{u}</option>
          ))}
        </select>
      </label>
      <label>
        Tag <input value={tagInput} onInput={(e) => setTagInput((e.target as HTMLInputElement).value)} placeholder="any tag" data-testid="filter-tag" />
      </label>
      <label>
        Status{" "}
        <select value={filters.status} onChange={pick("status")} data-testid="filter-status">
          <option value="">any</option>
          <option value="running">running</option>
          <option value="completed">completed</option>
          <option value="failed">failed</option>
        </select>
      </label>
      <button type="submit">Filter</button>
      {(filters.user || filters.tag || filters.status) && (
        <button type="button" onClick={() => (setTagInput(""), go(flow, { user: "", tag: "", status: "", page: 1 }))}>
          Clear
        </button>
      )}
    </form>
  );
}

function RunsTable({ runs }: { runs: RunPage["runs"] }) {
  return (
    <table class="grid" data-testid="runs">
      <thead>
        <tr>
          <th>Run</th>
          <th>Status</th>
          <th>Started</th>
          <th>Duration</th>
          <th>User</th>
          <th>Tags</th>
        </tr>
      </thead>
      <tbody>
        {runs.map((r) => (
          <tr key={r.id}>
            <td>
              <a href={href("runs", r.flow, r.id)}>{r.id}</a>
            </td>
            <td>
              <Status status={r.status} />
            </td>
            <td>{formatTime(r.createdAt)}</td>
            <td class="num">{elapsed(r.createdAt, r.finishedAt)}</td>
            <td>{r.user}</td>
            <td>
              <div class="tags">
                {r.tags.map((t) => (
                  <Tag tag={t} />
                ))}
              </div>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
