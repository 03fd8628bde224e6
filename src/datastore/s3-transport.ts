/**
 * The one place that talks to S3: an AWS SDK v3 client plus what the SDK leaves to us — a bound on
 * requests in flight, retries that survive a server restart, multipart uploads, length checks.
 * Used by the `S3Storage` datastore backend and by the user-facing `S3` class.
 */
import type { S3Client, S3ClientConfig } from "@aws-sdk/client-s3";

type Sdk = typeof import("@aws-sdk/client-s3");
type SdkStorage = typeof import("@aws-sdk/lib-storage");
let sdkModules: Promise<{ s3: Sdk; storage: SdkStorage }> | undefined;

/**
 * The AWS SDK is loaded on first use: it costs ~0.1 s to load, and most processes (worker hosts,
 * the CLI on a local datastore, client scripts) never talk to S3.
 */
function loadSdk(): Promise<{ s3: Sdk; storage: SdkStorage }> {
  sdkModules ??= Promise.all([import("@aws-sdk/client-s3"), import("@aws-sdk/lib-storage")]).then(
    ([s3, storage]) => ({ s3, storage }),
  );
  return sdkModules;
}
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import type { MetaflowConfig, S3Credentials } from "../config/index.js";
import { DatastoreError } from "../errors.js";

/** A bucket and a key (or key prefix) inside it. */
export interface S3Location {
  readonly bucket: string;
  /** The key or prefix without a leading slash; may be empty (the bucket's root). */
  readonly key: string;
}

/** Splits `s3://bucket/some/key` into bucket and key; throws a DatastoreError naming the URL otherwise. */
export function parseS3Location(url: string): S3Location {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  const bucket = m?.[1];
  if (!m || bucket === undefined || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new DatastoreError(
      `Invalid S3 URL ${JSON.stringify(url)}: expected s3://bucket/key with a valid bucket name (3-63 lowercase letters, digits, '.' or '-').`,
    );
  }
  return { bucket, key: m[2] ?? "" };
}

/** Options of an `S3Transport`; every field has a default suited to AWS and to S3-compatible servers. */
export interface S3TransportOptions {
  /** Custom endpoint (MinIO, s3rver, ...); requests then use path-style URLs. @default AWS */
  readonly endpoint?: string;
  /** @default "us-east-1" */
  readonly region?: string;
  /** @default the AWS SDK's default provider chain */
  readonly credentials?: S3Credentials;
  /** Attempts per operation on throttling, 5xx and dropped connections (each attempt may itself be retried by the SDK). @default 7 */
  readonly attempts?: number;
  /** Requests in flight at once; more callers wait their turn. @default 64 */
  readonly concurrency?: number;
  /** Objects at least this big are uploaded in parts. @default 16 MiB */
  readonly multipartThreshold?: number;
  /** Size of one part of a multipart upload. @default 8 MiB */
  readonly partSize?: number;
  /** Base of the exponential backoff between attempts, in milliseconds. @default 250 */
  readonly retryBaseMs?: number;
}

/** Byte sources `put` accepts: buffers written as one object, or a local file streamed from disk. */
export type PutBody = readonly Buffer[] | { readonly file: string };

const MiB = 1024 * 1024;
const RETRY_CAP_MS = 10_000;

/** S3 error names that mean "try again later" rather than "this request is wrong". */
const RETRYABLE_NAMES = new Set([
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "RequestThrottled",
  "TooManyRequestsException",
  "RequestTimeout",
  "RequestTimeoutException",
  "TimeoutError",
  "InternalError",
  "ServiceUnavailable",
  "BandwidthLimitExceeded",
  "TruncatedBody",
]);
/** Socket-level failures: the server restarted, a proxy dropped the connection, DNS hiccupped. */
const RETRYABLE_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ERR_STREAM_PREMATURE_CLOSE",
  "UND_ERR_SOCKET",
]);

/** Whether an error from the SDK or the socket is worth retrying. */
export function isRetryableS3Error(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const e = err as {
    name?: unknown;
    code?: unknown;
    message?: unknown;
    $metadata?: { httpStatusCode?: number };
    cause?: unknown;
  };
  if (typeof e.name === "string" && RETRYABLE_NAMES.has(e.name)) return true;
  if (typeof e.code === "string" && RETRYABLE_CODES.has(e.code)) return true;
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && (status >= 500 || status === 429)) return true;
  if (
    typeof e.message === "string" &&
    /socket hang up|aborted|premature close|ECONNRESET|ECONNREFUSED|EPIPE/i.test(e.message)
  ) {
    return true;
  }
  return e.cause !== undefined && e.cause !== err && isRetryableS3Error(e.cause);
}

