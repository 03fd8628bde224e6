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
import { createHash, timingSafeEqual } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { MetaflowError } from "../errors.js";
import type { MetadataProvider } from "../metadata/types.js";
import { migrate } from "./schema.js";
import { MetadataStore, isUnavailable } from "./store.js";
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
  /** The bearer token every client must send. At least 16 characters. */
  readonly token: string;
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
   * provider that reads this service's database. The handler does its own authentication.
   * @default none
   */
  readonly mount?: ServiceMount;
}

/** A handler served beside the API under `prefix` (which ends with `/`). */
export interface ServiceMount {
  readonly prefix: string;
  create(metadata: MetadataProvider): {
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

/** The database URL with its password masked, for log lines. */
export function redactDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "<unparseable database URL>";
  }
}

type Params = Readonly<Record<string, string>>;
type Reply = { status: number; body?: unknown };
interface Route {
  readonly method: "GET" | "POST" | "PUT";
  readonly path: readonly string[];
  /** Whether the route reads a JSON body. */
  readonly body: boolean;
  handle(p: Params, body: unknown, req: http.IncomingMessage): Promise<Reply>;
}

/** Validators for each `:name` path segment, so handlers only ever see checked values. */
const SEGMENT_CHECKS: Readonly<Record<string, (s: string) => unknown>> = {
  flow: v.flowName,
  run: v.runId,
  step: v.stepName,
  task: v.taskId,
  attempt: v.attemptNo,
};

const ok = (body: unknown): Reply => ({ status: 200, body });
const noContent: Reply = { status: 204 };

function routes(store: MetadataStore): Route[] {
  const run = ["flows", ":flow", "runs", ":run"];
  const task = [...run, "steps", ":step", "tasks", ":task"];
  const get = (path: string[], handle: (p: Params) => Promise<Reply>): Route => ({
    method: "GET",
    path,
    body: false,
    handle,
  });
  return [
    get(["flows"], async () => ok({ flows: await store.listFlows() })),
    get(["flows", ":flow", "runs"], async (p) => ok({ runs: await store.listRuns(p.flow!) })),
    {
      method: "POST",
      path: ["flows", ":flow", "runs"],
      body: true,
      async handle(p, body, req) {
        const key = req.headers["idempotency-key"];
        if (key !== undefined && (typeof key !== "string" || !/^[A-Za-z0-9_-]{8,128}$/.test(key))) {
          throw v.badRequest("Idempotency-Key header", "must be 8 to 128 letters, digits, _ or -");
        }
        const runId = await store.newRun(v.newRunBody(p.flow!, body), key);
        return { status: 201, body: { runId } };
      },
    },
    get(run, async (p) => {
      const view = await store.getRun(p.flow!, p.run!);
      if (!view) throw new HttpError(404, "not-found", `Run ${p.flow}/${p.run} does not exist`);
      return ok(view);
    }),
    {
      method: "PUT",
      path: [...run, "end"],
      body: true,
      async handle(p, body) {
        await store.finishRun(p.flow!, p.run!, v.runEndBody(body));
        return noContent;
      },
    },
    {
      method: "POST",
      path: [...run, "heartbeat"],
      body: false,
      async handle(p) {
        await store.heartbeat(p.flow!, p.run!);
        return noContent;
      },
    },
    get([...run, "tags"], async (p) => ok(await store.getTags(p.flow!, p.run!))),
    {
      method: "POST",
      path: [...run, "tags"],
      body: true,
      async handle(p, body) {
        return ok({ tags: await store.updateTags(p.flow!, p.run!, v.tagUpdateBody(body)) });
      },
    },
    get([...run, "steps"], async (p) => ok({ steps: await store.listSteps(p.flow!, p.run!) })),
    get([...run, "steps", ":step", "tasks"], async (p) =>
      ok({ tasks: await store.listTasks(p.flow!, p.run!, p.step!) }),
    ),
    get(task, async (p) => {
      const t = await store.getTask(p.flow!, p.run!, p.step!, p.task!);
      if (!t)
        throw new HttpError(
          404,
          "not-found",
          `Task ${p.flow}/${p.run}/${p.step}/${p.task} does not exist`,
        );
      return ok(t);
    }),
    ...(["start", "end"] as const).map((side) => ({
      method: "PUT" as const,
      path: [...task, "attempts", ":attempt", side],
      body: true,
      async handle(p: Record<string, string | undefined>, body: unknown) {
        const n = Number(p.attempt);
        const record = side === "start" ? v.attemptStartBody(n, body) : v.attemptEndBody(n, body);
        await store.putAttempt(p.flow!, p.run!, p.step!, p.task!, n, side, record);
        return noContent;
      },
    })),
  ];
}

/** Finds the route for a path; throws 404 for an unknown path and 405 for a wrong method. */
function match(
  table: readonly Route[],
  method: string,
  segments: readonly string[],
): { route: Route; params: Params } {
  let pathMatched = false;
  for (const route of table) {
    if (route.path.length !== segments.length) continue;
    const params: Record<string, string> = {};
    const fits = route.path.every((part, i) => {
      const seg = segments[i]!;
      if (part.startsWith(":")) {
        params[part.slice(1)] = seg;
        return true;
      }
      return part === seg;
    });
    if (!fits) continue;
    pathMatched = true;
    if (route.method !== method) continue;
    // Validate names only once the route is known, so the error names the right kind of field.
    for (const [name, value] of Object.entries(params)) SEGMENT_CHECKS[name]?.(value);
    return { route, params };
  }
  if (pathMatched)
    throw new HttpError(405, "method-not-allowed", `Method ${method} is not allowed on this path`);
  throw new HttpError(404, "no-such-endpoint", "No such endpoint");
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
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch (err) {
    throw new HttpError(400, "malformed-json", `body is not valid JSON: ${(err as Error).message}`);
  }
}

const tooLarge = (limit: number): HttpError =>
  new HttpError(413, "body-too-large", `body must be at most ${limit} bytes`);

/** Constant-time token check (comparing digests keeps lengths from leaking too). */
function tokenChecker(token: string): (header: string | undefined) => boolean {
  const want = createHash("sha256").update(token).digest();
  return (header) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
    if (!m) return false;
    return timingSafeEqual(createHash("sha256").update(m[1]!).digest(), want);
  };
}

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
  if (opts.token.length < 16) {
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
  const table = routes(store);
  const authorized = tokenChecker(opts.token);
  const mounted = opts.mount && { prefix: opts.mount.prefix, ...opts.mount.create(new StoreMetadata(store)) };

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
        if (!authorized(req.headers.authorization)) {
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
        reply = await route.handle(params, body, req);
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
