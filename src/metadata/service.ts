/**
 * The `service` metadata provider: an HTTP client of `metaflow service`. It retries connection
 * errors and 5xx answers with backoff long enough to ride out a service or PostgreSQL restart,
 * fails at once with the service's message on a 4xx, and keeps each run it starts alive with
 * heartbeats so a run whose process dies shows as failed instead of running forever.
 */
import { randomUUID } from "node:crypto";
import { MetaflowError, RecordConflictError } from "../errors.js";
import { MAX_REQUEST_BYTES, artifactBatches } from "./batches.js";
import { SystemTagError, validateTag, type TagChange } from "./tags.js";
import type {
  AttemptEnd,
  AttemptStart,
  MetadataProvider,
  NewRunOptions,
  RunEnd,
  RunRecord,
  TaskRecord,
} from "./types.js";

/** How to reach the service. */
export interface ServiceMetadataOptions {
  /** Base URL of the service, e.g. `http://metadata.internal:8080` (`METAFLOW_SERVICE_URL`). */
  readonly url: string;
  /** The bearer token (`METAFLOW_SERVICE_AUTH_TOKEN`); a `Secret` from the config works too. */
  readonly token: string | { reveal(): string };
  /** How long to keep retrying one call on connection errors and 5xx before failing. @default 60000 */
  readonly retryTimeoutMs?: number;
  /** How long one HTTP request may take before it is abandoned and retried. @default 30000 */
  readonly requestTimeoutMs?: number;
  /** How often a run started by this provider sends a heartbeat. @default 5000 */
  readonly heartbeatIntervalMs?: number;
}

/** The metadata service could not be reached, or rejected a request; `status` is the HTTP status (0 when unreachable). */
export class MetadataServiceError extends MetaflowError {
  constructor(
    code: string,
    headline: string,
    message: string,
    readonly status: number,
    /** The service's own error code, e.g. `invalid-input`, `not-found`, `body-too-large`. */
    readonly serviceCode = "",
    /** Extra fields of the service's error, e.g. the offending `tag`. */
    readonly detail: Readonly<Record<string, string>> = {},
  ) {
    super(code, headline, message);
  }
}

/** A run's status as the service computes it from its end record and heartbeats. */
export interface ServiceRunStatus {
  readonly status: "running" | "completed" | "failed";
  /** Milliseconds since the epoch of the last heartbeat. */
  readonly lastHeartbeat: number;
  /** True when the run has no end and stopped sending heartbeats. */
  readonly heartbeatExpired: boolean;
}

interface RunView extends ServiceRunStatus {
  readonly run: RunRecord;
  readonly end: RunEnd | null;
}

interface ErrorBody {
  error?: { code?: string; message?: string; [field: string]: unknown };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The message of a fetch failure, including its cause (`ECONNREFUSED ...`), which carries the useful part. */
function describeFailure(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  const cause = e.cause ? ` (${e.cause.code ?? e.cause.message ?? String(e.cause)})` : "";
  return `${e.message ?? String(err)}${cause}`;
}

/** Metadata kept by a `metaflow service` instance shared by a team. */
export class ServiceMetadata implements MetadataProvider {
  /** Base URL without a trailing slash. */
  readonly url: string;
  // A private field, so the token never shows in `console.log(provider)` or JSON.
  readonly #token: string;
  private readonly retryTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly heartbeatIntervalMs: number;
  private readonly heartbeats = new Map<string, NodeJS.Timeout>();

  constructor(options: ServiceMetadataOptions) {
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new MetadataServiceError(
        "metadata-service-config",
        "Bad metadata service URL",
        `METAFLOW_SERVICE_URL must be an http(s) URL, got ${JSON.stringify(options.url)}`,
        0,
      );
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new MetadataServiceError(
        "metadata-service-config",
        "Bad metadata service URL",
        `METAFLOW_SERVICE_URL must be an http(s) URL, got ${JSON.stringify(options.url)}`,
        0,
      );
    }
    this.url = url.toString().replace(/\/+$/, "");
    this.#token = typeof options.token === "string" ? options.token : options.token.reveal();
    if (!this.#token) {
      throw new MetadataServiceError(
        "metadata-service-config",
        "No metadata service token",
        "Set METAFLOW_SERVICE_AUTH_TOKEN to the token of the metadata service",
        0,
      );
    }
    this.retryTimeoutMs = options.retryTimeoutMs ?? 60_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 5000;
  }

