/**
 * The web UI's server on `node:http`: the page shell and its bundled script (built by
 * `npm run build`, served from `dist/ui/`), the JSON API and card pages. `metaflow ui` runs it
 * alone on one machine; `metaflow service --ui` mounts it under `/ui/` behind the service token.
 *
 * @example
 * const ui = await startUi({ port: 8324 });
 * console.log(ui.url); // http://127.0.0.1:8324/
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { readAsset } from "../cards/assets.js";
import { escapeHtml } from "../cards/escape.js";
import { CardNotFoundError } from "../client/cards.js";
import type { ClientOptions } from "../client/context.js";
import { ArtifactNotFoundError, NotFinishedError, ObjectNotFoundError } from "../client/errors.js";
import { namespace } from "../client/namespace.js";
import { MetaflowError, UsageError } from "../errors.js";
import { SystemTagError } from "../metadata/tags.js";
import { UiApi } from "./api.js";
import { Authenticator, type UiAuthenticate, type UiCaller } from "./auth.js";
import { BASE_HEADERS, pathSegments, sendBody, sendJson, UiHttpError } from "./http.js";

/** How to serve the UI. */
export interface UiHandlerOptions {
  /** What to read: the configured datastore and metadata unless given. @default {} */
  readonly client?: ClientOptions;
  /** The path the UI lives under, ending in `/`. @default "/" */
  readonly basePath?: string;
  /**
   * Require sign-in with a token this function accepts (the team UI: the service's shared and
   * per-user tokens). @default none: no sign-in (a local UI)
   */
  readonly authenticate?: UiAuthenticate;
  /**
   * Host names the UI answers to, against DNS rebinding; undefined accepts any (a server bound to
   * every interface, or behind a proxy). @default ["127.0.0.1", "localhost", "[::1]"]
   */
  readonly allowedHosts?: readonly string[];
  /** Where errors are logged. @default stderr */
  readonly log?: (line: string) => void;
}

/** A UI request handler. */
export interface UiHandler {
  handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void>;
  /** Ends open event streams (live logs). */
  close(): void;
}

const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

function shell(basePath: string, caller: UiCaller | undefined): string {
  const team = caller !== undefined;
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Metaflow</title>` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<meta name="mf-base" content="${escapeHtml(basePath)}"><meta name="mf-mode" content="${team ? "team" : "local"}">` +
    (caller?.user === undefined ? "" : `<meta name="mf-user" content="${escapeHtml(caller.user)}">`) +
    `<link rel="icon" href="data:,"><link rel="stylesheet" href="${escapeHtml(basePath)}app.css"></head>` +
    `<body><div id="app"></div><script src="${escapeHtml(basePath)}app.js"></script></body></html>`
  );
}

/** The HTTP status and body for an error from the client or the API. */
function toHttpError(err: unknown): UiHttpError | undefined {
  if (err instanceof UiHttpError) return err;
  if (err instanceof ObjectNotFoundError || err instanceof ArtifactNotFoundError || err instanceof CardNotFoundError) return new UiHttpError(404, err.code, err.message);
  if (err instanceof NotFinishedError) return new UiHttpError(409, err.code, err.message);
  if (err instanceof SystemTagError) return new UiHttpError(409, err.code, err.message);
  if (err instanceof UsageError) return new UiHttpError(400, err.code, err.message);
  return undefined;
}

/** What one UI handler holds. */
interface UiContext {
  readonly basePath: string;
  readonly api: UiApi;
  readonly auth: Authenticator | undefined;
  readonly allowed: readonly string[] | undefined;
  readonly streams: AbortController;
}

/** Refuses foreign host names (DNS rebinding) and cross-origin edits. */
function checkOrigin(c: UiContext, req: http.IncomingMessage, method: string): void {
  if (c.allowed) {
    const host = (req.headers.host ?? "").toLowerCase().replace(/:\d+$/, "");
    if (!c.allowed.includes(host)) throw new UiHttpError(421, "wrong-host", `This UI answers to ${c.allowed.join(", ")}, not ${JSON.stringify(host.slice(0, 80))}`);
  }
  if (method !== "GET" && method !== "HEAD") {
    // Cross-site pages cannot send JSON without a preflight we never allow; a foreign Origin is refused outright.
    const origin = req.headers.origin;
    if (origin !== undefined && originHost(origin) !== req.headers.host) {
      throw new UiHttpError(403, "cross-origin", `Cross-origin edits are refused: Origin ${JSON.stringify(origin.slice(0, 80))} is not this UI's host ${JSON.stringify((req.headers.host ?? "").slice(0, 80))} (a proxy in front of the UI must pass the Host header on)`);
    }
  }
}

