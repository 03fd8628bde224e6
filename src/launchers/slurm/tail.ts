/**
 * Follows the logs a remote attempt stores (`metaflow task` writes them to the datastore as it
 * runs: a local file that grows line by line, or an S3 object rewritten every few seconds) and
 * hands each new complete line to the console.
 */
import { promises as fs } from "node:fs";
import { logKey, parseLog } from "../../datastore/logs.js";
import { LocalStorage } from "../../datastore/local.js";
import type { StorageBackend } from "../../datastore/types.js";

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
