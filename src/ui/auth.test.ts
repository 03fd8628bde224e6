/**
 * The team UI's sessions without PostgreSQL: the `Authenticator` behind a small real HTTP server,
 * with a fake `authenticate` (a map of live tokens) and the injectable clock.
 */
import assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { Authenticator, type SessionOptions, type UiAuthenticate } from "./auth.js";
import { sendJson } from "./http.js";

/** Live tokens and their users; a token deleted here is revoked. */
class FakeTokens {
  readonly live = new Map<string, string>([
    ["ann-token", "ann"],
    ["bob-token", "bob"],
    ["carol-token", "carol"],
  ]);
  readonly authenticate: UiAuthenticate = async (authorization) => {
    const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? "")?.[1];
    const user = token === undefined ? undefined : this.live.get(token);
    return user === undefined ? undefined : { user };
  };
}

interface Served {
  readonly url: string;
  close(): Promise<void>;
}

/** Serves `POST /login` through the authenticator and answers every other request with its caller. */
async function serve(auth: Authenticator): Promise<Served> {
  const server = http.createServer((req, res) => {
    void (async () => {
      if (req.url === "/login" && req.method === "POST") return auth.login(req, res);
      const caller = await auth.caller(req);
      sendJson(res, caller ? 200 : 401, { user: caller?.user ?? null });
    })().catch((err: unknown) => sendJson(res, 500, { error: String(err) }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

void describe("Authenticator (sessions of the team UI)", () => {
  const tokens = new FakeTokens();
  let now = 0;
  const options: SessionOptions = { idleMs: 1000, maxSessions: 2, clock: () => now };
  let served: Served;

  before(async () => {
    served = await serve(new Authenticator(tokens.authenticate, "/", options));
  });
  after(() => served.close());

  /** Signs in with `token`; the session cookie (`name=value`). */
  async function login(token: string): Promise<string> {
    const res = await fetch(`${served.url}/login`, { method: "POST", redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `token=${token}` });
    assert.equal(res.status, 303, `signing in with ${token}`);
    return res.headers.get("set-cookie")!.split(";")[0]!;
  }

  /** Who the UI takes a request with these headers to come from; null when nobody (401). */
  async function who(headers: Record<string, string>): Promise<string | null> {
    const res = await fetch(`${served.url}/api`, { headers });
    const body = (await res.json()) as { user: string | null };
    assert.equal(res.status, body.user === null ? 401 : 200);
    return body.user;
  }

  void it("refuses a token the service does not accept", async () => {
    const res = await fetch(`${served.url}/login`, { method: "POST", redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "token=nope" });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("set-cookie"), null);
  });

  void it("ends a session left idle longer than idleMs, and keeps one in use", async () => {
    now = 0;
    const cookie = await login("ann-token");
    now = 1000;
    assert.equal(await who({ cookie }), "ann", "used exactly idleMs later: still signed in");
    now = 2001;
    assert.equal(await who({ cookie }), null, "idle for idleMs + 1 since its last use");
    now = 1500;
    assert.equal(await who({ cookie }), null, "an expired session is gone, not just hidden");
  });

  void it("evicts the least recently used session at the cap", async () => {
    now = 10_000;
    const first = await login("ann-token");
    const second = await login("bob-token");
    assert.equal(await who({ cookie: first }), "ann"); // first is now the most recently used
    const third = await login("carol-token");
    assert.equal(await who({ cookie: second }), null, "the least recently used session went");
    assert.equal(await who({ cookie: first }), "ann");
    assert.equal(await who({ cookie: third }), "carol");
  });

  void it("ends a session when its token is revoked, for good", async () => {
    now = 20_000;
    const cookie = await login("carol-token");
    assert.equal(await who({ cookie }), "carol");
    tokens.live.delete("carol-token");
    assert.equal(await who({ cookie }), null);
    tokens.live.set("carol-token", "carol");
    assert.equal(await who({ cookie }), null, "the session ended with the revocation");
  });

  void it("reads a Bearer header before the cookie, and ignores other Authorization schemes", async () => {
    now = 30_000;
    const cookie = await login("ann-token");
    assert.equal(await who({ cookie, authorization: "Bearer bob-token" }), "bob");
    assert.equal(await who({ cookie, authorization: "bearer bob-token" }), "bob", "the scheme is case-insensitive");
    assert.equal(await who({ cookie, authorization: "Bearer revoked-or-wrong" }), null, "a bad bearer token is not rescued by the cookie");
    // A proxy in front of the UI that adds its own Basic auth: the session still signs ann in.
    assert.equal(await who({ cookie, authorization: `Basic ${Buffer.from("proxy:secret").toString("base64")}` }), "ann");
    assert.equal(await who({ authorization: "Basic cHJveHk6c2VjcmV0" }), null);
  });
});
