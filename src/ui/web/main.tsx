/** The web UI's entry point: a hash router over the flows, runs, run and task pages. */
import { render } from "preact";
import { BASE, MODE, USER } from "./api.js";
import { useHashRoute } from "./hooks.js";
import { Problem } from "./parts.js";
import { RunPage } from "./run.js";
import { FlowsPage, RunsPage } from "./runs.js";
import { TaskPage } from "./task.js";
import "./styles.css";

function Route({ route }: { route: string }) {
  const [path, qs] = route.split("?", 2) as [string, string | undefined];
  let parts: string[];
  try {
    parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  } catch {
    return <Problem>This address is not valid.</Problem>;
  }
  const query = new URLSearchParams(qs ?? "");
  const [kind, a, b, c, d] = parts;
  if (parts.length === 0) return <FlowsPage />;
  if (kind === "flows" && parts.length === 2) return <RunsPage key={a} flow={a!} query={query} />;
  if (kind === "runs" && parts.length === 3) return <RunPage key={`${a}/${b}`} flow={a!} runId={b!} />;
  if (kind === "tasks" && parts.length === 5) return <TaskPage key={parts.join("/")} flow={a!} runId={b!} step={c!} taskId={d!} />;
  return (
    <Problem>
      No such page. <a href="#/">See the flows.</a>
    </Problem>
  );
}

function App() {
  const route = useHashRoute();
  return (
    <>
      <header class="top">
        <a href="#/" class="brand">
          Metaflow
        </a>
        <span class="muted">{MODE === "team" ? "team UI" : "local datastore"}</span>
        {MODE === "team" && (
          <form class="signout" method="post" action={`${BASE}logout`}>
            <span class="muted" data-testid="signed-in">{USER ? `signed in as ${USER}` : "signed in with the shared token"}</span>{" "}
            <button type="submit">Sign out</button>
          </form>
        )}
      </header>
      <Route route={route} />
    </>
  );
}

render(<App />, document.getElementById("app")!);
