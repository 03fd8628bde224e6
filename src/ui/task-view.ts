/** A task as the task page shows it, an artifact's preview and download, and a task's logs as an event stream. */
import type * as http from "node:http";
import { previewValue } from "../cards/preview.js";
import { NotFinishedError } from "../client/errors.js";
import type { DataArtifact } from "../client/artifact.js";
import type { Task } from "../client/objects.js";
import { BASE_HEADERS, sendBody } from "./http.js";

/** Largest artifact whose value the UI loads for a preview. */
export const PREVIEW_LIMIT = 4 * 1024 * 1024;

/** Everything the task page shows except logs and artifact values. */
export interface TaskView {
  readonly pathspec: string;
  readonly status: "running" | "completed" | "failed";
  readonly index: number | undefined;
  readonly parents: readonly string[];
  readonly attempts: readonly {
    readonly attempt: number;
    readonly status: string;
    readonly startedAt: number;
    readonly finishedAt: number | undefined;
    readonly error: { readonly name: string; readonly message: string; readonly stack: string | undefined } | undefined;
    readonly clonedFrom: string | undefined;
  }[];
  /** Undefined while the task runs or when it failed (no artifacts stored). */
  readonly artifacts: readonly { readonly name: string; readonly type: string; readonly size: number; readonly hash: string }[] | undefined;
  readonly cards: readonly { readonly index: number; readonly id: string | undefined; readonly type: string; readonly attempt: number; readonly live: boolean }[];
}

/** The task page's data. */
export async function taskView(task: Task): Promise<TaskView> {
  let artifacts: DataArtifact[] | undefined;
  try {
    artifacts = await task.artifacts();
  } catch (err) {
    if (!(err instanceof NotFinishedError)) throw err;
  }
  const cards = await task.cards();
  return {
    pathspec: task.pathspec,
    status: task.status,
    index: task.index,
    parents: task.parents,
    attempts: task.attempts.map((a) => ({
      attempt: a.attempt,
      status: a.status,
      startedAt: a.startedAt.getTime(),
      finishedAt: a.finishedAt?.getTime(),
      error: a.error && { name: a.error.name, message: a.error.message, stack: a.error.stack },
      clonedFrom: a.clonedFrom,
    })),
    artifacts: artifacts?.map((a) => ({ name: a.name, type: a.type, size: a.size, hash: a.hash })).sort((a, b) => a.name.localeCompare(b.name)),
    cards: cards.map((c) => ({ index: c.index, id: c.id, type: c.type, attempt: c.attempt, live: c.live })),
  };
}

/** A preview of an artifact's value (as text), unless it is too large to load. */
export async function artifactPreview(a: DataArtifact): Promise<{ name: string; type: string; size: number; preview: string | undefined }> {
  const preview = a.size > PREVIEW_LIMIT ? undefined : previewValue(await a.data(), { maxChars: 20_000, depth: 4 });
  return { name: a.name, type: a.type, size: a.size, preview };
}

/** JSON that also holds Map, Set, BigInt, typed arrays and Dates. */
function toJsonText(value: unknown): string | undefined {
  try {
    return JSON.stringify(
      value,
      (_k, v: unknown) => {
        if (typeof v === "bigint") return v.toString();
        if (v instanceof Map || Object.prototype.toString.call(v) === "[object Map]") return Object.fromEntries(v as Map<unknown, unknown>);
        if (v instanceof Set || Object.prototype.toString.call(v) === "[object Set]") return [...(v as Set<unknown>)];
        if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<number>);
        return v;
      },
      2,
    );
  } catch {
    return undefined;
  }
}

/** Sends an artifact's value as a file: raw bytes for binary values, text for strings, JSON (or a printout) for the rest. */
export async function sendArtifact(res: http.ServerResponse, a: DataArtifact): Promise<void> {
  const value = await a.data();
  const base = a.taskPathspec.split("/").slice(2).join("-");
  let body: string | Buffer;
  let type: string;
  let ext: string;
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    const view = value instanceof ArrayBuffer ? new Uint8Array(value) : (value as ArrayBufferView);
    body = Buffer.from(view.buffer, view.byteOffset, view.byteLength);
    type = "application/octet-stream";
    ext = "bin";
  } else if (typeof value === "string") {
    [body, type, ext] = [value, "text/plain; charset=utf-8", "txt"];
  } else {
    const json = toJsonText(value);
    [body, type, ext] = json === undefined ? [previewValue(value, { maxChars: 10_000_000 }), "text/plain; charset=utf-8", "txt"] : [json, "application/json; charset=utf-8", "json"];
  }
  const file = `${base}-${a.name}.${ext}`.replace(/[^A-Za-z0-9_.-]/g, "_");
  sendBody(res, 200, type, body, { "content-disposition": `attachment; filename="${file}"` });
}

/**
 * Streams a task's log lines as Server-Sent Events (`data: {stream, time, line, attempt}`) until
 * the task ends (an `end` event) or the browser goes away.
 */
export async function streamLogs(req: http.IncomingMessage, res: http.ServerResponse, task: Task, attempt: number | undefined, signal: AbortSignal): Promise<void> {
  res.writeHead(200, { ...BASE_HEADERS, "content-type": "text/event-stream; charset=utf-8", connection: "keep-alive" });
  res.write(": logs\n\n");
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  req.on("close", onAbort);
  signal.addEventListener("abort", onAbort);
  // A comment line now and then keeps proxies from closing a quiet stream.
  const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), 15_000);
  try {
    for await (const line of task.followLogs({ ...(attempt === undefined ? {} : { attempt }), signal: stop.signal, pollMs: 300 })) {
      res.write(`data: ${JSON.stringify(line)}\n\n`);
    }
    if (!stop.signal.aborted) res.write("event: end\ndata: {}\n\n");
  } finally {
    clearInterval(keepAlive);
    req.off("close", onAbort);
    signal.removeEventListener("abort", onAbort);
    res.end();
  }
}
