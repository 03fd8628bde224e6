/**
 * `S3`, for user data in flows, like Metaflow's: objects under a root (`new S3({ root })`) or under
 * a prefix versioned with the current run (`new S3({ run: this })`), moved in parallel, read as
 * Buffers, text or local temp files that `close()` removes.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfig, type MetaflowConfig } from "../config/index.js";
import { S3Transport, parseS3Location, type S3Location } from "../datastore/s3-transport.js";
import { MetaflowError } from "../errors.js";
import type { FlowSpec } from "../flow/flowspec.js";
import { current } from "../flow/current.js";
import { S3Error, S3NotFoundError } from "./errors.js";

/** Options of `new S3(...)`: at most one of `run` and `root`; without either, keys must be full `s3://` URLs. */
export interface S3Options {
  /**
   * Keep objects under `<METAFLOW_DATATOOLS_S3ROOT>/<flow>/<runId>/`: pass `this` inside a step (the
   * running task's flow and run are used), or a client `Run` (anything with a `Flow/runId` pathspec)
   * to read what that run stored.
   */
  readonly run?: FlowSpec | { readonly pathspec: string };
  /** Keep objects under this `s3://bucket/prefix`. */
  readonly root?: string;
  /** Settings for the endpoint, credentials and retries. @default loadConfig() */
  readonly config?: MetaflowConfig;
  /** Directory for downloaded temp files. @default os.tmpdir() */
  readonly tmpDir?: string;
}

/** Data `put` accepts: text (stored as UTF-8) or bytes. */
export type S3Data = string | Uint8Array;

/** One item of `putMany`: a key and either the data or a local file to upload. */
export type S3PutItem =
  | { readonly key: string; readonly value: S3Data }
  | { readonly key: string; readonly path: string };

/** One name in a listing: an object, or (in a one-level `list`) a sub-prefix. */
export interface S3ListEntry {
  /** Relative to the root, or a full URL when the S3 has no root. */
  readonly key: string;
  readonly url: string;
  /** True for a sub-prefix ("directory"), which has no size. */
  readonly isPrefix: boolean;
  readonly size: number | undefined;
}

/** Options of `get` and `getMany`. */
export interface S3GetOptions {
  /** Return an object with `exists === false` for a missing key instead of throwing `S3NotFoundError`. @default false */
  readonly returnMissing?: boolean;
}

/** A downloaded object: its bytes are in a local temp file (`path`), read into memory on first use of `blob` or `text`. */
export class S3Object {
  #blob: Buffer | undefined;
  readonly #file: string | undefined;
  readonly #isOpen: () => boolean;

  constructor(
    /** The key as asked for: relative to the root, or a full URL. */
    readonly key: string,
    /** `s3://bucket/key`. */
    readonly url: string,
    /** False only for a missing object fetched with `returnMissing`. */
    readonly exists: boolean,
    /** Size in bytes (0 when missing). */
    readonly size: number,
    file: string | undefined,
    isOpen: () => boolean,
  ) {
    this.#file = file;
    this.#isOpen = isOpen;
  }

  /** The local temp file holding the object; removed by `S3.close()`. */
  get path(): string {
    return this.#local("path");
  }

  /** The object's bytes (read from the temp file once, then kept). */
  get blob(): Buffer {
    this.#blob ??= fs.readFileSync(this.#local("blob"));
    return this.#blob;
  }

  /** The object's bytes decoded as UTF-8. */
  get text(): string {
    return this.blob.toString("utf8");
  }

  #local(what: string): string {
    if (!this.exists || this.#file === undefined) {
      throw new S3NotFoundError([this.url]);
    }
    if (!this.#isOpen()) {
      throw new S3Error(
        this.url,
        `Cannot read .${what} of ${this.url}: its S3 was closed and its temp files deleted. Read it before close().`,
      );
    }
    return this.#file;
  }
}

/**
 * User data on S3, in parallel, with retries.
 * @example
 * await using s3 = new S3({ run: this });          // inside a step
 * await s3.put("model.json", JSON.stringify(model));
 * const [a, b] = await s3.getMany(["a.csv", "b.csv"]);
 * console.log(a.text.length, b.path);
 */
export class S3 implements AsyncDisposable {
  /** `s3://bucket/prefix` that relative keys are under, or undefined (only full URLs allowed). */
  readonly root: string | undefined;
  readonly #transport: S3Transport;
  readonly #tmpBase: string;
  #tmpDir: string | undefined;
  #closed = false;

