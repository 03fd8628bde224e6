/** Small HTTP helpers of the UI server: errors with a status, JSON and text replies, bounded bodies. */
import type * as http from "node:http";

/** An error answered with `status` and a JSON body `{ error: { code, message } }`. */
export class UiHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "UiHttpError";
  }
}

/** Headers every UI answer carries. */
export const BASE_HEADERS: Readonly<Record<string, string>> = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

/** Sends `body` as JSON. */
export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res
    .writeHead(status, { ...BASE_HEADERS, ...headers, "content-type": "application/json; charset=utf-8", "content-length": String(Buffer.byteLength(text)) })
    .end(text);
}

/** Sends text or bytes with a content type. */
export function sendBody(res: http.ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  const buf = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  res.writeHead(status, { ...BASE_HEADERS, ...headers, "content-type": type, "content-length": String(buf.length) }).end(buf);
}

/** Reads a request body of at most `limit` bytes. */
export async function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new UiHttpError(413, "body-too-large", `The request body must be at most ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Reads a JSON object body; 415 for another content type, 400 for bad JSON. */
export async function readJsonObject(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  if (!/^application\/json\s*(;|$)/i.test(req.headers["content-type"] ?? "")) {
    throw new UiHttpError(415, "unsupported-media-type", "Send the body as application/json");
  }
  let value: unknown;
  try {
    value = JSON.parse((await readBody(req, 64 * 1024)).toString("utf8"));
  } catch (err) {
    if (err instanceof UiHttpError) throw err;
    throw new UiHttpError(400, "malformed-json", `The body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new UiHttpError(400, "invalid-input", "The body must be a JSON object");
  return value as Record<string, unknown>;
}

/** Splits a path into decoded segments; 400 for bad percent-encoding. */
export function pathSegments(pathname: string): string[] {
  try {
    return pathname
      .split("/")
      .filter((s) => s !== "")
      .map((s) => decodeURIComponent(s));
  } catch {
    throw new UiHttpError(400, "invalid-path", "The path is not valid percent-encoded UTF-8");
  }
}

/** A query parameter as a whole number within bounds, or the default; 400 names the parameter otherwise. */
export function intParam(q: URLSearchParams, name: string, fallback: number, max: number): number {
  const raw = q.get(name);
  if (raw === null || raw === "") return fallback;
  if (!/^\d{1,9}$/.test(raw) || Number(raw) > max) throw new UiHttpError(400, "invalid-input", `Query parameter ${name} must be a whole number from 0 to ${max}, got ${JSON.stringify(raw.slice(0, 40))}`);
  return Number(raw);
}