/** Whether an SDK error means the object (or bucket key) does not exist. */
function isNotFound(err: unknown): boolean {
  const e = err as { name?: unknown; $metadata?: { httpStatusCode?: number } };
  return e?.name === "NoSuchKey" || e?.name === "NotFound" || e?.$metadata?.httpStatusCode === 404;
}

/** Whether the bucket itself is missing, which must not be confused with a missing object. */
function isNoSuchBucket(err: unknown): boolean {
  return (err as { name?: unknown })?.name === "NoSuchBucket";
}

/** A counting semaphore: at most `limit` holders at once, served in arrival order. */
class Limiter {
  #active = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#active >= this.limit)
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#active++;
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      // Hand the slot straight to the next waiter so a newcomer cannot overtake it.
      if (next) next();
      else this.#active--;
    }
  }
}

/**
 * An S3 client with bounded parallelism and retries: each operation is retried with exponential
 * backoff and jitter on throttling, 5xx and dropped connections, including errors that surface
 * while a response body is being read (which the SDK's own retries cannot see).
 */
export class S3Transport {
  readonly #config: S3ClientConfig;
  #client: Promise<{ s3: Sdk; storage: SdkStorage; client: S3Client }> | undefined;
  readonly attempts: number;
  readonly multipartThreshold: number;
  readonly partSize: number;
  readonly #limiter: Limiter;
  readonly #retryBaseMs: number;