  constructor(options: S3Options = {}) {
    if (options.run !== undefined && options.root !== undefined) {
      throw new S3Error(options.root, "new S3(): pass either `run` or `root`, not both.");
    }
    const config = options.config ?? loadConfig();
    this.root =
      options.run !== undefined
        ? runRoot(options.run, config)
        : options.root !== undefined
          ? checkedRoot(options.root)
          : undefined;
    this.#transport = S3Transport.fromConfig(config);
    this.#tmpBase = options.tmpDir ?? os.tmpdir();
  }

  /** The full `s3://` URL of a key. */
  url(key: string): string {
    const { bucket, key: k } = this.#locate(key);
    return `s3://${bucket}/${k}`;
  }

  /** Downloads one object to a temp file; throws `S3NotFoundError` (or returns `exists === false` with `returnMissing`). */
  async get(key: string, options: S3GetOptions = {}): Promise<S3Object> {
    const [object] = await this.getMany([key], options);
    return object as S3Object;
  }

  /** Downloads many objects in parallel, in the order asked; missing ones are reported together. */
  async getMany(keys: Iterable<string>, options: S3GetOptions = {}): Promise<S3Object[]> {
    this.#checkOpen();
    const wanted = [...keys].map((key) => ({ key, loc: this.#locate(key) }));
    const dir = this.#temp();
    const objects = await Promise.all(
      wanted.map(async ({ key, loc }) => {
        const url = `s3://${loc.bucket}/${loc.key}`;
        const file = path.join(
          dir,
          `${randomBytes(8).toString("hex")}-${path.basename(loc.key) || "object"}`,
        );
        const size = await this.#wrap(url, () => this.#transport.getFile(loc, file));
        return new S3Object(
          key,
          url,
          size !== undefined,
          size ?? 0,
          size === undefined ? undefined : file,
          () => !this.#closed,
        );
      }),
    );
    const missing = objects.filter((o) => !o.exists).map((o) => o.url);
    if (missing.length > 0 && !options.returnMissing) throw new S3NotFoundError(missing);
    return objects;
  }

  /** Uploads one object (text as UTF-8); returns its URL. */
  async put(key: string, data: S3Data): Promise<string> {
    const [url] = await this.putMany([{ key, value: data }]);
    return url as string;
  }

  /** Uploads many objects (data, or local files with `path`) in parallel; returns their URLs in order. */
  async putMany(items: Iterable<S3PutItem> | Readonly<Record<string, S3Data>>): Promise<string[]> {
    this.#checkOpen();
    const list: S3PutItem[] =
      Symbol.iterator in items
        ? [...(items as Iterable<S3PutItem>)]
        : Object.entries(items as Record<string, S3Data>).map(([key, value]) => ({ key, value }));
    return Promise.all(
      list.map(async (item) => {
        const loc = this.#locate(item.key);
        const url = `s3://${loc.bucket}/${loc.key}`;
        const body = "path" in item ? { file: item.path } : [toBuffer(item.value, url)];
        if ("path" in item && !fs.existsSync(item.path)) {
          throw new S3Error(url, `Cannot upload ${item.path} to ${url}: no such file.`);
        }
        await this.#wrap(url, () => this.#transport.put(loc, body));
        return url;
      }),
    );
  }

  /** The objects and sub-prefixes directly under `prefix` (default: the root), sorted by key. */
  async list(prefix = ""): Promise<S3ListEntry[]> {
    return this.#list(prefix, true);
  }

  /** Every object under `prefix` (default: the root), at any depth, sorted by key. */
  async listRecursive(prefix = ""): Promise<S3ListEntry[]> {
    return this.#list(prefix, false);
  }

  /** Deletes the temp files of every object this S3 downloaded and closes its connections. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#transport.destroy();
    if (this.#tmpDir) await fs.promises.rm(this.#tmpDir, { recursive: true, force: true });
  }

  /** `await using s3 = new S3(...)` closes it at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #list(prefix: string, oneLevel: boolean): Promise<S3ListEntry[]> {
    this.#checkOpen();
    const base =
      prefix === "" && this.root !== undefined
        ? parseS3Location(`${this.root}/`)
        : this.#locate(prefix, true);
    const keyPrefix = base.key === "" || base.key.endsWith("/") ? base.key : `${base.key}/`;
    const url = `s3://${base.bucket}/${keyPrefix}`;
    const { prefixes, objects } = await this.#wrap(url, () =>
      this.#transport.list(base.bucket, keyPrefix, oneLevel ? "/" : undefined),
    );
    const entries: S3ListEntry[] = [
      ...prefixes.map((p) => this.#entry(base.bucket, p.replace(/\/$/, ""), true, undefined)),
      ...objects.map((o) => this.#entry(base.bucket, o.key, false, o.size)),
    ];
    return entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  #entry(
    bucket: string,
    fullKey: string,
    isPrefix: boolean,
    size: number | undefined,
  ): S3ListEntry {
    const url = `s3://${bucket}/${fullKey}`;
    const rootPrefix = this.root === undefined ? undefined : `${this.root}/`;
    const key =
      rootPrefix !== undefined && url.startsWith(rootPrefix) ? url.slice(rootPrefix.length) : url;
    return { key, url, isPrefix, size };
  }

  /** Resolves a key (relative to the root) or a full URL to a bucket and key, with errors that name it. */
  #locate(key: string, allowEmpty = false): S3Location {
    if (typeof key !== "string")
      throw new S3Error(String(key), `S3 keys are strings, got ${typeof key}.`);
    if (key.startsWith("s3://")) {
      try {
        return parseS3Location(key);
      } catch (err) {
        throw new S3Error(key, (err as Error).message);
      }
    }
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(key)) {
      throw new S3Error(
        key,
        `${JSON.stringify(key)} is not an S3 URL: use s3://bucket/key, or a key relative to the S3 root.`,
      );
    }
    if (this.root === undefined) {
      throw new S3Error(
        key,
        `The key ${JSON.stringify(key)} is relative, but this S3 has no root: use a full s3://bucket/key URL, or create it with new S3({ root }) or new S3({ run: this }).`,
      );
    }
    if (
      (key === "" && !allowEmpty) ||
      key.startsWith("/") ||
      key.split("/").some((s) => s === "." || s === "..")
    ) {
      throw new S3Error(
        `${this.root}/${key}`,
        `Invalid S3 key ${JSON.stringify(key)}: keys are non-empty, relative to ${this.root}, and have no leading '/', '.' or '..' parts.`,
      );
    }
    return parseS3Location(`${this.root}/${key}`);
  }

  /** Passes S3 errors through; turns transport failures into an `S3Error` naming the URL. */
  async #wrap<T>(url: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof S3Error) throw err;
      if (err instanceof MetaflowError) throw new S3Error(url, err.message);
      throw new S3Error(url, `S3 request for ${url} failed: ${(err as Error).message}`);
    }
  }

  #temp(): string {
    this.#tmpDir ??= fs.mkdtempSync(path.join(this.#tmpBase, "metaflow-s3-"));
    return this.#tmpDir;
  }

  #checkOpen(): void {
    if (this.#closed)
      throw new S3Error(this.root ?? "s3://", "This S3 was closed; create a new one.");
  }
}

