/**
 * The S3 datastore backend: the same flat key space as `LocalStorage`, under `s3://bucket/prefix`.
 * S3 makes every PUT (and every completed multipart upload) visible atomically, which is the whole
 * of the atomicity contract; retries and parallelism live in `S3Transport`.
 */
import { keySegments } from "./keys.js";
import { S3Transport, parseS3Location, type S3TransportOptions } from "./s3-transport.js";
import type { StorageBackend } from "./types.js";

/** Options of an `S3Storage`: the root URL plus the transport's options, or a transport to share. */
export interface S3StorageOptions extends S3TransportOptions {
  /** `s3://bucket/prefix` under which every key is stored. */
  readonly root: string;
  /** An existing transport to share (its connection pool and concurrency limit); overrides the other options. */
  readonly transport?: S3Transport;
}

/**
 * A `StorageBackend` on S3 (or any S3-compatible server), on the AWS SDK v3.
 * @example
 * const storage = new S3Storage({ root: "s3://team-bucket/metaflow", endpoint: "http://127.0.0.1:9000" });
 * await storage.put("a/b", Buffer.from("hello"));
 */
export class S3Storage implements StorageBackend {
  readonly root: string;
  readonly bucket: string;
  /** The key prefix inside the bucket, without slashes at either end ("" for the bucket's root). */
  readonly prefix: string;
  readonly transport: S3Transport;

  constructor(options: S3StorageOptions) {
    const { bucket, key } = parseS3Location(options.root);
    this.bucket = bucket;
    this.prefix = key.replace(/^\/+|\/+$/g, "");
    this.root = this.prefix === "" ? `s3://${bucket}` : `s3://${bucket}/${this.prefix}`;
    this.transport = options.transport ?? new S3Transport(options);
  }

  /**
   * Writes the object; with `ifAbsent`, an existing object is left alone. HEAD-then-PUT is not
   * atomic, but `ifAbsent` is only used for content-addressed keys, where a racing writer stores
   * the very same bytes.
   */
  async put(
    key: string,
    data: Buffer | readonly Buffer[],
    options: { ifAbsent?: boolean } = {},
  ): Promise<void> {
    const loc = this.#loc(key);
    if (options.ifAbsent && (await this.transport.head(loc)) !== undefined) return;
    await this.transport.put(loc, Buffer.isBuffer(data) ? [data] : data);
  }

  async get(key: string): Promise<Buffer | undefined> {
    return this.transport.getBuffer(this.#loc(key));
  }

  /** Downloads the object under `key` into a local file; returns false when there is none. */
  async download(key: string, file: string): Promise<boolean> {
    return (await this.transport.getFile(this.#loc(key), file)) !== undefined;
  }

  async exists(key: string): Promise<boolean> {
    return (await this.transport.head(this.#loc(key))) !== undefined;
  }

  async list(prefix: string): Promise<string[]> {
    const trimmed = prefix.replace(/\/+$/, "");
    const base = this.#fullKey(trimmed === "" ? "" : `${checkKey(trimmed)}/`);
    const { prefixes, objects } = await this.transport.list(this.bucket, base, "/");
    const names = new Set<string>();
    for (const p of prefixes) names.add(p.slice(base.length).replace(/\/$/, ""));
    for (const o of objects) names.add(o.key.slice(base.length));
    names.delete("");
    return [...names].sort();
  }

  async delete(key: string): Promise<void> {
    await this.transport.delete(this.#loc(key));
  }

  /** Closes the connection pool; call once the storage is no longer used so the process can exit. */
  close(): void {
    this.transport.destroy();
  }

  #loc(key: string): { bucket: string; key: string } {
    return { bucket: this.bucket, key: this.#fullKey(checkKey(key)) };
  }

  #fullKey(key: string): string {
    return this.prefix === "" ? key : `${this.prefix}/${key}`;
  }
}

/** Checks a key with the rules every backend shares and returns it. */
function checkKey(key: string): string {
  keySegments(key);
  return key;
}