  private endpoint(segments: readonly string[]): string {
    return `${this.url}/api/v1/${segments.map(encodeURIComponent).join("/")}`;
  }

  /**
   * One API call with retries. Returns the JSON answer, `undefined` for 204, or `undefined` for a
   * 404 `not-found` when `notFoundOk`; throws a `MetadataServiceError` otherwise.
   */
  private async call<T>(
    method: "GET" | "POST" | "PUT",
    segments: readonly string[],
    /** `json`: a body already serialized, sent as is instead of `body`. */
    options: { body?: unknown; json?: string; notFoundOk?: boolean; headers?: Record<string, string> } = {},
  ): Promise<T | undefined> {
    const url = this.endpoint(segments);
    const what = `${method} /api/v1/${segments.join("/")}`;
    const body = options.json ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.#token}`,
      accept: "application/json",
      ...options.headers,
    };
    if (body !== undefined) headers["content-type"] = "application/json";
    const started = Date.now();
    let lastProblem = "";
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await fetch(url, {
          method,
          headers,
          body,
          signal: AbortSignal.timeout(this.requestTimeoutMs),
        });
        if (res.ok) {
          if (res.status === 204) return undefined;
          return (await res.json()) as T;
        }
        const text = await res.text();
        let parsed: ErrorBody = {};
        try {
          parsed = JSON.parse(text) as ErrorBody;
        } catch {
          // Not our service's JSON (a proxy's HTML page, say): report the raw text below.
        }
        const code = parsed.error?.code ?? "";
        const message = parsed.error?.message ?? text.slice(0, 200);
        if (res.status >= 500 || res.status === 429) {
          lastProblem = `HTTP ${res.status}: ${message}`;
        } else {
          if (res.status === 404 && code === "not-found" && options.notFoundOk) return undefined;
          if (res.status === 409 && code === "immutable") {
            const record = typeof parsed.error?.record === "string" ? parsed.error.record : what;
            throw new RecordConflictError(record, `${message} (the metadata service at ${this.url} refused ${what})`);
          }
          if (res.status === 401) {
            throw new MetadataServiceError(
              "metadata-service-auth",
              `The metadata service at ${this.url} rejected the token`,
              `${message}. Check METAFLOW_SERVICE_AUTH_TOKEN.`,
              401,
            );
          }
          throw new MetadataServiceError(
            "metadata-service-rejected",
            `The metadata service rejected ${what}`,
            `${message} (HTTP ${res.status}${code ? ` ${code}` : ""})`,
            res.status,
            code,
            Object.fromEntries(
              Object.entries(parsed.error ?? {}).filter(
                (e): e is [string, string] => typeof e[1] === "string",
              ),
            ),
          );
        }
      } catch (err) {
        if (err instanceof MetaflowError) throw err;
        // Refused or reset connections and timeouts: the service or its database is restarting.
        lastProblem = describeFailure(err);
      }
      const delay = Math.min(100 * 2 ** attempt, 2000) * (0.75 + Math.random() * 0.5);
      if (Date.now() - started + delay > this.retryTimeoutMs) {
        throw new MetadataServiceError(
          "metadata-service-unavailable",
          `The metadata service at ${this.url} is unavailable`,
          `${what} failed for ${Math.round((Date.now() - started) / 1000)} s (${attempt + 1} tries); last error: ${lastProblem}`,
          0,
        );
      }
      await sleep(delay);
    }
  }

  /**
   * Allocates a run id on the service (unique under concurrency) and starts the run's heartbeats
   * (none for a run an orchestrator drives).
   */
  async newRun(record: Omit<RunRecord, "runId">, options: NewRunOptions = {}): Promise<string> {
    // The key makes a retry after a lost response return the run the first try created; a
    // caller's own key does the same across processes.
    const answer = await this.call<{ runId: string }>("POST", ["flows", record.flow, "runs"], {
      body: record,
      headers: { "idempotency-key": options.idempotencyKey ?? randomUUID() },
    });
    const runId = answer!.runId;
    if (record.orchestrator === undefined) this.startHeartbeat(record.flow, runId);
    return runId;
  }

  /** Sends one heartbeat for a run now; `newRun` schedules these by itself. */
  async heartbeat(flow: string, runId: string): Promise<void> {
    await this.call("POST", ["flows", flow, "runs", runId, "heartbeat"]);
  }

  private startHeartbeat(flow: string, runId: string): void {
    const key = `${flow}/${runId}`;
    let inFlight = false;
    const timer = setInterval(() => {
      if (inFlight) return;
      inFlight = true;
      // One try per tick, without the long retry: a missed beat is covered by the next one, and
      // queued retries would pile up during an outage.
      fetch(this.endpoint(["flows", flow, "runs", runId, "heartbeat"]), {
        method: "POST",
        headers: { authorization: `Bearer ${this.#token}` },
        signal: AbortSignal.timeout(Math.max(this.heartbeatIntervalMs, 1000)),
      })
        .then((res) => res.arrayBuffer())
        .catch(() => undefined)
        .finally(() => {
          inFlight = false;
        });
    }, this.heartbeatIntervalMs);
    // Heartbeats must never keep a finished process alive.
    timer.unref();
    this.heartbeats.set(key, timer);
  }

  private stopHeartbeat(flow: string, runId: string): void {
    const key = `${flow}/${runId}`;
    clearInterval(this.heartbeats.get(key));
    this.heartbeats.delete(key);
  }

  /** Stops every heartbeat this provider sends (the runs then show as failed unless finished). */
  close(): void {
    for (const timer of this.heartbeats.values()) clearInterval(timer);
    this.heartbeats.clear();
  }

  async startAttempt(
    flow: string,
    runId: string,
    step: string,
    taskId: string,
    start: AttemptStart,
  ): Promise<void> {
    await this.#putAttempt(flow, runId, step, taskId, start.attempt, "start", start);
  }

  async endAttempt(
    flow: string,
    runId: string,
    step: string,
    taskId: string,
    end: AttemptEnd,
  ): Promise<void> {
    await this.#putAttempt(flow, runId, step, taskId, end.attempt, "end", end);
  }

  /** Records one side (start or end) of an attempt. */
  async #putAttempt(
    flow: string,
    runId: string,
    step: string,
    taskId: string,
    attempt: number,
    side: "start" | "end",
    body: AttemptStart | AttemptEnd,
  ): Promise<void> {
    const path = [
      ...stepPath(flow, runId, step),
      "tasks",
      taskId,
      "attempts",
      String(attempt),
      side,
    ];
    // Serialized once: measured here, and sent as is when it fits (a start always does).
    const text = JSON.stringify(body);
    if (side === "start" || Buffer.byteLength(text) <= MAX_REQUEST_BYTES) {
      await this.call("PUT", path, { json: text });
      return;
    }
    // An index too big for one request goes first in batches; the end then names how many.
    const batches = artifactBatches((body as AttemptEnd).artifacts);
    const base = path.slice(0, -1);
    for (const [i, artifacts] of batches.entries()) {
      await this.call("PUT", [...base, "artifacts", String(i)], { body: { artifacts } });
    }
    await this.call("PUT", path, { body: { ...body, artifacts: [], artifactBatches: batches.length } });
  }

  async finishRun(flow: string, runId: string, end: RunEnd): Promise<void> {
    this.stopHeartbeat(flow, runId);
    await this.call("PUT", ["flows", flow, "runs", runId, "end"], { body: end });
  }

  async listFlows(): Promise<string[]> {
    return (await this.call<{ flows: string[] }>("GET", ["flows"]))!.flows;
  }

  async listRuns(flow: string): Promise<string[]> {
    return (await this.call<{ runs: string[] }>("GET", ["flows", flow, "runs"]))!.runs;
  }

  private getRunView(flow: string, runId: string): Promise<RunView | undefined> {
    return this.call<RunView>("GET", ["flows", flow, "runs", runId], { notFoundOk: true });
  }

  async getRun(flow: string, runId: string): Promise<RunRecord | undefined> {
    return (await this.getRunView(flow, runId))?.run;
  }

  /** The run's end; a run whose heartbeats stopped without an end reads as failed. */
  async getRunEnd(flow: string, runId: string): Promise<RunEnd | undefined> {
    const view = await this.getRunView(flow, runId);
    if (!view) return undefined;
    if (view.end) return view.end;
    // A run an orchestrator drives has no process to send heartbeats; it records its own end.
    if (!view.heartbeatExpired || view.run.orchestrator !== undefined) return undefined;
    const since = new Date(view.lastHeartbeat).toISOString();
    return {
      status: "failed",
      finishedAt: view.lastHeartbeat,
      error: {
        name: "HeartbeatTimeout",
        code: "heartbeat-timeout",
        message: `Run ${flow}/${runId} has sent no heartbeat since ${since} and recorded no end: the process running it stopped`,
      },
    };
  }

  /** The run's status as the service computes it, or undefined when there is no such run. */
  async getRunStatus(flow: string, runId: string): Promise<ServiceRunStatus | undefined> {
    const view = await this.getRunView(flow, runId);
    return (
      view && {
        status: view.status,
        lastHeartbeat: view.lastHeartbeat,
        heartbeatExpired: view.heartbeatExpired,
      }
    );
  }

  async listSteps(flow: string, runId: string): Promise<string[]> {
    return (await this.call<{ steps: string[] }>("GET", ["flows", flow, "runs", runId, "steps"]))!
      .steps;
  }

  async listTasks(flow: string, runId: string, step: string): Promise<string[]> {
    return (await this.call<{ tasks: string[] }>("GET", [...stepPath(flow, runId, step), "tasks"]))!
      .tasks;
  }

  async getTask(
    flow: string,
    runId: string,
    step: string,
    taskId: string,
  ): Promise<TaskRecord | undefined> {
    return this.call<TaskRecord>("GET", [...stepPath(flow, runId, step), "tasks", taskId], {
      notFoundOk: true,
    });
  }

  async getTags(flow: string, runId: string): Promise<string[]> {
    const answer = await this.call<{ tags: string[] }>(
      "GET",
      ["flows", flow, "runs", runId, "tags"],
      { notFoundOk: true },
    );
    if (!answer)
      throw new MetadataServiceError(
        "metadata-service-rejected",
        `Run ${flow}/${runId} does not exist`,
        `Run ${flow}/${runId} does not exist in the metadata service at ${this.url}`,
        404,
        "not-found",
      );
    return answer.tags;
  }

  async updateTags(flow: string, runId: string, change: TagChange): Promise<string[]> {
    // Same errors as the local provider for bad tags, before any network round trip.
    for (const t of change.add ?? []) validateTag(t);
    const body = { add: change.add ?? [], remove: change.remove ?? [] };
    try {
      return (await this.call<{ tags: string[] }>("POST", ["flows", flow, "runs", runId, "tags"], {
        body,
      }))!.tags;
    } catch (err) {
      if (err instanceof MetadataServiceError && err.serviceCode === "system-tag")
        throw new SystemTagError(err.detail.tag ?? "", `${flow}/${runId}`);
      throw err;
    }
  }
}

/** The URL path segments of a step of a run. */
function stepPath(flow: string, runId: string, step: string): string[] {
  return ["flows", flow, "runs", runId, "steps", step];
}
