/**
 * A task attempt's stdout and stderr: split into lines, shown on the console with the task's
 * prefix as they arrive, and stored with a timestamp per line. On a local datastore the log files
 * grow line by line; on a remote one the log object is rewritten every few seconds and at the end,
 * so `metaflow logs` can follow a running task on both.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalStorage } from "./local.js";
import type { StorageBackend } from "./types.js";

/** File name of an attempt's log for one stream. */
export function logFileName(attempt: number, stream: "stdout" | "stderr"): string {
  return `attempt-${attempt}.${stream}.log`;
}

/** Storage key of an attempt's log for one stream. */
export function logKey(flow: string, runId: string, step: string, taskId: string, attempt: number, stream: "stdout" | "stderr"): string {
  return `flows/${flow}/${runId}/${step}/${taskId}/${logFileName(attempt, stream)}`;
}

const REMOTE_FLUSH_MS = 3000;

const drains = new WeakMap<NodeJS.WritableStream, Promise<void>>();

/**
 * While one of `streams` holds more than its buffer (a slow disk, a slow reader of a pipe), a
 * promise of its drain; else undefined. One listener per stream however many wait on it; a stream
 * that fails or closes (its reader went away) never drains, so the wait ends then too.
 */
export function pressureOf(streams: readonly (NodeJS.WritableStream & { readonly writableNeedDrain: boolean })[]): Promise<void> | undefined {
  const full = streams.find((s) => s.writableNeedDrain);
  if (!full) return undefined;
  let drained = drains.get(full);
  if (!drained) {
    drained = new Promise((resolve) => {
      const done = () => {
        drains.delete(full);
        for (const event of ["drain", "error", "close"]) full.off(event, done);
        resolve();
      };
      for (const event of ["drain", "error", "close"]) full.once(event, done);
    });
    drains.set(full, drained);
  }
  return drained;
}

/** Writes one attempt's logs. */
export class AttemptLogs {
  private readonly partial = { stdout: "", stderr: "" };
  private readonly files: Partial<Record<"stdout" | "stderr", fs.WriteStream>> = {};
  private readonly buffered: Record<"stdout" | "stderr", string[]> = { stdout: [], stderr: [] };
  private dirty = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private closed = false;
  /** The first failure to store the log: said once on the console, never the task's failure. */
  private storeError: unknown;

  /**
   * @param keyPrefix storage key of the task, e.g. `flows/F/1/start/1`
   */
  constructor(
    private readonly storage: StorageBackend,
    private readonly keyPrefix: string,
    private readonly attempt: number,
    private readonly show: (stream: "stdout" | "stderr", line: string) => void,
  ) {}

  /** Adds raw text from the task; complete lines are shown and stored. */
  write(stream: "stdout" | "stderr", text: string): void {
    const lines = (this.partial[stream] + text).split("\n");
    this.partial[stream] = lines.pop() ?? "";
    for (const line of lines) this.line(stream, line);
  }

  /** A promise while a log file's write buffer is full (a slow disk), else undefined. */
  pressure(): Promise<void> | undefined {
    return pressureOf(Object.values(this.files));
  }

  /** Adds one whole line (runtime messages such as a caught exception). */
  line(stream: "stdout" | "stderr", line: string): void {
    this.show(stream, line);
    if (this.closed) {
      // A line that arrives after the attempt ended (a late warning) is appended to the stored log.
      void appendLogLine(this.storage, this.key(stream), line).catch((err: unknown) => this.storeFailed(err));
      return;
    }
    const stored = `${new Date().toISOString()}\t${line}\n`;
    if (this.storage instanceof LocalStorage) {
      let f = this.files[stream];
      if (!f) {
        const file = this.storage.localPath(this.key(stream));
        try {
          fs.mkdirSync(path.dirname(file), { recursive: true });
        } catch (err) {
          this.storeFailed(err);
          return;
        }
        f = fs.createWriteStream(file, { flags: "a" });
        f.on("error", (err) => this.storeFailed(err));
        this.files[stream] = f;
      }
      if (!f.destroyed) f.write(stored);
      return;
    }
    this.buffered[stream].push(stored);
    this.dirty = true;
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      this.flushing = this.flushing.then(() => this.flushRemote()).catch((err: unknown) => this.storeFailed(err));
    }, REMOTE_FLUSH_MS);
  }

  private key(stream: "stdout" | "stderr"): string {
    return `${this.keyPrefix}/${logFileName(this.attempt, stream)}`;
  }

  private async flushRemote(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    try {
      await Promise.all(
        (["stdout", "stderr"] as const)
          .filter((s) => this.buffered[s].length > 0)
          .map((s) => this.storage.put(this.key(s), Buffer.from(this.buffered[s].join("")))),
      );
    } catch (err) {
      // The whole log is written each time: the next flush (at the latest, close) tries again.
      this.dirty = true;
      throw err;
    }
  }

  private storeFailed(err: unknown): void {
    if (this.storeError !== undefined) return;
    this.storeError = err;
    this.show("stderr", `Warning: cannot store this task's log under ${this.keyPrefix}: ${(err as Error).message ?? String(err)}`);
  }

  /** Flushes unterminated lines and closes the files. */
  async close(): Promise<void> {
    for (const stream of ["stdout", "stderr"] as const) {
      if (this.partial[stream] !== "") {
        const rest = this.partial[stream];
        this.partial[stream] = "";
        this.line(stream, rest);
      }
    }
    this.closed = true;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    await this.flushing;
    await this.flushRemote().catch((err: unknown) => this.storeFailed(err));
    await Promise.all(
      Object.values(this.files).map((f) => new Promise<void>((resolve) => (f.destroyed ? resolve() : f.end(() => resolve())))),
    );
  }
}

/**
 * Appends one line to an attempt's log after the attempt ended (a warning about it): a local log
 * file grows in place; a remote log object is rewritten with the line added.
 */
export async function appendLogLine(storage: StorageBackend, key: string, line: string): Promise<void> {
  const stored = Buffer.from(`${new Date().toISOString()}\t${line}\n`);
  if (storage instanceof LocalStorage) {
    const file = storage.localPath(key);
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    await fs.promises.appendFile(file, stored);
    return;
  }
  const old = await storage.get(key);
  await storage.put(key, old ? [old, stored] : stored);
}

/** Parses a stored log file into lines, with or without their timestamps. */
export function parseLog(text: string): Array<{ time: string; line: string }> {
  const out: Array<{ time: string; line: string }> = [];
  for (const raw of text.split("\n")) {
    if (raw === "") continue;
    const tab = raw.indexOf("\t");
    out.push(tab > 0 ? { time: raw.slice(0, tab), line: raw.slice(tab + 1) } : { time: "", line: raw });
  }
  return out;
}
