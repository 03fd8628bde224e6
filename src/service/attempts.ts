/**
 * Writes of attempt records, with the rules that keep history from being rewritten: an attempt's
 * end is written once (an identical retry is accepted, anything else is a 409), its start may
 * change only until it ends, nothing is added to a run that has ended, and with per-user tokens
 * only the run's owner writes its tasks. Big artifact indexes arrive in batches before the end.
 */
import type { ArtifactRef } from "../datastore/types.js";
import type { AttemptEnd, AttemptStart } from "../metadata/types.js";
import { Db, notFound } from "./db.js";
import { HttpError, badRequest } from "./validate.js";

/** Which attempt a write is about. */
export interface AttemptKey {
  readonly flow: string;
  readonly runId: string;
  readonly step: string;
  readonly taskId: string;
  readonly attempt: number;
}

/** Who writes: `null` for a holder of the shared token (trusted), else the user of a per-user token. */
export type Writer = string | null;

/** Most artifacts one attempt may record, batches included. */
const MAX_ARTIFACTS = 100_000;

const describe = (k: AttemptKey): string =>
  `attempt ${k.attempt} of ${k.flow}/${k.runId}/${k.step}/${k.taskId}`;

/** A 409 for a write that would change a record that is fixed once written. */
export function immutable(message: string, record: string): HttpError {
  return new HttpError(409, "immutable", message, { record });
}

/** A 403 when a per-user token writes to a run of another user. */
export function notOwner(flow: string, runId: string, owner: string, writer: string): HttpError {
  return new HttpError(
    403,
    "forbidden",
    `Run ${flow}/${runId} belongs to ${owner}; the token used belongs to ${writer}, and only a run's owner may record its tasks and its end`,
  );
}

/** Attempt writes; shares the service's pool. */
export class AttemptStore extends Db {
  /** Records an attempt's start or end (creating its step and task on first sight), under the rules above. */
  async putAttempt(
    key: AttemptKey,
    side: "start" | "end",
    record: AttemptStart | AttemptEnd,
    writer: Writer,
  ): Promise<void> {
    const body =
      side === "end"
        ? await this.withBatches(key, record as AttemptEnd & { artifactBatches?: number })
        : record;
    // The column is chosen from a fixed pair, never from input.
    const column = side === "start" ? "start_record" : "end_record";
    // A start may change until the attempt ends (or be filled in late); an end never changes.
    const guard =
      side === "start"
        ? "attempts.end_record IS NULL OR attempts.start_record IS NULL"
        : "attempts.end_record IS NULL";
    const json = JSON.stringify(body);
    // One statement (so one round trip): every task records two of these, so they set the
    // service's share of a run's wall time. Nothing is written unless the run exists, has not
    // ended and belongs to the writer; the foreign keys are checked at the end of the statement.
    const r = await this.query(
      `WITH r AS (
         SELECT 1 FROM runs WHERE flow_name = $1 AND run_id = $2 AND end_record IS NULL AND ($7::text IS NULL OR user_name = $7::text)
       ), s AS (
         INSERT INTO steps (flow_name, run_id, step_name) SELECT $1::text, $2::bigint, $3::text FROM r ON CONFLICT DO NOTHING
       ), t AS (
         INSERT INTO tasks (flow_name, run_id, step_name, task_id) SELECT $1::text, $2::bigint, $3::text, $4::text FROM r ON CONFLICT DO NOTHING
       )
       INSERT INTO attempts (flow_name, run_id, step_name, task_id, attempt, ${column})
         SELECT $1::text, $2::bigint, $3::text, $4::text, $5::integer, $6::jsonb FROM r
       ON CONFLICT (flow_name, run_id, step_name, task_id, attempt) DO UPDATE SET ${column} = EXCLUDED.${column} WHERE ${guard}
       RETURNING 1`,
      [key.flow, key.runId, key.step, key.taskId, key.attempt, json, writer],
    );
    if ((r.rowCount ?? 0) > 0) return;
    await this.explainRefusal(key, column, json, writer);
  }