  constructor(options: S3TransportOptions = {}) {
    this.attempts = options.attempts ?? 7;
    this.multipartThreshold = options.multipartThreshold ?? 16 * MiB;
    this.partSize = Math.max(5 * MiB, options.partSize ?? 8 * MiB);
    this.#retryBaseMs = options.retryBaseMs ?? 250;
    const concurrency = options.concurrency ?? 64;
    this.#limiter = new Limiter(concurrency);
    const agent = { keepAlive: true, maxSockets: concurrency };
    const config: S3ClientConfig = {
      region: options.region ?? "us-east-1",
      // The SDK's retry quota (a token bucket shared by the client) runs dry when a server restart
      // fails many requests at once; a few SDK attempts absorb blips, our loop does the rest.
      maxAttempts: 3,
      // Without these, the SDK adds flexible checksums that s3rver and some S3-compatible servers
      // mishandle on streamed uploads, silently corrupting objects; integrity is checked by content hash instead.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      requestHandler: {
        connectionTimeout: 5_000,
        socketTimeout: 60_000,
        httpAgent: agent,
        httpsAgent: agent,
      },
    };
    if (options.endpoint) {
      config.endpoint = options.endpoint;
      // Custom servers rarely have wildcard DNS for virtual-hosted buckets.
      config.forcePathStyle = true;
    }
    const credentials = options.credentials;
    if (credentials?.kind === "env") {
      config.credentials = {
        accessKeyId: credentials.accessKeyId,
        secretAccessKey: credentials.secretAccessKey.reveal(),
        ...(credentials.sessionToken ? { sessionToken: credentials.sessionToken.reveal() } : {}),
      };
    } else if (credentials?.kind === "profile") {
      config.profile = credentials.profile;
    }
    // The SDK warns on Node 20 about releases it has not made yet; Metaflow.ts pins its SDK version,
    // so the warning is noise in every task's stderr. An explicit setting by the user is kept.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
    this.#config = config;
  }

  /** The SDK client (created, with the SDK loaded, on first use); tests add middleware to it. */
  async sdkClient(): Promise<S3Client> {
    return (await this.#sdk()).client;
  }

  /** The SDK and a client, created on first use. */
  #sdk(): Promise<{ s3: Sdk; storage: SdkStorage; client: S3Client }> {
    this.#client ??= loadSdk().then(({ s3, storage }) => ({ s3, storage, client: new s3.S3Client(this.#config) }));
    return this.#client;
  }

  /** A transport configured from the S3 settings of `config`. */
  static fromConfig(config: MetaflowConfig): S3Transport {
    return new S3Transport({
      ...(config.s3Endpoint.value ? { endpoint: config.s3Endpoint.value } : {}),
      region: config.s3Region.value,
      credentials: config.s3Credentials.value,
      attempts: config.s3RetryCount.value,
      concurrency: config.s3WorkerCount.value,
    });
  }

  /**
   * Runs `fn` (one attempt of an operation on `url`) inside the concurrency limit, retrying
   * retryable failures with backoff; the final error names the URL and the number of attempts.
   */
  async retrying<T>(url: string, what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#limiter.run(fn);
      } catch (err) {
        if (!isRetryableS3Error(err) || attempt >= this.attempts)
          throw describeFailure(err, url, what, attempt);
        // Equal jitter: a guaranteed half of the exponential delay (so a restarting server gets
        // time to come back) plus a random half (so many clients do not retry in lockstep).
        const delay = Math.min(RETRY_CAP_MS, this.#retryBaseMs * 2 ** (attempt - 1));
        await sleep(delay / 2 + Math.random() * (delay / 2));
      }
    }
  }

  /** Size of the object, or undefined when it does not exist. */
  async head(loc: S3Location): Promise<{ size: number } | undefined> {
    return this.retrying(urlOf(loc), "check", async () => {
      try {
        const { s3, client } = await this.#sdk();
        const out = await client.send(new s3.HeadObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
        return { size: out.ContentLength ?? 0 };
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    });
  }

  /** The whole object in one exactly-sized Buffer, or undefined when it does not exist. */
  async getBuffer(loc: S3Location): Promise<Buffer | undefined> {
    return this.retrying(urlOf(loc), "read", async () => {
      const body = await this.#open(loc);
      if (!body) return undefined;
      const { stream, length } = body;
      if (length === undefined) return collect(stream);
      const buffer = Buffer.allocUnsafeSlow(length);
      let filled = 0;
      for await (const chunk of stream as AsyncIterable<Uint8Array>) {
        if (filled + chunk.length > length) throw truncated(loc, length, filled + chunk.length);
        buffer.set(chunk, filled);
        filled += chunk.length;
      }
      if (filled !== length) throw truncated(loc, length, filled);
      return buffer;
    });
  }

  /**
   * Downloads the object into `file` (through a temp file renamed into place, so `file` is either
   * absent or complete); returns its size, or undefined when it does not exist.
   */
  async getFile(loc: S3Location, file: string): Promise<number | undefined> {
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    return this.retrying(urlOf(loc), "download", async () => {
      const body = await this.#open(loc);
      if (!body) return undefined;
      const temp = `${file}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
      try {
        let written = 0;
        const counter = async function* (source: AsyncIterable<Uint8Array>) {
          for await (const chunk of source) {
            written += chunk.length;
            yield chunk;
          }
        };
        await pipeline(body.stream, counter, fs.createWriteStream(temp, { flags: "wx" }));
        if (body.length !== undefined && written !== body.length)
          throw truncated(loc, body.length, written);
        await fs.promises.rename(temp, file);
        return written;
      } finally {
        await fs.promises.rm(temp, { force: true });
      }
    });
  }

  /** Writes an object (in one PUT, or in parts when it is big); S3 makes it visible only once complete. */
  async put(loc: S3Location, body: PutBody): Promise<void> {
    const size =
      "file" in body
        ? (await fs.promises.stat(body.file)).size
        : body.reduce((n, b) => n + b.length, 0);
    await this.retrying(urlOf(loc), "write", async () => {
      if (size < this.multipartThreshold) {
        const bytes = "file" in body ? await fs.promises.readFile(body.file) : concat(body, size);
        const { s3, client } = await this.#sdk();
        await client.send(
          new s3.PutObjectCommand({
            Bucket: loc.bucket,
            Key: loc.key,
            Body: bytes,
            ContentLength: size,
          }),
        );
        return;
      }
      // A fresh stream per attempt: a failed multipart upload is aborted and started over.
      const stream =
        "file" in body
          ? fs.createReadStream(body.file)
          : Readable.from(body, { objectMode: false });
      const { storage, client } = await this.#sdk();
      const upload = new storage.Upload({
        client,
        params: { Bucket: loc.bucket, Key: loc.key, Body: stream },
        partSize: this.partSize,
        queueSize: 4,
        leavePartsOnError: false,
      });
      await upload.done();
    });
  }

  /**
   * One level of a listing (with `delimiter: "/"`, sub-prefixes are returned as `prefixes`) or the
   * whole tree under `prefix` (without a delimiter); follows continuation tokens.
   */
  async list(
    bucket: string,
    prefix: string,
    delimiter?: string,
  ): Promise<{ prefixes: string[]; objects: { key: string; size: number }[] }> {
    const prefixes: string[] = [];
    const objects: { key: string; size: number }[] = [];
    let token: string | undefined;
    do {
      const { s3, client } = await this.#sdk();
      const page = await this.retrying(urlOf({ bucket, key: prefix }), "list", () =>
        client.send(
          new s3.ListObjectsV2Command({
            Bucket: bucket,
            Prefix: prefix,
            ...(delimiter ? { Delimiter: delimiter } : {}),
            ...(token ? { ContinuationToken: token } : {}),
          }),
        ),
      );
      for (const p of page.CommonPrefixes ?? []) if (p.Prefix) prefixes.push(p.Prefix);
      for (const o of page.Contents ?? [])
        if (o.Key !== undefined) objects.push({ key: o.Key, size: o.Size ?? 0 });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return { prefixes, objects };
  }

  /** Deletes the object; deleting a missing object is not an error (as in S3 itself). */
  async delete(loc: S3Location): Promise<void> {
    const { s3, client } = await this.#sdk();
    await this.retrying(urlOf(loc), "delete", () =>
      client.send(new s3.DeleteObjectCommand({ Bucket: loc.bucket, Key: loc.key })),
    );
  }

  /** Closes the client's sockets so the process can exit promptly. */
  destroy(): void {
    void this.#client?.then(({ client }) => client.destroy());
  }

  async #open(
    loc: S3Location,
  ): Promise<{ stream: Readable; length: number | undefined } | undefined> {
    try {
      const { s3, client } = await this.#sdk();
      const out = await client.send(new s3.GetObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
      if (!out.Body) return { stream: Readable.from([]), length: 0 };
      return { stream: out.Body as Readable, length: out.ContentLength };
    } catch (err) {
      if (isNotFound(err) && !isNoSuchBucket(err)) return undefined;
      throw err;
    }
  }
}

/** `s3://bucket/key` of a location. */
export function urlOf(loc: S3Location): string {
  return `s3://${loc.bucket}/${loc.key}`;
}

function concat(chunks: readonly Buffer[], size: number): Buffer {
  return chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks, size);
}

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Uint8Array>) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

function truncated(loc: S3Location, expected: number, got: number): Error {
  const err = new Error(
    `${urlOf(loc)}: expected ${expected} bytes, received ${got} (connection dropped mid-transfer)`,
  );
  err.name = "TruncatedBody";
  return err;
}

/** Turns an SDK or socket error into a DatastoreError that says which URL failed and how to fix it. */
function describeFailure(err: unknown, url: string, what: string, attempts: number): Error {
  if (err instanceof DatastoreError) return err;
  const e = err as {
    name?: string;
    message?: string;
    code?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const status = e?.$metadata?.httpStatusCode;
  const detail = [e?.name, e?.code, status ? `HTTP ${status}` : undefined]
    .filter(Boolean)
    .join(", ");
  const reason = `${e?.message || "unknown error"}${detail ? ` (${detail})` : ""}`;
  let hint = "";
  if (e?.name === "NoSuchBucket")
    hint = " The bucket does not exist: create it, or fix METAFLOW_DATASTORE_SYSROOT_S3.";
  else if (
    status === 403 ||
    e?.name === "AccessDenied" ||
    e?.name === "InvalidAccessKeyId" ||
    e?.name === "SignatureDoesNotMatch"
  ) {
    hint =
      " Check the S3 credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or METAFLOW_AWS_PROFILE) and the bucket policy.";
  } else if (isRetryableS3Error(err)) {
    hint = ` Gave up after ${attempts} attempts; check that the S3 endpoint is reachable (METAFLOW_S3_ENDPOINT_URL) or raise METAFLOW_S3_RETRY_COUNT.`;
  }
  const wrapped = new DatastoreError(`Cannot ${what} ${url}: ${reason}.${hint}`);
  (wrapped as { cause?: unknown }).cause = err;
  return wrapped;
}
