/**
 * The metadata service: a JSON REST API under `/api/v1` on `node:http`, backed by PostgreSQL.
 * Every request but `GET /healthz` needs `Authorization: Bearer <token>`; every input is validated;
 * while the database is down requests answer 503 (clients retry) instead of the process crashing.
 *
 * @example
 * const service = await startMetadataService({ databaseUrl: "postgres://...", token });
 * console.log(service.url); // http://127.0.0.1:8080
 * await service.close();
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { redactUrl } from "../config/index.js";
import { MetaflowError } from "../errors.js";
import { AttemptStore } from "./attempts.js";
import { authenticator, TokenStore, type Auth } from "./auth.js";
import { isUnavailable } from "./db.js";
import { match, routes, type Reply } from "./routes.js";
import { migrate } from "./schema.js";
import { MetadataStore } from "./store.js";
import type { MetadataProvider } from "../metadata/types.js";
import { StoreMetadata } from "./store-metadata.js";
import * as v from "./validate.js";
import { HttpError } from "./validate.js";

/** The service cannot start: a bad option, or a database it cannot reach or migrate. */
export class ServiceStartError extends MetaflowError {
  constructor(headline: string, message?: string) {
    super("service-start", headline, message);
  }
}

/** How to start the service. */
export interface ServiceOptions {
  /** `postgres://user:password@host:port/database`; a password may also come from `PGPASSWORD`. */
  readonly databaseUrl: string;
  /**
   * The shared bearer token (at least 16 characters): whoever holds it is trusted to say which user
   * they are. Without it, only per-user tokens (`metaflow service token create`) are accepted.
   */
  readonly token?: string;
  /** @default 8080 (0 picks a free port) */
  readonly port?: number;
  /** @default "127.0.0.1" — use "0.0.0.0" to serve other machines (behind a TLS proxy). */
  readonly host?: string;
  /** A run without an end whose last heartbeat is older than this shows as failed. @default 60000 */
  readonly heartbeatTimeoutMs?: number;
  /** Largest request body accepted; larger ones get 413. @default 1048576 (1 MiB) */
  readonly maxBodyBytes?: number;
  /** How long to keep retrying the database at start before giving up. @default 30000 */
  readonly databaseWaitMs?: number;
  /** Largest number of database connections. @default 10 */
  readonly poolSize?: number;
  /** Where log lines go (never containing the token or the database password). @default stderr */
  readonly log?: (line: string) => void;
  /**
   * Serves another handler under a path prefix (the team UI under `/ui/`), given a metadata
   * provider that reads this service's database and the service's own check of a bearer token
   * (shared or per-user). The handler does its own authentication with it.
   * @default none
   */
  readonly mount?: ServiceMount;
}

/** A handler served beside the API under `prefix` (which ends with `/`). */
export interface ServiceMount {
  readonly prefix: string;
  create(
    metadata: MetadataProvider,
    authenticate: (authorization: string | undefined) => Promise<Auth | undefined>,
  ): {
    handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void>;
    /** Ends long-lived responses (event streams) so the server can close. */
    close(): void;
  };
}

/** A started service. */
export interface RunningService {
  /** `http://host:port`, to give to clients. */
  readonly url: string;
  readonly port: number;
  /** Stops accepting requests, finishes the ones in flight, and closes the database pool. */
  close(): Promise<void>;
}

/** The database URL with its password (in the authority or as `?password=`) masked, for log lines. */
export function redactDatabaseUrl(url: string): string {
  return redactUrl(url);
}

function splitPath(pathname: string): string[] {
  try {
    return pathname
      .split("/")
      .filter((s) => s !== "")
      .map((s) => decodeURIComponent(s));
  } catch {
    throw v.badRequest("path", "is not valid percent-encoded UTF-8");
  }
}

async function readJson(req: http.IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  const type = req.headers["content-type"] ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new HttpError(
      415,
      "unsupported-media-type",
      `Content-Type must be application/json, got ${JSON.stringify(type.slice(0, 80))}`,
    );
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch (err) {
    throw new HttpError(400, "malformed-json", `body is not valid JSON: ${(err as Error).message}`);
  }
  v.checkDepth(body);
  return body;
}

const tooLarge = (limit: number): HttpError =>
  new HttpError(413, "body-too-large", `body must be at most ${limit} bytes`);

