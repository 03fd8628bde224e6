/**
 * The metadata service's PostgreSQL queries, all parameterized. Errors that mean "the database is
 * unreachable" become 503s so clients retry; a missing run or task becomes a 404.
 */
import type pg from "pg";
import { compareIds } from "../metadata/local.js";
import { SystemTagError, applyTagChange, type TagChange } from "../metadata/tags.js";
import type { AttemptEnd, AttemptStart, RunEnd, RunRecord, TaskRecord } from "../metadata/types.js";
import { immutable, notOwner, type Writer } from "./attempts.js";
import { Db, notFound } from "./db.js";
import { HttpError, MAX_TAGS, badRequest } from "./validate.js";

/** How a run stands, computed by the service from its end record and its last heartbeat. */
export type RunStatus = "running" | "completed" | "failed";

/** A run as the API returns it: the record, its end if any, and its computed status. */
export interface RunView {
  readonly run: RunRecord;
  readonly end: RunEnd | null;
  readonly status: RunStatus;
  /** Milliseconds since the epoch of the last heartbeat (or of the run's creation). */
  readonly lastHeartbeat: number;
  /** True when the run has no end and its heartbeat is older than the service's threshold. */
  readonly heartbeatExpired: boolean;
}

/** A run's user and system tags. */
export interface RunTags {
  readonly tags: string[];
  readonly systemTags: string[];
}

/** Whether `err` is the unique violation of `runs.request_key` (two requests with one key). */
function isKeyClash(err: unknown): boolean {
  const e = err as { pgCode?: unknown; cause?: { constraint?: unknown } };
  return e.pgCode === "23505" && e.cause?.constraint === "runs_request_key_key";
}

/** Every read and write the service makes; one instance per service, sharing a pool. */
export class MetadataStore extends Db {
  constructor(
    pool: pg.Pool,
    /** A run without an end whose heartbeat is older than this many ms shows as failed. */
    readonly heartbeatTimeoutMs: number,
  ) {
    super(pool);
  }

  /**
   * Allocates a run id (unique and increasing per flow) and stores the run. With `requestKey` (the
   * Idempotency-Key header) a retried request gets the run its first try created, also when the
   * two tries run concurrently.
   */
  async newRun(record: Omit<RunRecord, "runId">, requestKey: string | undefined): Promise<string> {
    if (requestKey) {
      const prior = await this.runForKey(record, requestKey);
      if (prior) return prior;
    }
    try {
      return await this.insertRun(record, requestKey);
    } catch (err) {
      // A concurrent request with the same key committed between the lookup and the insert: the
      // insert rolled back whole (its run id included), and this request is answered like a retry.
      if (requestKey && isKeyClash(err)) {
        const prior = await this.runForKey(record, requestKey);
        if (prior) return prior;
      }
      throw err;
    }
  }

  /**
   * The run of this flow created earlier with `key`, or undefined. Keys are unique across flows
   * (one index); a retry repeats its flow (it is in the URL), so a key seen with another flow is
   * never a retry but a client bug or a collision. That is a 409 rather than a new run: answering
   * with the other run would send this client's writes to another flow's run, and quietly making a
   * second run would hide the bug (and need the key to be unique per flow, not per service). A
   * different user is not checked: the user may come from the environment of a retried task, and
   * writes to another user's run are refused anyway when per-user tokens are in use.
   */
  private async runForKey(record: Omit<RunRecord, "runId">, key: string): Promise<string | undefined> {
    const r = await this.query<{ run_id: string; flow_name: string }>(
      "SELECT run_id, flow_name FROM runs WHERE request_key = $1",
      [key],
    );
    const row = r.rows[0];
    if (!row) return undefined;
    if (row.flow_name !== record.flow) {
      throw new HttpError(
        409,
        "idempotency-key-reused",
        `Idempotency-Key ${JSON.stringify(key)} was already used to create a run of another flow, so this request is not a retry of that one; send a new key for each new run`,
        { key },
      );
    }
    return row.run_id;
  }

