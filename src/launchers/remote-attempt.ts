/**
 * What a remote launcher (Slurm, AWS Batch) learns about an attempt from what `metaflow task`
 * stored, never from the job's output text: the logs it writes to the datastore as it runs (a
 * local file that grows line by line, or an S3 object rewritten every few seconds), followed to
 * the console; the attempt's record in the metadata, read with retries; and the outcome the
 * scheduler is told, from that record or — when the task recorded no end — from the launcher's
 * own account of how the job died.
 */
import { promises as fs } from "node:fs";
import { logKey, parseLog } from "../datastore/logs.js";
import { LocalStorage } from "../datastore/local.js";
import type { StorageBackend } from "../datastore/types.js";
import type { PlainError } from "../errors.js";
import type { MetadataProvider, TaskRecord } from "../metadata/types.js";
import type { TaskSpec } from "../task/protocol.js";
import type { AttemptOutcome } from "./types.js";

const STREAMS = ["stdout", "stderr"] as const;

/** Which attempt's logs to follow. */
export interface TailTarget {
  readonly flow: string;
  readonly runId: string;
  readonly step: string;
  readonly taskId: string;
  readonly attempt: number;
}

/** The new lines of one attempt's stored logs, read from where the last read stopped. */
export class LogTail {
  private readonly offsets = { stdout: 0, stderr: 0 };
  private reading: Promise<void> = Promise.resolve();

  constructor(
    private readonly storage: StorageBackend,
    private readonly target: TailTarget,
    private readonly emit: (stream: "stdout" | "stderr", line: string) => void,
  ) {}

  /** Reads what was added since the last read (one read at a time; a read that fails is retried next time). */
  read(): Promise<void> {
    this.reading = this.reading.then(() => this.readOnce()).catch(() => undefined);
    return this.reading;
  }

  private async readOnce(): Promise<void> {
    for (const stream of STREAMS) {
      const t = this.target;
      const key = logKey(t.flow, t.runId, t.step, t.taskId, t.attempt, stream);
      const buf = await this.newBytes(key, this.offsets[stream]);
      // Stop at the last newline: a line still being written is read whole next time.
      const end = buf.lastIndexOf(0x0a) + 1;
      this.offsets[stream] += end;
      for (const l of parseLog(buf.subarray(0, end).toString("utf8"))) this.emit(stream, l.line);
    }
  }

  private async newBytes(key: string, offset: number): Promise<Buffer> {
    if (!(this.storage instanceof LocalStorage)) {
      // A remote log object is rewritten whole, so it is read whole.
      return ((await this.storage.get(key)) ?? Buffer.alloc(0)).subarray(offset);
    }
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.storage.localPath(key), "r");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return Buffer.alloc(0);
      throw err;
    }
    try {
      const { size } = await handle.stat();
      if (size <= offset) return Buffer.alloc(0);
      const buf = Buffer.alloc(size - offset);
      const { bytesRead } = await handle.read(buf, 0, buf.length, offset);
      return buf.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }
}

/** What an attempt's record says, when it says anything. */
export type AttemptEntry = TaskRecord["attempts"][number];

/**
 * The record of the spec's attempt, or undefined when the task never recorded its start. A read
 * that fails is tried again a few times: concluding "not recorded" from a service that blinked
 * would record a second end for an attempt that has one.
 */
export async function readAttempt(
  metadata: MetadataProvider,
  spec: TaskSpec,
  tries = 4,
): Promise<AttemptEntry | undefined> {
  for (let i = 1; ; i++) {
    try {
      const record = await metadata.getTask(spec.flowName, spec.runId, spec.step, spec.taskId);
      return record?.attempts.find((a) => a.start.attempt === spec.attempt);
    } catch (err) {
      if (i >= tries) throw err;
      await new Promise((resolve) => setTimeout(resolve, 500 * i));
    }
  }
}

/**
 * How an attempt ended, from its record: what the task recorded, or — when it recorded no end (its
 * job was killed, cancelled or never started) — `unrecorded()`, the launcher's account of the job,
 * and the scheduler is told to record the end (or the whole attempt, when the task never started).
 */
export async function outcomeFromRecord(
  spec: TaskSpec,
  entry: AttemptEntry | undefined,
  unrecorded: () => Promise<PlainError> | PlainError,
): Promise<AttemptOutcome> {
  const end = entry?.end;
  if (end?.status === "completed" && end.transition)
    return { ok: true, artifacts: end.artifacts, transition: end.transition };
  if (end)
    return {
      ok: false,
      error: end.error ?? {
        name: "TaskError",
        message: `Step '${spec.step}' failed without an error message`,
      },
    };
  return { ok: false, error: await unrecorded(), unrecorded: entry ? "end" : "attempt" };
}

/** The outcome when the attempt's record could not be read: `job` says which job ended. */
export function unreadableRecord(spec: TaskSpec, job: string, err: unknown): AttemptOutcome {
  const message = `Step '${spec.step}': could not read the record of attempt ${spec.attempt} to learn how ${job} ended: ${(err as Error).message}`;
  return { ok: false, error: { name: "MetadataError", message } };
}

/** Follows one attempt's stored logs onto `emit`, line by line. */
export function attemptLogTail(
  storage: StorageBackend,
  spec: TaskSpec,
  emit: (stream: "stdout" | "stderr", line: string) => void,
): LogTail {
  const { flowName: flow, runId, step, taskId, attempt } = spec;
  return new LogTail(storage, { flow, runId, step, taskId, attempt }, emit);
}
