/**
 * The UI's request handler in-process over real HTTP, for what needs no runs: origin checks,
 * sign-out, a proxy's Basic auth, and tag-edit bodies refused before any run is read.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import type { UiAuthenticate } from "./auth.js";
import { createUiHandler, type UiHandlerOptions } from "./server.js";

interface Served {
  readonly url: string;
  readonly logged: string[];
  close(): Promise<void>;
}

async function serve(options: UiHandlerOptions): Promise<Served> {
  const logged: string[] = [];
  const handler = createUiHandler({ ...options, log: (line) => logged.push(line) });
  const server = http.createServer((req, res) => void handler.handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    logged,
    async close() {
      handler.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Sends a request with exactly these headers (fetch will not send a forged Origin or Host reliably). */
function request(url: string, method: string, headers: Record<string, string>, body?: string): Promise<{ status: number; text: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const json = { "content-type": "application/json" };
const authenticate: UiAuthenticate = async (authorization) => (authorization === "Bearer ann-token" ? { user: "ann" } : undefined);

void describe("UI handler", () => {
  let root: string;
  let local: Served;
  let team: Served;

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "mf-ui-"));
    local = await serve({ client: { datastoreRoot: root }, basePath: "/" });
    team = await serve({ client: { datastoreRoot: root }, basePath: "/ui/", authenticate });
  });
  after(async () => {
    await local.close();
    await team.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  void it("answers a malformed Origin with 403 naming it, not a 500", async () => {
    for (const origin of ["http://[", "::not a url::"]) {
      const r = await request(`${local.url}/api/runs/F/1/tags`, "POST", { ...json, origin }, JSON.stringify({ add: ["x"] }));
      assert.equal(r.status, 403, origin);
      const message = (JSON.parse(r.text) as { error: { message: string } }).error.message;
      assert.ok(message.includes(`Origin ${JSON.stringify(origin)} is not this UI's host`), message);
      assert.doesNotMatch(r.text, /at \w+ \(/, "no stack trace");
    }
    assert.deepEqual(local.logged, [], "a refused origin is not a server error");
  });

  void it("refuses an edit from another origin and names both hosts", async () => {
    const r = await request(`${local.url}/api/runs/F/1/tags`, "POST", { ...json, origin: "http://evil.example" }, JSON.stringify({ add: ["x"] }));
    assert.equal(r.status, 403);
    assert.match(r.text, /Origin \\"http:\/\/evil.example\\" is not this UI's host \\"127.0.0.1:\d+\\"/);
  });

  void it("refuses a tag edit with unknown keys or nothing to change, before reading the run", async () => {
    const cases: [unknown, RegExp][] = [
      [{ tags: ["x"] }, /takes only "add" and "remove" \(lists of tags\); unknown key: "tags"/],
      [{ add: ["x"], tag: "y", labels: [] }, /unknown keys: "tag", "labels"/],
      [{}, /needs a tag in "add" or "remove"; both lists are empty/],
      [{ add: [], remove: [] }, /both lists are empty/],
    ];
    for (const [body, message] of cases) {
      // The run does not exist: a 400 shows the body was judged first.
      const r = await request(`${local.url}/api/runs/F/1/tags`, "POST", json, JSON.stringify(body));
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match((JSON.parse(r.text) as { error: { message: string } }).error.message, message);
    }
  });

  void it("signs out with POST only", async () => {
    const get = await request(`${team.url}/ui/logout`, "GET", {});
    assert.equal(get.status, 405);
    assert.match(get.text, /Sign out with POST/);
    const login = await request(`${team.url}/ui/login`, "POST", { "content-type": "application/x-www-form-urlencoded" }, "token=ann-token");
    assert.equal(login.status, 303);
    const cookie = login.headers["set-cookie"]![0]!.split(";")[0]!;
    assert.equal((await request(`${team.url}/ui/`, "GET", { cookie })).status, 200);
    const out = await request(`${team.url}/ui/logout`, "POST", { cookie });
    assert.equal(out.status, 303);
    assert.equal(out.headers.location, "/ui/login");
    assert.equal((await request(`${team.url}/ui/`, "GET", { cookie })).status, 303, "signed out: the page goes to the login form");
  });

  void it("keeps a session signed in behind a proxy that adds Basic auth", async () => {
    const login = await request(`${team.url}/ui/login`, "POST", { "content-type": "application/x-www-form-urlencoded" }, "token=ann-token");
    const cookie = login.headers["set-cookie"]![0]!.split(";")[0]!;
    const page = await request(`${team.url}/ui/`, "GET", { cookie, authorization: "Basic cHJveHk6c2VjcmV0" });
    assert.equal(page.status, 200);
    assert.match(page.text, /<meta name="mf-user" content="ann">/);
  });
});