// Task code runs in a vm context whose `Symbol` has no `asyncDispose`; there, the `await using` helpers
// of esbuild and TypeScript look the method up under `Symbol.for("Symbol.asyncDispose")` instead.
Object.defineProperty(S3.prototype, Symbol.for("Symbol.asyncDispose"), {
  value: S3.prototype[Symbol.asyncDispose],
  writable: true,
  configurable: true,
});

/** `<datatools root>/<flow>/<runId>` for `new S3({ run })`. */
function runRoot(run: FlowSpec | { readonly pathspec: string }, config: MetaflowConfig): string {
  const base = config.datatoolsS3Root.value;
  if (base === undefined) {
    throw new S3Error(
      "s3://",
      "new S3({ run }) needs an S3 root for run data: set METAFLOW_DATASTORE_SYSROOT_S3 (or METAFLOW_DATATOOLS_S3ROOT), or pass { root } instead.",
    );
  }
  const pathspec = (run as { pathspec?: unknown }).pathspec;
  if (typeof pathspec === "string") {
    const [flow, runId] = pathspec.split("/");
    if (!flow || !runId)
      throw new S3Error(
        base,
        `new S3({ run }): expected a run pathspec like Flow/123, got ${JSON.stringify(pathspec)}.`,
      );
    return `${base}/${flow}/${runId}`;
  }
  if (!current.isRunningFlow) {
    throw new S3Error(
      base,
      "new S3({ run: this }) works only inside a running step; outside a flow, pass a client Run (new S3({ run: await Run.get('Flow/123') })) or { root }.",
    );
  }
  return `${base}/${current.flowName}/${current.runId}`;
}

function checkedRoot(root: string): string {
  try {
    const { bucket, key } = parseS3Location(root);
    const prefix = key.replace(/\/+$/, "");
    return prefix === "" ? `s3://${bucket}` : `s3://${bucket}/${prefix}`;
  } catch (err) {
    throw new S3Error(root, (err as Error).message);
  }
}

function toBuffer(value: S3Data, url: string): Buffer {
  if (typeof value === "string") return Buffer.from(value, "utf8");
  if (value instanceof Uint8Array)
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw new S3Error(
    url,
    `Cannot upload to ${url}: put() takes a string, Buffer or Uint8Array, got ${typeof value}.`,
  );
}
