/**
 * The service's access to PostgreSQL: pooled queries and transactions, with driver errors mapped to
 * HTTP errors — 503 while the database is unreachable (clients retry), 500 for anything else.
 */
import type pg from "pg";
import { HttpError } from "./validate.js";

/** SQLSTATE classes that mean the server is unreachable or going away, not that the query is wrong. */
const UNAVAILABLE_SQLSTATE = /^(08|53|57|58)/;
/** Messages of node-postgres errors about a lost or impossible connection. */
const CONNECTION_MESSAGE =
  /connection terminated|connection error|timeout exceeded when trying to connect|client was closed|not queryable|after calling end on the pool/i;

/** Whether `err` says the database cannot be reached right now (so the client should retry). */
export function isUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code))
    return UNAVAILABLE_SQLSTATE.test(code);
  // Socket errors carry an errno name; pg's own connection errors only a message.
  if (typeof code === "string") return /^E[A-Z]+$/.test(code);
  return (
    err instanceof Error && !(err instanceof HttpError) && CONNECTION_MESSAGE.test(err.message)
  );
}

/** A 404 saying what does not exist. */
export const notFound = (what: string): HttpError =>
  new HttpError(404, "not-found", `${what} does not exist`);

/** Runs queries on a pool; the stores build on it. */
export class Db {
  constructor(protected readonly pool: pg.Pool) {}

  /** Runs `fn` in a transaction on one pooled connection, mapping driver errors to HTTP errors. */
  async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw toHttp(err);
    }
    let broken: Error | undefined;
    // A connection dropped between two statements (PostgreSQL restarting) is reported as an
    // 'error' event, which would crash the process without a listener; the next query fails anyway.
    const onError = (err: Error) => {
      broken = err;
    };
    client.on("error", onError);
    try {
      await client.query("BEGIN");
      const out = await fn(client);
      await client.query("COMMIT");
      return out;
    } catch (err) {
      if (isUnavailable(err)) broken = err as Error;
      // The first error is the one worth reporting; a failed ROLLBACK means the connection is
      // gone and the server has rolled back already.
      await client.query("ROLLBACK").catch(() => undefined);
      throw toHttp(err);
    } finally {
      client.off("error", onError);
      client.release(broken);
    }
  }

  /** One parameterized statement. */
  async query<R extends pg.QueryResultRow>(
    sql: string,
    values: unknown[],
  ): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(sql, values);
    } catch (err) {
      throw toHttp(err);
    }
  }

  /** Whether the database answers right now. */
  async ping(): Promise<boolean> {
    try {
      await this.pool.query("SELECT 1");
      return true;
    } catch {
      return false;
    }
  }
}

/** Maps a driver error to an HTTP error: 503 when the database is unreachable, else 500. */
export function toHttp(err: unknown): Error {
  if (err instanceof HttpError) return err;
  if (isUnavailable(err))
    return new HttpError(
      503,
      "database-unavailable",
      "The metadata database is unavailable; retry shortly",
    );
  const e = err as Error & { code?: string };
  // Keep the SQLSTATE so callers can map constraint errors to 404s; the message never goes to
  // the client because it may quote stored values.
  const out = new HttpError(
    500,
    "internal",
    "Internal error in the metadata service",
  ) as HttpError & { pgCode?: string; cause?: unknown };
  out.pgCode = e.code;
  out.cause = err;
  return out;
}
