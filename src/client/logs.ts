/**
 * Reading a task's logs: whole (a finished attempt) or followed line by line while the task runs,
 * across retries, until the attempt that counts has ended.
 */
import { promises as fs } from "node:fs";
import { LocalStorage } from "../datastore/local.js";
import { logKey, parseLog } from "../datastore/logs.js";
import type { ClientContext } from "./context.js";

/** One line of a task's output. */
export interface LogLine {
  readonly stream: "stdout" | "stderr";
  /** ISO timestamp of when the task wrote the line. */
  readonly time: string;
  readonly line: string;
  /** The attempt that wrote it (0 is the first try). */
  readonly attempt: number;
}

/** Which task's logs to read. */
export interface LogTarget {
  readonly flow: string;
  readonly runId: string;
  readonly step: string;
  readonly taskId: string;
}

/** Options of reading or following logs. */
export interface LogOptions {
  /** Streams to read. @default ["stdout", "stderr"] */
  readonly streams?: readonly ("stdout" | "stderr")[];
  /** Attempt to read. @default the latest */
  readonly attempt?: number;
  /** How often a followed log is polled, in ms. @default 200 */
  readonly pollMs?: number;
  /** Stops following. */
  readonly signal?: AbortSignal;
}

const ALL_STREAMS = ["stdout", "stderr"] as const;

/** How much of a log file is read at once: memory stays bounded whatever the log's size. */
const READ_CHUNK = 1024 * 1024;

/**
 * One attempt's lines as they are now, stdout and stderr merged in time order, read in chunks: a
 * local log is never held whole in memory (a remote one is fetched whole, then cut lazily).
 */
export async function* streamLogs(ctx: ClientContext, t: LogTarget, attempt: number, streams: readonly ("stdout" | "stderr")[] = ALL_STREAMS): AsyncGenerator<LogLine> {
  const sources = streams.map((stream) => linesOf(ctx, logKey(t.flow, t.runId, t.step, t.taskId, attempt, stream), stream, attempt)[Symbol.asyncIterator]());
  const heads = await Promise.all(sources.map((it) => it.next()));
  for (;;) {
    // Each stream is in time order: take the earliest head (stdout first on a tie).
    let pick = -1;
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i]!;
      if (!h.done && (pick < 0 || h.value.time < (heads[pick]!.value as LogLine).time)) pick = i;
    }
    if (pick < 0) return;
    yield heads[pick]!.value as LogLine;
    heads[pick] = await sources[pick]!.next();
  }
}

/** Reads one attempt's logs as they are now, stdout and stderr merged in time order. */
export async function readLogs(ctx: ClientContext, t: LogTarget, attempt: number, streams: readonly ("stdout" | "stderr")[] = ALL_STREAMS): Promise<LogLine[]> {
  const out: LogLine[] = [];
  for await (const l of streamLogs(ctx, t, attempt, streams)) out.push(l);
  return out;
}

/** The lines of one stored log, in order. */
async function* linesOf(ctx: ClientContext, key: string, stream: "stdout" | "stderr", attempt: number): AsyncGenerator<LogLine> {
  const file = ctx.storage instanceof LocalStorage ? ctx.storage.localPath(key) : undefined;
  if (file === undefined) {
    const whole = await ctx.storage.get(key);
    if (whole) yield* cut(whole, stream, attempt);
    return;
  }
  let offset = 0;
  for (;;) {
    const { text, next, more } = await readChunk(file, offset);
    offset = next;
    yield* cut(text, stream, attempt);
    if (!more) return;
  }
}

/** Parses complete lines of a buffer one at a time, without decoding the whole buffer at once. */
function* cut(buf: Buffer, stream: "stdout" | "stderr", attempt: number): Generator<LogLine> {
  for (let start = 0; start < buf.length; ) {
    let end = buf.indexOf(0x0a, start);
    if (end < 0) end = buf.length;
    if (end > start) {
      for (const l of parseLog(buf.toString("utf8", start, end))) yield { stream, time: l.time, line: l.line, attempt };
    }
    start = end + 1;
  }
}

/**
 * Yields a task's log lines, then keeps polling for new ones until the task's final attempt has
 * ended: a failed attempt that will be retried hands over to the next one. Stops early when the
 * process that runs the attempt is gone without recording an end.
 */
