/**
 * Synchronous reads of big local objects that still overlap reading with hashing. A step reads an
 * artifact through a synchronous property, so the read cannot await; on one thread it would read
 * the whole file and only then hash it. A helper thread does the read the async way (one slice
 * read by the thread pool while the previous one is hashed) and hands the bytes over without a copy
 * (the buffer is transferred), while the step's thread waits.
 */
import { MessageChannel, Worker, receiveMessageOnPort } from "node:worker_threads";

/** What the helper found: the payload and its sha256, or why it could not read the file. */
type ReadReply =
  | { readonly ok: true; readonly payload: ArrayBuffer; readonly hash: string; readonly head: number[]; readonly size: number }
  | { readonly ok: false; readonly code?: string; readonly message: string };

/** A local object as the helper read it: its header, size, payload and the payload's hash. */
export interface HelperRead {
  /** The object's first 8 bytes (the store's header). */
  readonly head: Buffer;
  readonly objectSize: number;
  readonly payload: Buffer;
  /** sha256 of the payload as stored (meaningful for raw payloads). */
  readonly payloadHash: string;
}

// Plain JavaScript, evaluated in the helper thread. Reads the 8-byte header, then the payload in
// slices: the thread pool reads slice i+1 while this thread hashes slice i.
const HELPER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const fs = require("node:fs");
const { createHash } = require("node:crypto");
const signal = new Int32Array(workerData.signal);
const SLICE = 8 * 1024 * 1024;
const HEADER = 8;
function readAt(fd, buf, pos) {
  return new Promise((resolve, reject) => {
    let done = 0;
    const more = () => fs.read(fd, buf, done, buf.length - done, pos + done, (err, n) => {
      if (err) return reject(err);
      done += n;
      if (n === 0) { buf.fill(0, done); resolve(); } else if (done >= buf.length) resolve(); else more();
    });
    more();
  });
}
async function read(file) {
  const fd = fs.openSync(file, "r");
  try {
    const size = fs.fstatSync(fd).size;
    const head = Buffer.alloc(HEADER);
    await readAt(fd, head, 0);
    const payload = Buffer.allocUnsafeSlow(Math.max(0, size - HEADER));
    const hasher = createHash("sha256");
    let pending = readAt(fd, payload.subarray(0, SLICE), HEADER);
    for (let offset = 0; offset < payload.length; offset += SLICE) {
      await pending;
      const next = offset + SLICE;
      if (next < payload.length) pending = readAt(fd, payload.subarray(next, next + SLICE), HEADER + next);
      hasher.update(payload.subarray(offset, next));
    }
    return { ok: true, payload: payload.buffer, hash: hasher.digest("hex"), size, head: [...head] };
  } finally {
    fs.closeSync(fd);
  }
}
parentPort.on("message", ({ file, port }) => {
  read(file).then(
    (reply) => port.postMessage(reply, [reply.payload]),
    (err) => port.postMessage({ ok: false, code: err && err.code, message: String(err && err.message) }),
  ).finally(() => {
    port.close();
    Atomics.store(signal, 0, 1);
    Atomics.notify(signal, 0);
  });
});
`;

let helper: { worker: Worker; signal: Int32Array } | undefined;
/**
 * Set once the helper has failed to answer: its events cannot arrive while this thread waits, so a
 * helper that cannot start would stall every later big read for the whole deadline; they are read
 * on this thread instead, for the rest of the process.
 */
let helperGaveUp = false;

/** The helper thread, started on first use and kept (unreferenced) for the life of the process. */
function helperThread(): { worker: Worker; signal: Int32Array } {
  if (!helper) {
    const shared = new SharedArrayBuffer(4);
    const worker = new Worker(HELPER_SOURCE, { eval: true, workerData: { signal: shared } });
    worker.unref();
    // A helper that failed or ended is replaced by a new one at the next read.
    const forget = (): void => {
      if (helper?.worker === worker) helper = undefined;
    };
    worker.on("error", forget);
    worker.on("exit", forget);
    helper = { worker, signal: new Int32Array(shared) };
  }
  return helper;
}

/**
 * Reads a local object (header and payload) synchronously on the helper thread; undefined when the
 * helper did not answer in time, or failed to once before (the caller then reads it itself). Throws the helper's error with
 * its `code` (ENOENT...) when the file cannot be read.
 */
export function readObjectOnHelper(file: string, expectedSize: number): HelperRead | undefined {
  if (helperGaveUp) return undefined;
  const { worker, signal } = helperThread();
  const { port1, port2 } = new MessageChannel();
  Atomics.store(signal, 0, 0);
  worker.postMessage({ file, port: port2 }, [port2]);
  // Generous: a minute plus 20 MB/s; a helper that died never answers, and the caller falls back.
  const deadline = 60_000 + expectedSize / 20_000;
  const outcome = Atomics.wait(signal, 0, 0, deadline);
  const message = receiveMessageOnPort(port1)?.message as ReadReply | undefined;
  port1.close();
  if (outcome === "timed-out" || message === undefined) {
    void helper?.worker.terminate();
    helper = undefined;
    helperGaveUp = true;
    return undefined;
  }
  if (!message.ok) throw Object.assign(new Error(message.message), message.code ? { code: message.code } : {});
  return {
    head: Buffer.from(message.head),
    objectSize: message.size,
    payload: Buffer.from(message.payload),
    payloadHash: message.hash,
  };
}
