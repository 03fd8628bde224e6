/**
 * The UI server over HTTP, as `metaflow ui` and `metaflow service --ui` serve it, on runs made by
 * the real CLI: the JSON API, filters and paging, tag edits, live log streams, card pages, bad
 * input, and the team UI's token.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { postgresAvailability, startPostgres, type TestPostgres } from "./helpers/postgres.js";
import { Project } from "./helpers/project.js";
import { startServer, startUiProcess, type UiProcess } from "./helpers/ui.js";

const FLOW = `import { FlowSpec, Parameter, step, card, current, Markdown } from "metaflow-ts";
export default class UiFlow extends FlowSpec {
  fail = Parameter("fail", { default: false });
  declare note: string;
  declare blob: Buffer;
  @step start() {
    console.log("starting <b>up</b>");
    this.note = "hello";
    this.blob = Buffer.from([1, 2, 3]);
    if (this.fail) throw new Error("asked to fail");
    this.next(this.end);
  }
  @card({ type: "blank" }) @step end() { current.card.append(new Markdown("# hi")); }
}
`;

async function get(url: string, init: RequestInit = {}): Promise<{ status: number; body: any; headers: Headers; text: string }> {
  const res = await fetch(url, { redirect: "manual", ...init });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, headers: res.headers, text };
}

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  get(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });

void describe("metaflow ui", () => {
  const p = new Project();
  let ui: UiProcess;
  const runs: string[] = [];

  before(async () => {
    p.write("ui_flow.ts", FLOW);
    for (const args of [["--tag", "nightly"], [], ["--fail", "true"]]) {
      await p.cli(["run", "ui_flow.ts", ...args]);
      runs.push(await p.latestRun("UiFlow"));
    }
    ui = await startUiProcess(p.dir);
  });
  after(async () => {
    await ui?.stop();
    p.cleanup();
  });

  void it("serves the page shell with a strict policy, and its script", async () => {
    const page = await get(`${ui.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.text, /<script src="\/app.js"><\/script>/);
    assert.match(page.headers.get("content-security-policy")!, /script-src 'self';/);
    const js = await get(`${ui.url}/app.js`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get("content-type")!, /javascript/);
  });

  void it("lists flows and pages and filters runs", async () => {
    const flows = await get(`${ui.url}/api/flows`);
    assert.equal(flows.body.flows[0].name, "UiFlow");
    assert.equal(flows.body.flows[0].runs, 3);
    const all = await get(`${ui.url}/api/flows/UiFlow/runs`);
    assert.equal(all.body.total, 3);
    assert.deepEqual(
      all.body.runs.map((r: { id: string }) => r.id),
      [...runs].reverse(),
    );
    const tagged = await get(`${ui.url}/api/flows/UiFlow/runs?tag=nightly`);
    assert.deepEqual(
      tagged.body.runs.map((r: { id: string }) => r.id),
      [runs[0]],
    );
    const failed = await get(`${ui.url}/api/flows/UiFlow/runs?status=failed`);
    assert.deepEqual(
      failed.body.runs.map((r: { id: string; status: string }) => [r.id, r.status]),
      [[runs[2], "failed"]],
    );
    const page2 = await get(`${ui.url}/api/flows/UiFlow/runs?limit=1&offset=1`);
    assert.equal(page2.body.total, 3);
    assert.deepEqual(
      page2.body.runs.map((r: { id: string }) => r.id),
      [runs[1]],
    );
    const nobody = await get(`${ui.url}/api/flows/UiFlow/runs?user=nobody`);
    assert.equal(nobody.body.total, 0);
  });

  void it("shows a run's graph with step statuses and its tasks", async () => {
    const ok = await get(`${ui.url}/api/runs/UiFlow/${runs[0]}`);
    assert.equal(ok.status, 200);
    assert.deepEqual(
      ok.body.steps.map((s: { name: string; status: string }) => [s.name, s.status]),
      [
        ["start", "completed"],
        ["end", "completed"],
      ],
    );
    assert.equal(ok.body.tasks.length, 2);
    const bad = await get(`${ui.url}/api/runs/UiFlow/${runs[2]}`);
    assert.deepEqual(
      bad.body.steps.map((s: { name: string; status: string }) => [s.name, s.status]),
      [
        ["start", "failed"],
        ["end", "pending"],
      ],
    );
    assert.match(bad.body.exception.message, /asked to fail/);
  });

  void it("shows a task's attempts, artifacts, logs and cards", async () => {
    const base = `${ui.url}/api/tasks/UiFlow/${runs[0]}/start/1`;
    const task = await get(base);
    assert.equal(task.body.status, "completed");
    assert.deepEqual(
      task.body.artifacts.map((a: { name: string }) => a.name),
      ["blob", "fail", "note"],
    );
    const note = await get(`${base}/artifacts/note`);
    assert.equal(note.body.preview, "hello");
    const blob = await fetch(`${base}/artifacts/blob/download`);
    assert.deepEqual([...new Uint8Array(await blob.arrayBuffer())], [1, 2, 3]);
    assert.match(blob.headers.get("content-disposition")!, /attachment; filename="start-1-blob.bin"/);
    const logs = await get(`${base}/logs`);
    assert.deepEqual(
      logs.body.lines.map((l: { line: string }) => l.line),
      ["starting <b>up</b>", "Task finished successfully."].slice(0, logs.body.lines.length),
    );
    const stream = await get(`${base}/logs/stream`);
    assert.match(stream.headers.get("content-type")!, /text\/event-stream/);
    assert.match(stream.text, /data: \{"stream":"stdout".*"line":"starting <b>up<\/b>"/);
    assert.match(stream.text, /event: end/);
    const end = await get(`${ui.url}/api/tasks/UiFlow/${runs[0]}/end/2`);
    assert.deepEqual(end.body.cards, [{ index: 0, type: "blank", attempt: 0, live: false }]);
  });

  void it("serves card pages sandboxed, with an ETag", async () => {
    const url = `${ui.url}/cards/UiFlow/${runs[0]}/end/2/0`;
    const card = await get(url);
    assert.equal(card.status, 200);
    assert.match(card.headers.get("content-security-policy")!, /^sandbox allow-scripts;/);
    assert.match(card.text, /<h1>hi<\/h1>/);
    const again = await get(url, { headers: { "if-none-match": card.headers.get("etag")! } });
    assert.equal(again.status, 304);
    assert.equal((await get(`${ui.url}/cards/UiFlow/${runs[0]}/end/2/7`)).status, 404);
    const bad = await get(`${ui.url}/cards/UiFlow/${runs[0]}/end/2/x`);
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /addressed by its position, a whole number; got "x"/);
  });

  void it("edits tags, refusing system tags, bad tags and cross-origin requests", async () => {
    const url = `${ui.url}/api/runs/UiFlow/${runs[1]}/tags`;
    const added = await post(url, { add: ["reviewed"] });
    assert.equal(added.status, 200);
    assert.deepEqual(added.body.tags, ["reviewed"]);
    const listed = await get(`${ui.url}/api/flows/UiFlow/runs?tag=reviewed`);
    assert.deepEqual(
      listed.body.runs.map((r: { id: string }) => r.id),
      [runs[1]],
    );
    const system = await post(url, { remove: [added.body.systemTags[0]] });
    assert.equal(system.status, 409);
    assert.match(system.body.error.message, /system tag/i);
    const empty = await post(url, { add: [""] });
    assert.equal(empty.status, 400);
    const notList = await post(url, { add: "x" });
    assert.equal(notList.status, 400);
    assert.match(notList.body.error.message, /body.add must be a list of at most 50 tags/);
    const foreign = await post(url, { add: ["x"] }, { origin: "http://evil.example" });
    assert.equal(foreign.status, 403);
    const form = await get(url, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "add=x" });
    assert.equal(form.status, 415);
  });

  void it("answers bad input with a clear error and the right status", async () => {
    const cases: [string, number, RegExp][] = [
      ["/api/flows/UiFlow/runs?status=bogus", 400, /status must be running, completed or failed, got "bogus"/],
      ["/api/flows/UiFlow/runs?limit=abc", 400, /limit must be a whole number from 0 to 500, got "abc"/],
      ["/api/flows/UiFlow/runs?offset=-1", 400, /offset must be a whole number/],
      [`/api/runs/UiFlow/123`, 404, /Run 'UiFlow\/123' does not exist/],
      ["/api/runs/UiFlow/a%2F..", 400, /Malformed pathspec/],
      ["/api/flows/Nope/runs", 404, /Flow 'Nope' does not exist/],
      [`/api/tasks/UiFlow/${runs[0]}/start/1/artifacts/nope`, 404, /has no artifact 'nope'; its artifacts are: blob, fail, note/],
      ["/api/whatever", 404, /No such endpoint/],
      ["/%E0%A4%A", 400, /not valid percent-encoded/],
    ];
    for (const [path, status, message] of cases) {
      const r = await get(`${ui.url}${path}`);
      assert.equal(r.status, status, path);
      assert.match(r.body.error.message, message, path);
    }
    const wrongMethod = await get(`${ui.url}/api/flows`, { method: "DELETE" });
    assert.equal(wrongMethod.status, 405);
  });

  void it("answers only to its own host names (no DNS rebinding)", async () => {
    const port = new URL(ui.url).port;
    const res = await new Promise<number>((resolve, reject) => {
      // fetch() will not send a forged Host header; node:http will.
      void import("node:http").then((http) => {
        http.get({ host: "127.0.0.1", port, path: "/api/flows", headers: { host: "evil.example" } }, (r) => resolve(r.statusCode ?? 0)).on("error", reject);
      });
    });
    assert.equal(res, 421);
  });

  void it("refuses a bad --port, a port in use and a host it cannot listen on", async () => {
    for (const port of ["http", "99999"]) {
      const r = await p.cli(["ui", "--port", port]);
      assert.equal(r.code, 2, port);
      assert.match(r.stderr, new RegExp(`--port must be an integer from 0 to 65535, got "${port}"`));
    }
    const busy = await p.cli(["ui", "--port", new URL(ui.url).port]);
    assert.equal(busy.code, 2);
    assert.match(busy.stderr, /Port \d+ on 127.0.0.1 is in use; pick another with --port/);
    const host = await p.cli(["ui", "--port", "0", "--host", "no-such-host.invalid"]);
    assert.equal(host.code, 2);
    assert.match(host.stderr, /Cannot listen on --host no-such-host.invalid/);
  });
});

const pg = postgresAvailability();

void describe("metaflow service --ui (the team UI)", { skip: "skip" in pg ? pg.skip : false }, () => {
  const p = new Project();
  const token = randomBytes(20).toString("hex");
  let db: TestPostgres;
  let service: UiProcess;

  before(async () => {
    db = await startPostgres((pg as { bin: string }).bin);
    const env = { METAFLOW_SERVICE_AUTH_TOKEN: token, METAFLOW_DATASTORE_SYSROOT_LOCAL: p.root };
    service = await startServer(p.dir, ["service", "--ui", "--port", "0", "--database-url", db.url], env, /listening on (http:\/\/\S+)/);
    p.write("ui_flow.ts", FLOW);
    const r = await p.cli(["run", "ui_flow.ts"], { env: { ...env, METAFLOW_DEFAULT_METADATA: "service", METAFLOW_SERVICE_URL: service.url } });
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await service?.stop();
    await db?.destroy();
    p.cleanup();
  });

  void it("refuses requests without the token", async () => {
    assert.equal((await get(`${service.url}/ui/api/flows`)).status, 401);
    const page = await get(`${service.url}/ui/`);
    assert.equal(page.status, 303);
    assert.equal(page.headers.get("location"), "/ui/login");
    assert.equal((await get(`${service.url}/ui/api/flows`, { headers: { authorization: "Bearer wrong-token-wrong-token" } })).status, 401);
    assert.equal((await get(`${service.url}/ui/app.js`)).status, 401);
  });

  void it("serves the runs from the service's database with the token, by header or after signing in", async () => {
    const withHeader = await get(`${service.url}/ui/api/flows`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(withHeader.status, 200);
    assert.equal(withHeader.body.flows[0].name, "UiFlow");
    const wrong = await get(`${service.url}/ui/login`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "token=nope" });
    assert.equal(wrong.status, 401);
    assert.match(wrong.text, /That token is not valid: it is neither the service&#39;s shared token nor a live personal token/);
    const login = await get(`${service.url}/ui/login`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `token=${token}` });
    assert.equal(login.status, 303);
    const cookie = login.headers.get("set-cookie")!;
    assert.match(cookie, /HttpOnly; SameSite=Strict/);
    assert.ok(!cookie.includes(token), "the cookie is not the token");
    const session = cookie.split(";")[0]!;
    const runs = await get(`${service.url}/ui/api/flows/UiFlow/runs`, { headers: { cookie: session } });
    assert.equal(runs.status, 200);
    assert.equal(runs.body.total, 1);
    const tagged = await post(`${service.url}/ui/api/runs/UiFlow/${runs.body.runs[0].id}/tags`, { add: ["approved"] }, { cookie: session });
    assert.equal(tagged.status, 200);
    assert.deepEqual(tagged.body.tags, ["approved"]);
    // The metadata API itself is unchanged: still the bearer token only.
    assert.equal((await get(`${service.url}/api/v1/flows`, { headers: { cookie: session } })).status, 401);
  });

  void describe("with per-user tokens and no shared token", () => {
    let team: UiProcess;
    const tokens: Record<string, string> = {};
    const tokenCli = async (...args: string[]) => {
      const r = await p.cli(["service", "token", ...args, "--database-url", db.url]);
      assert.equal(r.code, 0, r.stderr);
      return r;
    };
    const login = (token: string) => get(`${team.url}/ui/login`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `token=${encodeURIComponent(token)}` });
    const sessionOf = (res: { headers: Headers }) => res.headers.get("set-cookie")!.split(";")[0]!;

    before(async () => {
      for (const user of ["ann", "carol"]) tokens[user] = (await tokenCli("create", "--user", user)).stdout.trim();
      // No METAFLOW_SERVICE_AUTH_TOKEN: only per-user tokens are accepted, by the API and the UI.
      const env = { METAFLOW_SERVICE_AUTH_TOKEN: "", METAFLOW_DATASTORE_SYSROOT_LOCAL: p.root };
      team = await startServer(p.dir, ["service", "--ui", "--port", "0", "--database-url", db.url], env, /Metaflow UI on (http:\/\/\S+?)\/ui\//);
      assert.match(team.output(), /per-user tokens only/);
    });
    after(async () => {
      await team?.stop();
    });

    void it("refuses requests without a valid token", async () => {
      assert.equal((await get(`${team.url}/ui/api/flows`)).status, 401);
      assert.equal((await get(`${team.url}/ui/`)).headers.get("location"), "/ui/login");
      assert.equal((await get(`${team.url}/ui/api/flows`, { headers: { authorization: `Bearer ${token}` } })).status, 401, "the old shared token is not accepted");
      assert.equal((await get(`${team.url}/ui/api/flows`, { headers: { authorization: "Bearer mft_not-a-real-token" } })).status, 401);
      assert.equal((await login("mft_not-a-real-token")).status, 401);
      assert.equal((await get(`${team.url}/ui/api/flows`, { headers: { cookie: `mf_ui_session=${"0".repeat(64)}` } })).status, 401);
    });

    void it("signs a user in with a personal token: the session is that user's, and tag edits are logged as theirs", async () => {
      const res = await login(tokens.ann!);
      assert.equal(res.status, 303);
      const session = sessionOf(res);
      assert.ok(!session.includes(tokens.ann!), "the cookie is not the token");
      const shell = await get(`${team.url}/ui/`, { headers: { cookie: session } });
      assert.equal(shell.status, 200);
      assert.match(shell.text, /<meta name="mf-user" content="ann">/);
      const runs = await get(`${team.url}/ui/api/flows/UiFlow/runs`, { headers: { cookie: session } });
      assert.equal(runs.status, 200);
      const runId = runs.body.runs[0].id as string;
      const tagged = await post(`${team.url}/ui/api/runs/UiFlow/${runId}/tags`, { add: ["reviewed-by-ann"] }, { cookie: session });
      assert.equal(tagged.status, 200);
      assert.ok(tagged.body.tags.includes("reviewed-by-ann"));
      assert.match(team.output(), new RegExp(`UI: tags of UiFlow/${runId} edited by user ann: \\+\\["reviewed-by-ann"\\] -\\[\\]`));
      // Scripts send the personal token as a bearer token.
      assert.equal((await get(`${team.url}/ui/api/flows`, { headers: { authorization: `Bearer ${tokens.ann}` } })).status, 200);
      // Signing out ends the session.
      const out = await get(`${team.url}/ui/logout`, { method: "POST", headers: { cookie: session } });
      assert.equal(out.status, 303);
      assert.equal((await get(`${team.url}/ui/api/flows`, { headers: { cookie: session } })).status, 401);
    });

    void it("a revoked token cannot sign in, and its open sessions end at once", async () => {
      const session = sessionOf(await login(tokens.carol!));
      assert.equal((await get(`${team.url}/ui/api/flows`, { headers: { cookie: session } })).status, 200);
      const id = /^\s*(\d+)\s+carol/m.exec((await tokenCli("list")).stdout)?.[1];
      assert.ok(id);
      await tokenCli("revoke", id);
      assert.equal((await get(`${team.url}/ui/api/flows`, { headers: { cookie: session } })).status, 401);
      const again = await login(tokens.carol!);
      assert.equal(again.status, 401);
      assert.match(again.text, /That token is not valid/);
      assert.equal((await get(`${team.url}/ui/api/flows`, { headers: { authorization: `Bearer ${tokens.carol}` } })).status, 401);
    });
  });
});
