/**
 * The service's own database as a read-mostly `MetadataProvider`, for what runs inside the
 * service process (the team UI of `metaflow service --ui`): the same answers `ServiceMetadata`
 * gets over HTTP, without a round trip to itself. Runs are only read; tags may be edited.
 */
import { DatastoreError } from "../errors.js";
import { SystemTagError, type TagChange } from "../metadata/tags.js";
import type { AttemptEnd, AttemptStart, MetadataProvider, RunEnd, RunRecord, TaskRecord } from "../metadata/types.js";
import type { MetadataStore } from "./store.js";
import { HttpError } from "./validate.js";

/** Reads (and edits tags) straight from the service's PostgreSQL store. */
export class StoreMetadata implements MetadataProvider {
  constructor(private readonly store: MetadataStore) {}

  private readOnly(what: string): never {
    throw new DatastoreError(`The service's UI reads runs; it cannot ${what}`);
  }

  newRun(_record: Omit<RunRecord, "runId">): Promise<string> {
    return this.readOnly("start runs");
  }

  startAttempt(_f: string, _r: string, _s: string, _t: string, _start: AttemptStart): Promise<void> {
    return this.readOnly("record attempts");
  }

  endAttempt(_f: string, _r: string, _s: string, _t: string, _end: AttemptEnd): Promise<void> {
    return this.readOnly("record attempts");
  }

  finishRun(_f: string, _r: string, _end: RunEnd): Promise<void> {
    return this.readOnly("finish runs");
  }

  listFlows(): Promise<string[]> {
    return this.store.listFlows();
  }

  listRuns(flow: string): Promise<string[]> {
    return this.store.listRuns(flow);
  }

  async getRun(flow: string, runId: string): Promise<RunRecord | undefined> {
    return (await this.store.getRun(flow, runId))?.run;
  }

  /** The run's end; a run whose heartbeats stopped reads as failed, as `ServiceMetadata` has it. */
  async getRunEnd(flow: string, runId: string): Promise<RunEnd | undefined> {
    const view = await this.store.getRun(flow, runId);
    if (!view) return undefined;
    if (view.end) return view.end;
    if (!view.heartbeatExpired) return undefined;
    return {
      status: "failed",
      finishedAt: view.lastHeartbeat,
      error: {
        name: "HeartbeatTimeout",
        code: "heartbeat-timeout",
        message: `Run ${flow}/${runId} has sent no heartbeat since ${new Date(view.lastHeartbeat).toISOString()} and recorded no end: the process running it stopped`,
      },
    };
  }

  listSteps(flow: string, runId: string): Promise<string[]> {
    return this.store.listSteps(flow, runId);
  }

  listTasks(flow: string, runId: string, step: string): Promise<string[]> {
    return this.store.listTasks(flow, runId, step);
  }

  getTask(flow: string, runId: string, step: string, taskId: string): Promise<TaskRecord | undefined> {
    return this.store.getTask(flow, runId, step, taskId);
  }

  async getTags(flow: string, runId: string): Promise<string[]> {
    return (await this.store.getTags(flow, runId)).tags;
  }

  async updateTags(flow: string, runId: string, change: TagChange): Promise<string[]> {
    try {
      return await this.store.updateTags(flow, runId, change);
    } catch (err) {
      if (err instanceof HttpError && err.code === "system-tag") throw new SystemTagError(String(err.detail.tag ?? ""), `${flow}/${runId}`);
      throw err;
    }
  }
}
