/**
 * The team UI's authentication: the service's bearer token, given once on a login page (or as
 * `Authorization: Bearer` by scripts). The browser keeps a session cookie derived from the token
 * (an HMAC, never the token itself), HttpOnly and SameSite=Strict.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type * as http from "node:http";
import { escapeHtml } from "../cards/escape.js";
import { BASE_HEADERS, readBody, sendBody } from "./http.js";

const COOKIE = "mf_ui_session";

/** Checks requests against the token and serves the login page. */
export class Authenticator {
  private readonly session: Buffer;
  private readonly token: Buffer;

  constructor(
    token: string,
    private readonly basePath: string,
  ) {
    this.token = createHmac("sha256", "metaflow-ui-token").update(token).digest();
    this.session = createHmac("sha256", token).update("metaflow-ui-session-v1").digest();
  }

  /** Whether the request carries the token (header) or a session cookie made from it. */
  isAuthenticated(req: http.IncomingMessage): boolean {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "")?.[1];
    if (bearer !== undefined) return this.checkToken(bearer);
    const cookie = (req.headers.cookie ?? "")
      .split(";")
      .map((c) => c.trim())
      .find((c) => c.startsWith(`${COOKIE}=`))
      ?.slice(COOKIE.length + 1);
    if (!cookie || !/^[0-9a-f]{64}$/.test(cookie)) return false;
    return timingSafeEqual(Buffer.from(cookie, "hex"), this.session);
  }

  private checkToken(token: string): boolean {
    return timingSafeEqual(createHmac("sha256", "metaflow-ui-token").update(token).digest(), this.token);
  }

  /** The login form (no script); `problem` is shown above it. */
  loginPage(res: http.ServerResponse, status: number, problem?: string): void {
    const html =
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Metaflow UI · sign in</title>` +
      `<meta name="viewport" content="width=device-width, initial-scale=1"><style>body{font:15px system-ui,sans-serif;display:grid;place-items:center;min-height:90vh;color:#1d2330}` +
      `form{border:1px solid #dde2ea;border-radius:8px;padding:24px 28px;min-width:320px}input{width:100%;padding:8px;margin:8px 0 14px;font:inherit}` +
      `button{padding:8px 16px;font:inherit}.problem{color:#c62f2f}</style></head><body><form method="post" action="${escapeHtml(this.basePath)}login">` +
      `<h1>Metaflow</h1>${problem ? `<p class="problem">${escapeHtml(problem)}</p>` : ""}` +
      `<label for="token">The metadata service's token</label><input id="token" name="token" type="password" autocomplete="current-password" required autofocus>` +
      `<button type="submit">Sign in</button></form></body></html>`;
    sendBody(res, status, "text/html; charset=utf-8", html, {
      "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    });
  }

  /** Handles the login form: a right token sets the session cookie and goes to the UI. */
  async login(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const form = new URLSearchParams((await readBody(req, 8192)).toString("utf8"));
    const token = form.get("token") ?? "";
    if (!token || !this.checkToken(token.trim())) {
      this.loginPage(res, 401, "That token is not the service's token.");
      return;
    }
    const secure = req.headers["x-forwarded-proto"] === "https" || (req.socket as { encrypted?: boolean }).encrypted === true;
    res
      .writeHead(303, {
        ...BASE_HEADERS,
        location: this.basePath,
        "set-cookie": `${COOKIE}=${this.session.toString("hex")}; Path=${this.basePath}; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`,
      })
      .end();
  }
}
