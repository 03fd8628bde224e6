/**
 * The team UI's sign-in, through the metadata service's own authentication: the shared token or a
 * per-user token (`metaflow service token create --user ann`), given once on a login page (or as
 * `Authorization: Bearer` by scripts). The browser then holds a random session id in an HttpOnly,
 * SameSite=Strict cookie — never the token. The session remembers the token in this process's
 * memory only, and every request checks it again with the service, so revoking a token ends its
 * sessions at once; a restart of the service signs everyone out.
 */
import { randomBytes } from "node:crypto";
import type * as http from "node:http";
import { escapeHtml } from "../cards/escape.js";
import { BASE_HEADERS, readBody, sendBody } from "./http.js";

/** Who made a request: a user's token names the user; the shared token names nobody. */
export interface UiCaller {
  readonly user: string | undefined;
}

/** Checks an `Authorization` header (`Bearer <token>`); undefined when it is not a valid token. */
export type UiAuthenticate = (authorization: string | undefined) => Promise<UiCaller | undefined>;

const COOKIE = "mf_ui_session";

/** Limits of the sessions and the clock they are measured by (tests shorten them). */
export interface SessionOptions {
  /** A session ends this long after it was last used. @default 12 hours */
  readonly idleMs?: number;
  /** Most sessions kept; the least recently used one goes first. @default 10000 */
  readonly maxSessions?: number;
  /** Milliseconds since the epoch. @default Date.now */
  readonly clock?: () => number;
}

interface Session {
  readonly authorization: string;
  lastUsed: number;
}

/** Sessions of the team UI and its login page. */
export class Authenticator {
  private readonly sessions = new Map<string, Session>();
  private readonly idleMs: number;
  private readonly maxSessions: number;
  private readonly clock: () => number;

  constructor(
    private readonly authenticate: UiAuthenticate,
    private readonly basePath: string,
    options: SessionOptions = {},
  ) {
    this.idleMs = options.idleMs ?? 12 * 60 * 60 * 1000;
    this.maxSessions = options.maxSessions ?? 10_000;
    this.clock = options.clock ?? Date.now;
  }

  /**
   * The caller of a request with a valid bearer token or session cookie, else undefined. An
   * `Authorization` header of another scheme (a proxy's Basic auth) is not ours: the cookie decides.
   */
  async caller(req: http.IncomingMessage): Promise<UiCaller | undefined> {
    const header = req.headers.authorization;
    if (header !== undefined && /^Bearer\s/i.test(header)) return this.authenticate(header);
    const id = this.cookie(req);
    const session = id === undefined ? undefined : this.sessions.get(id);
    if (!session || this.clock() - session.lastUsed > this.idleMs) {
      if (id !== undefined) this.sessions.delete(id);
      return undefined;
    }
    const caller = await this.authenticate(session.authorization);
    if (!caller) {
      // The token was revoked (or the shared token changed): the session ends with it.
      this.sessions.delete(id!);
      return undefined;
    }
    session.lastUsed = this.clock();
    // Keep the map in least-recently-used order.
    this.sessions.delete(id!);
    this.sessions.set(id!, session);
    return caller;
  }

  private cookie(req: http.IncomingMessage): string | undefined {
    const value = (req.headers.cookie ?? "")
      .split(";")
      .map((c) => c.trim())
      .find((c) => c.startsWith(`${COOKIE}=`))
      ?.slice(COOKIE.length + 1);
    return value !== undefined && /^[0-9a-f]{64}$/.test(value) ? value : undefined;
  }

  /** The login form (no script); `problem` is shown above it. */
  loginPage(res: http.ServerResponse, status: number, problem?: string): void {
    const html =
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Metaflow UI · sign in</title>` +
      `<meta name="viewport" content="width=device-width, initial-scale=1"><style>body{font:15px system-ui,sans-serif;display:grid;place-items:center;min-height:90vh;color:#1d2330}` +
      `form{border:1px solid #dde2ea;border-radius:8px;padding:24px 28px;min-width:320px}input{width:100%;padding:8px;margin:8px 0 14px;font:inherit}` +
      `button{padding:8px 16px;font:inherit}.problem{color:#c62f2f}.hint{color:#5f6b7a;font-size:13px}</style></head><body><form method="post" action="${escapeHtml(this.basePath)}login">` +
      `<h1>Metaflow</h1>${problem ? `<p class="problem">${escapeHtml(problem)}</p>` : ""}` +
      `<label for="token">Your token for the metadata service</label><input id="token" name="token" type="password" autocomplete="current-password" required autofocus>` +
      `<p class="hint">A personal token from <code>metaflow service token create --user NAME</code>, or the team's shared token.</p>` +
      `<button type="submit">Sign in</button></form></body></html>`;
    sendBody(res, status, "text/html; charset=utf-8", html, {
      "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    });
  }

  /** Handles the login form: a valid token starts a session and goes to the UI. */
  async login(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const form = new URLSearchParams((await readBody(req, 8192)).toString("utf8"));
    const token = (form.get("token") ?? "").trim();
    const authorization = `Bearer ${token}`;
    if (!token || /\s/.test(token) || !(await this.authenticate(authorization))) {
      this.loginPage(res, 401, "That token is not valid: it is neither the service's shared token nor a live personal token.");
      return;
    }
    const id = randomBytes(32).toString("hex");
    this.sessions.set(id, { authorization, lastUsed: this.clock() });
    while (this.sessions.size > this.maxSessions) this.sessions.delete(this.sessions.keys().next().value!);
    res.writeHead(303, { ...BASE_HEADERS, location: this.basePath, "set-cookie": this.setCookie(req, id) }).end();
  }

  /** Ends the request's session and goes to the login page. */
  logout(req: http.IncomingMessage, res: http.ServerResponse): void {
    const id = this.cookie(req);
    if (id !== undefined) this.sessions.delete(id);
    res.writeHead(303, { ...BASE_HEADERS, location: `${this.basePath}login`, "set-cookie": this.setCookie(req, "", 0) }).end();
  }

  private setCookie(req: http.IncomingMessage, value: string, maxAge?: number): string {
    const secure = req.headers["x-forwarded-proto"] === "https" || (req.socket as { encrypted?: boolean }).encrypted === true;
    return `${COOKIE}=${value}; Path=${this.basePath}; HttpOnly; SameSite=Strict${maxAge === undefined ? "" : `; Max-Age=${maxAge}`}${secure ? "; Secure" : ""}`;
  }
}
