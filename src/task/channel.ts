/**
 * The pipes between a worker host and its parent, both carrying frames
 * `[magic 0x4d][kind][length u32 BE][payload]`: on fd 3 the parent sends commands (v8-serialized),
 * on fd 4 the host sends a task's output (text frames) and its messages (JSON). There is no IPC
 * channel, so `process.send` does not exist in a host. The host writes synchronously: when the
 * parent stops reading (its console is slow) the pipe fills and a step that prints blocks instead of
 * buffering without bound — backpressure from the console to the step.
 */
import * as fs from "node:fs";

/** The host's file descriptor of the parent's commands. */
export const COMMAND_FD = 3;
/** The host's file descriptor of its output and messages. */
export const CHANNEL_FD = 4;
/** What a frame carries: a task's stdout or stderr text, or a JSON message of the host (`HostReply`). */
export const FrameKind = { Stdout: 1, Stderr: 2, Message: 3 } as const;
/** One of `FrameKind`'s values. */
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

const MAGIC = 0x4d;
const HEADER_BYTES = 6;
/** A task's text is cut into frames of at most this many UTF-16 units (≤ 3 MiB of UTF-8). */
const TEXT_FRAME_CHARS = 1024 * 1024;
/** No frame the host writes is bigger; a bigger length means the stream is not ours. */
const MAX_FRAME_BYTES = 64 * 1024 * 1024;

/** One frame as read. */
export interface Frame {
  readonly kind: FrameKind;
  readonly payload: Buffer;
}

/** Bytes on the channel that are not frames (user code wrote into it). */
export class ChannelError extends Error {}

/** Host side: writes frames, blocking while the parent's pipe is full. */
export class FrameWriter {
  private readonly wait = new Int32Array(new SharedArrayBuffer(4));

  constructor(private readonly fd: number = CHANNEL_FD) {}

  /** Writes text of a stream, in frames small enough for the parent to hold. */
  text(stream: "stdout" | "stderr", text: string): void {
    const kind = stream === "stdout" ? FrameKind.Stdout : FrameKind.Stderr;
    for (let i = 0; i < text.length; ) {
      let end = Math.min(text.length, i + TEXT_FRAME_CHARS);
      // Never split a surrogate pair between two frames.
      if (end < text.length && /[\uD800-\uDBFF]/.test(text[end - 1]!)) end -= 1;
      this.frame(kind, Buffer.from(text.slice(i, end), "utf8"));
      i = end;
    }
  }

  /** Writes one JSON message. */
  message(value: unknown): void {
    this.frame(FrameKind.Message, Buffer.from(JSON.stringify(value), "utf8"));
  }

  /** Writes one frame. */
  frame(kind: FrameKind, payload: Buffer): void {
    const head = Buffer.allocUnsafe(HEADER_BYTES);
    head.writeUInt8(MAGIC, 0);
    head.writeUInt8(kind, 1);
    head.writeUInt32BE(payload.length, 2);
    // One write for small frames keeps a frame whole even if several writers raced.
    if (payload.length <= 64 * 1024) this.writeAll(Buffer.concat([head, payload]));
    else {
      this.writeAll(head);
      this.writeAll(payload);
    }
  }

  private writeAll(buf: Buffer): void {
    for (let off = 0; off < buf.length; ) {
      try {
        off += fs.writeSync(this.fd, buf, off, buf.length - off);
      } catch (err) {
        // A non-blocking pipe that is full: wait a moment, as a blocking write would.
        if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
        Atomics.wait(this.wait, 0, 0, 2);
      }
    }
  }
}

/** A frame as bytes, for a stream that is written asynchronously (the parent's commands). */
export function encodeFrame(kind: FrameKind, payload: Buffer): Buffer {
  const head = Buffer.allocUnsafe(HEADER_BYTES);
  head.writeUInt8(MAGIC, 0);
  head.writeUInt8(kind, 1);
  head.writeUInt32BE(payload.length, 2);
  return Buffer.concat([head, payload]);
}

/** Cuts the bytes read from a pipe into frames. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  /** Adds bytes; returns the complete frames, or throws a ChannelError for bytes that are not frames. */
  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.buffered < HEADER_BYTES) break;
      const head = this.peek(HEADER_BYTES);
      const kind = head.readUInt8(1);
      const length = head.readUInt32BE(2);
      if (head.readUInt8(0) !== MAGIC || kind < FrameKind.Stdout || kind > FrameKind.Message || length > MAX_FRAME_BYTES) {
        throw new ChannelError(`bytes on the host's channel are not a frame (starting ${JSON.stringify(head.toString("latin1"))})`);
      }
      if (this.buffered < HEADER_BYTES + length) break;
      const whole = this.take(HEADER_BYTES + length);
      frames.push({ kind: kind as FrameKind, payload: whole.subarray(HEADER_BYTES) });
    }
    return frames;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    const first = this.chunks[0]!;
    const out = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }
}
