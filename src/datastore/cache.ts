/**
 * A local read-through cache in front of a remote backend (S3), so that task code, which reads
 * artifacts synchronously, can read them from local files: the runtime prefetches a task's inputs
 * (`ContentStore.prefetch`) before the task starts, and `ContentStore.getSync` then reads the cache.
 */
import { createHash } from "node:crypto";
import path from "node:path";
import { DatastoreError } from "../errors.js";
import { verifyStoredObject } from "./cas.js";
import { LocalStorage } from "./local.js";
import type { StorageBackend } from "./types.js";

/** Content-addressed keys (`data/xx/<sha256>`): immutable, so a cached copy never goes stale. */
const CONTENT_KEY = /^data\/([0-9a-f]{2})\/([0-9a-f]{64})$/;

/** Options of a `CachedStorage`. */
export interface CachedStorageOptions {
  /** Downloads in flight at once during `ensureLocal`. @default 32 */
  readonly concurrency?: number;
  /** Also keep a local copy of each content object this process writes, so later tasks on this machine skip the download. @default true */
  readonly writeThrough?: boolean;
}

/**
 * A `StorageBackend` that forwards everything to `remote` but keeps content-addressed objects in a
 * local directory as well: they are downloaded once (verified by hash before they enter the cache)
 * and read from local files after that. Other keys (metadata, logs) always go to `remote`.
 */
export class CachedStorage implements StorageBackend {
  readonly root: string;
  /** The local directory holding this remote root's cached objects. */
  readonly cacheRoot: string;
  readonly #cache: LocalStorage;
  readonly #concurrency: number;
  readonly #writeThrough: boolean;

  constructor(
    readonly remote: StorageBackend,
    cacheDir: string,
    options: CachedStorageOptions = {},
  ) {
    this.root = remote.root;
    // One sub-directory per remote root: "in the cache" must imply "in this remote", or `exists`
    // would skip uploading an object that another bucket holds but this one does not.
    const tag = createHash("sha256").update(remote.root).digest("hex").slice(0, 16);
    this.cacheRoot = path.join(path.resolve(cacheDir), tag);
    this.#cache = new LocalStorage(this.cacheRoot);
    this.#concurrency = options.concurrency ?? 32;
    this.#writeThrough = options.writeThrough ?? true;
  }

  async put(
    key: string,
    data: Buffer | readonly Buffer[],
    options: { ifAbsent?: boolean } = {},
  ): Promise<void> {
    await this.remote.put(key, data, options);
    if (this.#writeThrough && CONTENT_KEY.test(key))
      await this.#cache.put(key, data, { ifAbsent: true });
  }

  async get(key: string): Promise<Buffer | undefined> {
    if (!CONTENT_KEY.test(key)) return this.remote.get(key);
    const cached = await this.#cache.get(key);
    if (cached !== undefined) return cached;
    const object = await this.remote.get(key);
    if (object !== undefined) await this.#admit(key, object);
    return object;
  }

  async exists(key: string): Promise<boolean> {
    if (CONTENT_KEY.test(key) && (await this.#cache.exists(key))) return true;
    return this.remote.exists(key);
  }

  list(prefix: string): Promise<string[]> {
    return this.remote.list(prefix);
  }

  async delete(key: string): Promise<void> {
    await this.remote.delete(key);
    await this.#cache.delete(key);
  }

  /** The cache file for `key`; it holds the object once `ensureLocal([key])` (or a read) has fetched it. */
  localPath(key: string): string {
    return this.#cache.localPath(key);
  }

  /**
   * Downloads the keys missing from the cache, `concurrency` at a time, verifying content objects by
   * hash before they enter the cache; other keys are fetched afresh every time, since they may change.
   */
  async ensureLocal(keys: readonly string[]): Promise<void> {
    const queue = [...new Set(keys)];
    const worker = async (): Promise<void> => {
      for (let key = queue.shift(); key !== undefined; key = queue.shift()) {
        if (CONTENT_KEY.test(key) && (await this.#cache.exists(key))) continue;
        const object = await this.remote.get(key);
        if (object === undefined) {
          throw new DatastoreError(
            `Object ${key} is not in the datastore (looked for ${this.remote.root}/${key}). The run that wrote it may have used another datastore root, or the object was deleted.`,
          );
        }
        await this.#admit(key, object);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, queue.length) }, worker));
  }

  /** Puts a downloaded object in the cache, after checking a content object against its hash. */
  async #admit(key: string, object: Buffer): Promise<void> {
    const m = CONTENT_KEY.exec(key);
    if (m?.[2]) {
      await verifyStoredObject(object, m[2], `${this.remote.root}/${key}`);
      await this.#cache.put(key, object, { ifAbsent: true });
    } else {
      await this.#cache.put(key, object);
    }
  }
}