export async function* followLogs(ctx: ClientContext, t: LogTarget, options: LogOptions = {}): AsyncGenerator<LogLine> {
  const streams = options.streams ?? ALL_STREAMS;
  const pollMs = options.pollMs ?? 200;
  let attempt = options.attempt ?? (await latestAttempt(ctx, t)) ?? 0;
  const offsets = { stdout: 0, stderr: 0 };
  let deadSince: number | undefined;
  while (!options.signal?.aborted) {
    const record = await ctx.metadata.getTask(t.flow, t.runId, t.step, t.taskId);
    const entry = record?.attempts.find((a) => a.start.attempt === attempt);
    // Read after the metadata, so the lines written before an attempt's end are all seen. A big
    // backlog is read a chunk at a time, without waiting and without asking for the record again.
    for (let more = true; more && !options.signal?.aborted; ) {
      const fresh: LogLine[][] = [];
      more = false;
      for (const stream of streams) {
        const read = await readFrom(ctx, logKey(t.flow, t.runId, t.step, t.taskId, attempt, stream), offsets, stream);
        more ||= read.more;
        fresh.push([...cut(read.text, stream, attempt)]);
      }
      yield* mergeByTime(fresh);
    }
    if (entry?.end) {
      if (options.attempt !== undefined || entry.end.status === "completed") return;
      const next = record?.attempts.find((a) => a.start.attempt === attempt + 1);
      if (next) {
        attempt += 1;
        offsets.stdout = offsets.stderr = 0;
        continue;
      }
      // A failed attempt is final once the run has ended; until then a retry may still start.
      if (await ctx.metadata.getRunEnd(t.flow, t.runId)) return;
    } else if (entry && !isAlive(entry.start.pid)) {
      // The scheduler records the end right after the host reports it; a short grace covers that gap.
      deadSince ??= Date.now();
      if (Date.now() - deadSince > 3000) return;
    } else if (!entry && (await ctx.metadata.getRunEnd(t.flow, t.runId))) {
      return;
    }
    await sleep(pollMs, options.signal);
  }
}

/** The number of the task's latest attempt, or undefined when none has started. */
export async function latestAttempt(ctx: ClientContext, t: LogTarget): Promise<number | undefined> {
  const record = await ctx.metadata.getTask(t.flow, t.runId, t.step, t.taskId);
  return record?.attempts[record.attempts.length - 1]?.start.attempt;
}

/** The next complete lines of a log past `offsets[stream]` (a bounded chunk), advancing the offset. */
async function readFrom(
  ctx: ClientContext,
  key: string,
  offsets: Record<"stdout" | "stderr", number>,
  stream: "stdout" | "stderr",
): Promise<{ text: Buffer; more: boolean }> {
  // Only a local datastore's files grow in place; a remote backend's local paths are a cache of
  // content objects, which logs never are.
  const file = ctx.storage instanceof LocalStorage ? ctx.storage.localPath(key) : undefined;
  if (file === undefined) {
    // A remote log (uploaded as it grows, or at the end) is fetched whole.
    const buf = ((await ctx.storage.get(key)) ?? Buffer.alloc(0)).subarray(offsets[stream]);
    // Stop at the last newline: a line still being written is read whole on the next poll.
    const end = buf.lastIndexOf(0x0a) + 1;
    offsets[stream] += end;
    return { text: buf.subarray(0, end), more: false };
  }
  const { text, next, more } = await readChunk(file, offsets[stream]);
  offsets[stream] = next;
  return { text, more };
}

/**
 * Up to about READ_CHUNK bytes of complete lines of a local file from `offset`: the offset after
 * them, and whether more complete lines may follow. A line longer than a chunk is read whole.
 */
async function readChunk(file: string, offset: number): Promise<{ text: Buffer; next: number; more: boolean }> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { text: Buffer.alloc(0), next: offset, more: false };
    throw err;
  }
  try {
    const { size } = await handle.stat();
    for (let want = READ_CHUNK; ; want *= 2) {
      const length = Math.min(want, size - offset);
      if (length <= 0) return { text: Buffer.alloc(0), next: offset, more: false };
      const buf = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buf, 0, length, offset);
      // Stop at the last newline: a line still being written is read whole on the next poll.
      const end = buf.subarray(0, bytesRead).lastIndexOf(0x0a) + 1;
      const atEnd = offset + bytesRead >= size;
      if (end > 0 || atEnd) return { text: buf.subarray(0, end), next: offset + end, more: !atEnd };
    }
  } finally {
    await handle.close();
  }
}

function mergeByTime(parts: LogLine[][]): LogLine[] {
  const all = parts.flat();
  // Array.prototype.sort is stable, so lines of one stream keep their order.
  return parts.length > 1 ? all.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0)) : all;
}

/** Whether a local process with this pid exists (the host that runs a task attempt). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