function send(
  res: http.ServerResponse,
  reply: Reply,
  extraHeaders: Record<string, string> = {},
): void {
  const headers: Record<string, string> = { "cache-control": "no-store", ...extraHeaders };
  if (reply.body === undefined) {
    res.writeHead(reply.status, headers).end();
    return;
  }
  const text = JSON.stringify(reply.body);
  res
    .writeHead(reply.status, {
      ...headers,
      "content-type": "application/json; charset=utf-8",
      "content-length": String(Buffer.byteLength(text)),
    })
    .end(text);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Connects to PostgreSQL (waiting for it if needed), migrates the schema, and starts serving. */
export async function startMetadataService(opts: ServiceOptions): Promise<RunningService> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (opts.token !== undefined && opts.token.length < 16) {
    throw new ServiceStartError("The service token must be at least 16 characters");
  }
  const maxBody = opts.maxBodyBytes ?? 1024 * 1024;
  const pool = new pg.Pool({
    connectionString: opts.databaseUrl,
    max: opts.poolSize ?? 10,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 10_000,
    // A hung query must not hold a request forever; the client retries a 503.
    query_timeout: 30_000,
    application_name: "metaflow-service",
  });
  // Idle connections die when PostgreSQL restarts; without a listener that would crash the process.
  pool.on("error", (err) => log(`database connection lost: ${err.message}`));

  const dbWait = opts.databaseWaitMs ?? 30_000;
  const started = Date.now();
  for (let delay = 250; ; delay = Math.min(delay * 2, 4000)) {
    try {
      const applied = await migrate(pool);
      log(
        `database ${redactDatabaseUrl(opts.databaseUrl)}: schema ${applied.length ? `migrated (${applied.join(", ")})` : "up to date"}`,
      );
      break;
    } catch (err) {
      if (!isUnavailable(err) || Date.now() - started > dbWait) {
        // The pool's own shutdown error would hide the one that matters.
        await pool.end().catch(() => undefined);
        throw new ServiceStartError(
          `Cannot prepare the metadata database ${redactDatabaseUrl(opts.databaseUrl)}`,
          `${(err as Error).message}. Check --database-url (or METAFLOW_SERVICE_DATABASE_URL), that PostgreSQL is running, and that the role may create tables in the database.`,
        );
      }
      log(`waiting for database ${redactDatabaseUrl(opts.databaseUrl)}: ${(err as Error).message}`);
      await sleep(delay);
    }
  }

  const store = new MetadataStore(pool, opts.heartbeatTimeoutMs ?? 60_000);
  const table = routes(store, new AttemptStore(pool));
  const authenticate = authenticator(opts.token, new TokenStore(pool));
  log(opts.token === undefined ? "auth: per-user tokens only (no shared token)" : "auth: the shared token and per-user tokens");
  const mounted = opts.mount && {
    prefix: opts.mount.prefix,
    ...opts.mount.create(new StoreMetadata(store), authenticate),
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const t0 = performance.now();
    const method = req.method ?? "GET";
    // Only the path is ever logged: never headers (the token) nor query strings.
    // Parsed by hand rather than with `new URL`, which throws on some request targets.
    const pathname = (req.url ?? "/").split("?")[0]!.slice(0, 2048);
    // A raw path must not be able to forge extra log lines.
    const logPath = pathname.slice(0, 300).replace(/[\u0000-\u001f\u007f]/g, "?");
    let status = 500;
    let code = "";
    try {
      let reply: Reply;
      if (mounted && (pathname.startsWith(mounted.prefix) || pathname === mounted.prefix.slice(0, -1))) {
        await mounted.handle(req, res);
        log(`${method} ${logPath} ${res.statusCode} ${(performance.now() - t0).toFixed(1)}ms`);
        return;
      }
      if (pathname === "/healthz" && (method === "GET" || method === "HEAD")) {
        const up = await store.ping();
        reply = {
          status: up ? 200 : 503,
          body: { status: up ? "ok" : "degraded", database: up ? "up" : "down" },
        };
      } else {
        const auth = await authenticate(req.headers.authorization);
        if (!auth) {
          throw new HttpError(
            401,
            "unauthorized",
            "A valid token is required: send Authorization: Bearer <token>",
          );
        }
        const segments = splitPath(pathname);
        if (segments[0] !== "api" || segments[1] !== "v1")
          throw new HttpError(
            404,
            "no-such-endpoint",
            "No such endpoint; the API is under /api/v1",
          );
        const { route, params } = match(table, method, segments.slice(2));
        const body = route.body ? await readJson(req, maxBody) : undefined;
        reply = await route.handle(params, body, req, auth);
      }
      status = reply.status;
      send(res, reply);
    } catch (err) {
      const e =
        err instanceof HttpError
          ? err
          : new HttpError(500, "internal", "Internal error in the metadata service");
      status = e.status;
      code = ` ${e.code}`;
      if (e.status === 500)
        log(
          `error on ${method} ${logPath}: ${((err as Error & { cause?: Error }).cause ?? (err as Error)).message}`,
        );
      const headers: Record<string, string> = {};
      if (e.status === 401) headers["www-authenticate"] = 'Bearer realm="metaflow"';
      if (e.status === 503) headers["retry-after"] = "1";
      // An unread body (413, or an error before reading) would otherwise be parsed as the next request.
      if (!req.complete) headers.connection = "close";
      if (!res.headersSent)
        send(
          res,
          { status: e.status, body: { error: { ...e.detail, code: e.code, message: e.message } } },
          headers,
        );
      else res.destroy();
    }
    log(`${method} ${logPath} ${status}${code} ${(performance.now() - t0).toFixed(1)}ms`);
  };

  const server = http.createServer((req, res) => {
    void handle(req, res);
  });
  server.requestTimeout = 60_000;
  server.headersTimeout = 15_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 8080, opts.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    async close() {
      mounted?.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await closed;
      await pool.end();
    },
  };
}