  /** Why `putAttempt` wrote nothing: returns for an identical retry, throws 404, 403 or 409 otherwise. */
  private async explainRefusal(
    key: AttemptKey,
    column: "start_record" | "end_record",
    json: string,
    writer: Writer,
  ): Promise<void> {
    const r = await this.query<{ user_name: string; run_ended: boolean; same: boolean | null }>(
      `SELECT r.user_name, r.end_record IS NOT NULL AS run_ended, a.${column} = $6::jsonb AS same
         FROM runs r LEFT JOIN attempts a
           ON a.flow_name = r.flow_name AND a.run_id = r.run_id AND a.step_name = $3 AND a.task_id = $4 AND a.attempt = $5
        WHERE r.flow_name = $1 AND r.run_id = $2`,
      [key.flow, key.runId, key.step, key.taskId, key.attempt, json],
    );
    const row = r.rows[0];
    if (!row) throw notFound(`Run ${key.flow}/${key.runId}`);
    if (writer !== null && row.user_name !== writer)
      throw notOwner(key.flow, key.runId, row.user_name, writer);
    if (row.same === true) return;
    const side = column === "start_record" ? "start" : "end";
    if (row.run_ended) {
      throw immutable(
        `Run ${key.flow}/${key.runId} has already ended; its tasks and attempts cannot change`,
        `${key.flow}/${key.runId}`,
      );
    }
    throw immutable(
      `The ${describe(key)} has already ended with a different ${side} record; the records of an ended attempt are immutable`,
      describe(key),
    );
  }

  /** Stores one batch of an attempt's artifact index, before its end; write-once like the end itself. */
  async putArtifactBatch(
    key: AttemptKey,
    batch: number,
    refs: readonly ArtifactRef[],
    writer: Writer,
  ): Promise<void> {
    const json = JSON.stringify(refs);
    const r = await this.query(
      `INSERT INTO attempt_artifact_batches (flow_name, run_id, step_name, task_id, attempt, batch, refs)
         SELECT a.flow_name, a.run_id, a.step_name, a.task_id, a.attempt, $6::integer, $7::jsonb
           FROM attempts a JOIN runs r USING (flow_name, run_id)
          WHERE a.flow_name = $1 AND a.run_id = $2 AND a.step_name = $3 AND a.task_id = $4 AND a.attempt = $5
            AND a.end_record IS NULL AND r.end_record IS NULL AND ($8::text IS NULL OR r.user_name = $8::text)
       ON CONFLICT DO NOTHING RETURNING 1`,
      [key.flow, key.runId, key.step, key.taskId, key.attempt, batch, json, writer],
    );
    if ((r.rowCount ?? 0) > 0) return;
    const why = await this.query<{ user_name: string; started: boolean; same: boolean | null }>(
      `SELECT r.user_name, a.attempt IS NOT NULL AS started, b.refs = $6::jsonb AS same
         FROM runs r
         LEFT JOIN attempts a ON a.flow_name = r.flow_name AND a.run_id = r.run_id AND a.step_name = $3 AND a.task_id = $4 AND a.attempt = $5
         LEFT JOIN attempt_artifact_batches b ON b.flow_name = r.flow_name AND b.run_id = r.run_id AND b.step_name = $3
              AND b.task_id = $4 AND b.attempt = $5 AND b.batch = $7
        WHERE r.flow_name = $1 AND r.run_id = $2`,
      [key.flow, key.runId, key.step, key.taskId, key.attempt, json, batch],
    );
    const row = why.rows[0];
    if (!row) throw notFound(`Run ${key.flow}/${key.runId}`);
    if (writer !== null && row.user_name !== writer)
      throw notOwner(key.flow, key.runId, row.user_name, writer);
    if (!row.started) throw notFound(`The start of ${describe(key)}`);
    if (row.same === true) return;
    throw immutable(
      `Batch ${batch} of the artifacts of ${describe(key)} was already recorded differently, or the attempt has ended`,
      describe(key),
    );
  }

  /** The end record with the batches it refers to (`artifactBatches`) merged in front of its own artifacts. */
  private async withBatches(
    key: AttemptKey,
    end: AttemptEnd & { artifactBatches?: number },
  ): Promise<AttemptEnd> {
    const { artifactBatches: count, ...rest } = end;
    if (count === undefined) return end;
    const r = await this.query<{ batch: number; refs: ArtifactRef[] }>(
      `SELECT batch, refs FROM attempt_artifact_batches
        WHERE flow_name = $1 AND run_id = $2 AND step_name = $3 AND task_id = $4 AND attempt = $5 AND batch < $6
        ORDER BY batch`,
      [key.flow, key.runId, key.step, key.taskId, key.attempt, count],
    );
    const missing = Array.from({ length: count }, (_, i) => i).filter(
      (i) => !r.rows.some((row) => row.batch === i),
    );
    if (missing.length > 0) {
      throw badRequest(
        "body.artifactBatches",
        `is ${count}, but batch ${missing.join(", ")} of ${describe(key)} was never received; send every batch before the end`,
      );
    }
    const artifacts = [...r.rows.flatMap((row) => row.refs), ...end.artifacts];
    if (artifacts.length > MAX_ARTIFACTS) {
      throw badRequest(
        "body.artifactBatches",
        `bring the ${describe(key)} to ${artifacts.length} artifacts; at most ${MAX_ARTIFACTS} are allowed`,
      );
    }
    return { ...rest, artifacts };
  }
}