  private async insertRun(record: Omit<RunRecord, "runId">, requestKey: string | undefined): Promise<string> {
    return this.tx(async (c) => {
      const floor = Math.max(Date.now(), record.createdAt);
      // The upsert takes the flow row's lock, so concurrent newRun calls for one flow queue here
      // and each sees the previous one's id.
      const ids = await c.query<{ last_run_id: string }>(
        `INSERT INTO flows (flow_name, last_run_id) VALUES ($1, $2)
         ON CONFLICT (flow_name) DO UPDATE SET last_run_id = GREATEST(flows.last_run_id + 1, EXCLUDED.last_run_id)
         RETURNING last_run_id`,
        [record.flow, floor],
      );
      const runId = ids.rows[0]!.last_run_id;
      const { tags, systemTags, ...rest } = record;
      await c.query(
        `INSERT INTO runs (flow_name, run_id, user_name, created_at_ms, record, tags, system_tags, request_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [
          record.flow,
          runId,
          record.user,
          record.createdAt,
          JSON.stringify({ ...rest, runId }),
          tags,
          systemTags,
          requestKey ?? null,
        ],
      );
      return runId;
    });
  }

  /** Records that a run's scheduler is alive. */
  async heartbeat(flow: string, runId: string, writer: Writer): Promise<void> {
    const r = await this.query(
      "UPDATE runs SET last_heartbeat = now() WHERE flow_name = $1 AND run_id = $2 AND ($3::text IS NULL OR user_name = $3::text)",
      [flow, runId, writer],
    );
    if (r.rowCount === 0) await this.owner(flow, runId, writer);
  }

  /** Stores how a run ended, once: an identical retry is accepted, a different end is a 409. */
  async finishRun(flow: string, runId: string, end: RunEnd, writer: Writer): Promise<void> {
    const json = JSON.stringify(end);
    const r = await this.query(
      `UPDATE runs SET end_record = $3, last_heartbeat = now()
        WHERE flow_name = $1 AND run_id = $2 AND end_record IS NULL AND ($4::text IS NULL OR user_name = $4::text)`,
      [flow, runId, json, writer],
    );
    if ((r.rowCount ?? 0) > 0) return;
    await this.owner(flow, runId, writer);
    const same = await this.query<{ same: boolean; status: string }>(
      "SELECT end_record = $3::jsonb AS same, end_record->>'status' AS status FROM runs WHERE flow_name = $1 AND run_id = $2",
      [flow, runId, json],
    );
    const row = same.rows[0];
    if (row?.same) return;
    throw immutable(`Run ${flow}/${runId} has already ended (${row?.status}); a run's end cannot change`, `${flow}/${runId}`);
  }

  /** Throws 404 when the run does not exist and 403 when a per-user token's user does not own it. */
  private async owner(flow: string, runId: string, writer: Writer): Promise<void> {
    const r = await this.query<{ user_name: string }>(
      "SELECT user_name FROM runs WHERE flow_name = $1 AND run_id = $2",
      [flow, runId],
    );
    const row = r.rows[0];
    if (!row) throw notFound(`Run ${flow}/${runId}`);
    if (writer !== null && row.user_name !== writer) throw notOwner(flow, runId, row.user_name, writer);
  }

  /** Names of every flow with at least one run, sorted. */
  async listFlows(): Promise<string[]> {
    const r = await this.query<{ flow_name: string }>(
      "SELECT flow_name FROM flows ORDER BY flow_name",
      [],
    );
    return r.rows.map((row) => row.flow_name);
  }

  /** Run ids of a flow, newest first. */
  async listRuns(flow: string): Promise<string[]> {
    const r = await this.query<{ run_id: string }>(
      "SELECT run_id FROM runs WHERE flow_name = $1 ORDER BY run_id DESC",
      [flow],
    );
    return r.rows.map((row) => row.run_id);
  }

  /** A run with its end and status, or undefined. */
  async getRun(flow: string, runId: string): Promise<RunView | undefined> {
    const r = await this.query<{
      record: Omit<RunRecord, "tags" | "systemTags">;
      tags: string[];
      system_tags: string[];
      end_record: RunEnd | null;
      heartbeat_ms: string;
      expired: boolean;
    }>(
      `SELECT record, tags, system_tags, end_record,
              floor(extract(epoch FROM last_heartbeat) * 1000)::bigint AS heartbeat_ms,
              (end_record IS NULL AND NOT record ? 'orchestrator' AND last_heartbeat < now() - $3 * interval '1 millisecond') AS expired
         FROM runs WHERE flow_name = $1 AND run_id = $2`,
      [flow, runId, this.heartbeatTimeoutMs],
    );
    const row = r.rows[0];
    if (!row) return undefined;
    const status: RunStatus = row.end_record
      ? row.end_record.status
      : row.expired
        ? "failed"
        : "running";
    return {
      run: { ...row.record, tags: row.tags, systemTags: row.system_tags },
      end: row.end_record,
      status,
      lastHeartbeat: Number(row.heartbeat_ms),
      heartbeatExpired: row.expired,
    };
  }

  /** Steps of a run that have at least one task, in the order they first ran. */
  async listSteps(flow: string, runId: string): Promise<string[]> {
    const r = await this.query<{ step_name: string }>(
      "SELECT step_name FROM steps WHERE flow_name = $1 AND run_id = $2 ORDER BY id",
      [flow, runId],
    );
    return r.rows.map((row) => row.step_name);
  }

  /** Task ids of a step, in numeric order. */
  async listTasks(flow: string, runId: string, step: string): Promise<string[]> {
    const r = await this.query<{ task_id: string }>(
      "SELECT task_id FROM tasks WHERE flow_name = $1 AND run_id = $2 AND step_name = $3",
      [flow, runId, step],
    );
    return r.rows.map((row) => row.task_id).sort(compareIds);
  }

  /** A task with its attempts (those that have started), or undefined. */
  async getTask(
    flow: string,
    runId: string,
    step: string,
    taskId: string,
  ): Promise<TaskRecord | undefined> {
    const r = await this.query<{
      attempt: number | null;
      start_record: AttemptStart | null;
      end_record: AttemptEnd | null;
    }>(
      `SELECT a.attempt, a.start_record, a.end_record
         FROM tasks t LEFT JOIN attempts a USING (flow_name, run_id, step_name, task_id)
        WHERE t.flow_name = $1 AND t.run_id = $2 AND t.step_name = $3 AND t.task_id = $4
        ORDER BY a.attempt`,
      [flow, runId, step, taskId],
    );
    if (r.rows.length === 0) return undefined;
    const attempts = r.rows
      .filter((row) => row.start_record !== null)
      .map((row) =>
        row.end_record
          ? { start: row.start_record!, end: row.end_record }
          : { start: row.start_record! },
      );
    return { flow, runId, step, taskId, attempts };
  }

  /** A run's user and system tags. */
  async getTags(flow: string, runId: string): Promise<RunTags> {
    const r = await this.query<{ tags: string[]; system_tags: string[] }>(
      "SELECT tags, system_tags FROM runs WHERE flow_name = $1 AND run_id = $2",
      [flow, runId],
    );
    const row = r.rows[0];
    if (!row) throw notFound(`Run ${flow}/${runId}`);
    return { tags: row.tags, systemTags: row.system_tags };
  }

  /**
   * Removes then adds user tags in one transaction with the rules of every provider; the row lock
   * makes concurrent edits queue, so each sees the previous one's result and none is lost.
   */
  async updateTags(flow: string, runId: string, change: TagChange): Promise<string[]> {
    return this.tx(async (c) => {
      const r = await c.query<{ tags: string[]; system_tags: string[] }>(
        "SELECT tags, system_tags FROM runs WHERE flow_name = $1 AND run_id = $2 FOR UPDATE",
        [flow, runId],
      );
      const row = r.rows[0];
      if (!row) throw notFound(`Run ${flow}/${runId}`);
      let tags: string[];
      try {
        tags = applyTagChange(row.tags, row.system_tags, change, `${flow}/${runId}`);
      } catch (err) {
        if (err instanceof SystemTagError)
          throw new HttpError(409, "system-tag", err.message, { tag: err.tag });
        throw err;
      }
      if (tags.length > MAX_TAGS)
        throw badRequest(
          "body.add",
          `would give the run ${tags.length} tags; at most ${MAX_TAGS} are allowed`,
        );
      await c.query("UPDATE runs SET tags = $3 WHERE flow_name = $1 AND run_id = $2", [
        flow,
        runId,
        tags,
      ]);
      return tags;
    });
  }
}
