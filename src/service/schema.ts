/**
 * The service's database schema as numbered migrations, applied at start in one transaction under
 * an advisory lock, so several service instances starting at once migrate exactly once.
 */
import type pg from "pg";

/** One schema change; `version`s are applied in increasing order and never edited once released. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** Every migration, oldest first. Add new ones at the end with the next number. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "flows, runs, steps, tasks, attempts",
    sql: `
      CREATE TABLE flows (
        flow_name    text PRIMARY KEY,
        -- The last run id handed out; new ids are max(last + 1, client clock in ms), so they sort
        -- by start time like local run ids and are never reused even if the clock goes back.
        last_run_id  bigint NOT NULL,
        created_at   timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE runs (
        flow_name      text NOT NULL REFERENCES flows ON DELETE CASCADE,
        run_id         bigint NOT NULL,
        user_name      text NOT NULL,
        created_at_ms  bigint NOT NULL,
        record         jsonb NOT NULL,
        tags           text[] NOT NULL DEFAULT '{}',
        system_tags    text[] NOT NULL DEFAULT '{}',
        end_record     jsonb,
        last_heartbeat timestamptz NOT NULL DEFAULT now(),
        -- Lets a client retry a lost POST /runs response without creating a second run.
        request_key    text UNIQUE,
        PRIMARY KEY (flow_name, run_id)
      );
      CREATE TABLE steps (
        id         bigint GENERATED ALWAYS AS IDENTITY,
        flow_name  text NOT NULL,
        run_id     bigint NOT NULL,
        step_name  text NOT NULL,
        PRIMARY KEY (flow_name, run_id, step_name),
        FOREIGN KEY (flow_name, run_id) REFERENCES runs ON DELETE CASCADE
      );
      CREATE TABLE tasks (
        flow_name  text NOT NULL,
        run_id     bigint NOT NULL,
        step_name  text NOT NULL,
        task_id    text NOT NULL,
        PRIMARY KEY (flow_name, run_id, step_name, task_id),
        FOREIGN KEY (flow_name, run_id, step_name) REFERENCES steps ON DELETE CASCADE
      );
      CREATE TABLE attempts (
        flow_name     text NOT NULL,
        run_id        bigint NOT NULL,
        step_name     text NOT NULL,
        task_id       text NOT NULL,
        attempt       integer NOT NULL,
        start_record  jsonb,
        end_record    jsonb,
        PRIMARY KEY (flow_name, run_id, step_name, task_id, attempt),
        FOREIGN KEY (flow_name, run_id, step_name, task_id) REFERENCES tasks ON DELETE CASCADE
      );
      -- Runs of one user across flows (namespaces) without a sequential scan.
      CREATE INDEX runs_user_idx ON runs (user_name, created_at_ms DESC);
      CREATE INDEX runs_tags_idx ON runs USING gin (tags);
    `,
  },
  {
    version: 2,
    name: "per-user tokens, artifact batches",
    sql: `
      CREATE TABLE api_tokens (
        id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        user_name     text NOT NULL,
        -- SHA-256 of the token; the token itself is shown once and never stored.
        token_sha256  bytea NOT NULL UNIQUE,
        label         text,
        created_at    timestamptz NOT NULL DEFAULT now(),
        last_used_at  timestamptz,
        revoked_at    timestamptz
      );
      -- Parts of an attempt's artifact index sent before its end, when the whole would not fit
      -- one request; the end merges them in order. Kept, so a retried end compares exactly.
      CREATE TABLE attempt_artifact_batches (
        flow_name  text NOT NULL,
        run_id     bigint NOT NULL,
        step_name  text NOT NULL,
        task_id    text NOT NULL,
        attempt    integer NOT NULL,
        batch      integer NOT NULL,
        refs       jsonb NOT NULL,
        PRIMARY KEY (flow_name, run_id, step_name, task_id, attempt, batch),
        FOREIGN KEY (flow_name, run_id, step_name, task_id, attempt) REFERENCES attempts ON DELETE CASCADE
      );
    `,
  },
];

/** Arbitrary constant naming the migration lock among advisory locks ("metaflow" in ASCII). */
const MIGRATION_LOCK = 0x6d657461666c6f77n;

/** Applies every migration the database has not seen; returns the versions it applied. */
export async function migrate(
  pool: pg.Pool,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<number[]> {
  const client = await pool.connect();
  let failed: Error | undefined;
  // Without a listener a connection dropped mid-migration would crash the process.
  const onError = (err: Error) => {
    failed = err;
  };
  client.on("error", onError);
  try {
    await client.query("BEGIN");
    // The lock comes first: even creating the bookkeeping table races with another instance.
    await client.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK.toString()]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await client.query<{ version: number }>(
      "SELECT version FROM schema_migrations",
    );
    const done = new Set(rows.map((r) => r.version));
    const applied: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(m.version)) continue;
      await client.query(m.sql);
      await client.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [
        m.version,
        m.name,
      ]);
      applied.push(m.version);
    }
    await client.query("COMMIT");
    return applied;
  } catch (err) {
    failed = err as Error;
    // The migration's own error is the one to report; a failed ROLLBACK only means the
    // connection is gone, and the server rolls back for us then.
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  } finally {
    // Passing the error discards a connection that may be broken instead of pooling it.
    client.off("error", onError);
    client.release(failed);
  }
}