/** The host of an Origin header; undefined when it is not a URL (then it matches no host). */
function originHost(origin: string): string | undefined {
  try {
    return new URL(origin, "http://x.invalid").host;
  } catch {
    return undefined;
  }
}

/** Serves one request: sign-in, the page shell and its assets, or the API. */
async function route(c: UiContext, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://ui.invalid");
  const method = req.method ?? "GET";
  const { basePath, auth } = c;
  checkOrigin(c, req, method);
  if (url.pathname === basePath.slice(0, -1)) {
    res.writeHead(308, { ...BASE_HEADERS, location: basePath }).end();
    return;
  }
  if (!url.pathname.startsWith(basePath)) throw new UiHttpError(404, "no-such-page", "No such page");
  const segments = pathSegments(url.pathname.slice(basePath.length));
  if (auth && segments[0] === "login" && segments.length === 1) {
    if (method === "POST") await auth.login(req, res);
    else auth.loginPage(res, 200);
    return;
  }
  if (auth && segments[0] === "logout" && segments.length === 1) {
    if (method !== "POST") throw new UiHttpError(405, "method-not-allowed", "Sign out with POST");
    auth.logout(req, res);
    return;
  }
  const caller = auth ? await auth.caller(req) : undefined;
  if (auth && !caller) {
    if (segments.length === 0 && method === "GET") {
      res.writeHead(303, { ...BASE_HEADERS, location: `${basePath}login` }).end();
      return;
    }
    throw new UiHttpError(401, "unauthorized", "Sign in with your token for the metadata service (or send Authorization: Bearer <token>)");
  }
  if (segments.length === 0) {
    sendBody(res, 200, "text/html; charset=utf-8", shell(basePath, caller), { "content-security-policy": PAGE_CSP });
    return;
  }
  if (segments.length === 1 && (segments[0] === "app.js" || segments[0] === "app.css")) {
    const asset = readAsset(`ui/${segments[0]}`);
    sendBody(res, 200, segments[0].endsWith(".js") ? "text/javascript; charset=utf-8" : "text/css; charset=utf-8", asset.text, { "cache-control": "no-cache" });
    return;
  }
  if (!(await c.api.handle(req, res, segments, url.searchParams, c.streams.signal, caller))) throw new UiHttpError(404, "no-such-page", "No such page");
}

/**
 * The UI as a request handler. It reads every user's runs: it switches the client of this
 * process to the global namespace.
 */
export function createUiHandler(options: UiHandlerOptions = {}): UiHandler {
  const basePath = options.basePath ?? "/";
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const authenticate = options.authenticate;
  const c: UiContext = {
    basePath,
    api: new UiApi(options.client ?? {}, log),
    auth: authenticate && new Authenticator(authenticate, basePath),
    allowed: options.allowedHosts?.map((h) => h.toLowerCase()),
    streams: new AbortController(),
  };
  namespace(null);
  return {
    async handle(req, res) {
      try {
        await route(c, req, res);
      } catch (err) {
        const e = toHttpError(err);
        if (!e) log(`UI error on ${req.method} ${(req.url ?? "").split("?")[0]!.slice(0, 200)}: ${err instanceof MetaflowError ? err.message : ((err as Error)?.stack ?? String(err))}`);
        const reply = e ?? new UiHttpError(500, "internal", "Internal error in the UI server; see its log");
        if (!res.headersSent) sendJson(res, reply.status, { error: { code: reply.code, message: reply.message } });
        else res.end();
      }
    },
    close() {
      c.streams.abort();
    },
  };
}

/** Options of `startUi`. */
export interface UiOptions extends Omit<UiHandlerOptions, "basePath" | "allowedHosts"> {
  /** @default 8324 (0 picks a free port) */
  readonly port?: number;
  /** @default "127.0.0.1" — "0.0.0.0" serves other machines (then any Host header is accepted) */
  readonly host?: string;
}

/** A started UI server. */
export interface RunningUi {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Starts the UI on its own port. */
export async function startUi(options: UiOptions = {}): Promise<RunningUi> {
  const host = options.host ?? "127.0.0.1";
  const open = host === "0.0.0.0" || host === "::";
  const handler = createUiHandler({ ...options, basePath: "/", ...(open ? {} : { allowedHosts: [...new Set(["127.0.0.1", "localhost", "[::1]", host.includes(":") ? `[${host}]` : host])] }) });
  const server = http.createServer((req, res) => void handler.handle(req, res));
  server.headersTimeout = 15_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 8324, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shown = open ? "127.0.0.1" : address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}/`,
    port: address.port,
    async close() {
      handler.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await closed;
    },
  };
}
