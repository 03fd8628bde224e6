/**
 * A local read-through cache in front of a remote backend (S3), so that task code, which reads
 * artifacts synchronously, can read them from local files: the runtime prefetches a task's inputs
 * (`ContentStore.prefetch`) before the task starts, and `ContentStore.getSync` then reads the cache.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
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
 *
 * The cache is a copy, never the authority: `exists` asks the remote store, so an object missing
 * there is written again even when a local copy survives. It is private to its owner (0700
 * directories, 0600 files; a directory another user owns or may write is refused), and what it
 * serves is checked against the content hash.
 */
export class CachedStorage implements StorageBackend {
  readonly root: string;
  /** The directory given as cache (`METAFLOW_S3_CACHE_DIR`); checked before first use. */
  readonly cacheDir: string;
  /** The local directory holding this remote root's cached objects. */
  readonly cacheRoot: string;
  readonly #cache: LocalStorage;
  readonly #concurrency: number;
  readonly #writeThrough: boolean;
  #ready: Promise<void> | undefined;

  constructor(
    readonly remote: StorageBackend,
    cacheDir: string,
    options: CachedStorageOptions = {},
  ) {
    this.root = remote.root;
    // One sub-directory per remote root: "in the cache" must imply "in this remote", or `exists`
    // would skip uploading an object that another bucket holds but this one does not.
    const tag = createHash("sha256").update(remote.root).digest("hex").slice(0, 16);
    this.cacheDir = path.resolve(cacheDir);
    this.cacheRoot = path.join(this.cacheDir, tag);
    this.#cache = new LocalStorage(this.cacheRoot, { private: true });
    this.#concurrency = options.concurrency ?? 32;
    this.#writeThrough = options.writeThrough ?? true;
  }

  async put(
    key: string,
    data: Buffer | readonly Buffer[],
    options: { ifAbsent?: boolean } = {},
  ): Promise<void> {
    const cacheable = this.#writeThrough && CONTENT_KEY.test(key);
    if (cacheable) await this.#prepare();
    await this.remote.put(key, data, options);
    if (cacheable) await this.#cache.put(key, data, { ifAbsent: true });
  }

  async get(key: string): Promise<Buffer | undefined> {
    const hash = CONTENT_KEY.exec(key)?.[2];
    if (hash === undefined) return this.remote.get(key);
    await this.#prepare();
    const cached = await this.#cache.get(key);
    if (cached !== undefined) {
      if (await holds(cached, hash)) return cached;
      await this.#cache.delete(key);
    }
    const object = await this.remote.get(key);
    if (object !== undefined) await this.#admit(key, object);
    return object;
  }

  /** Whether the remote store holds `key`: a local copy proves nothing about the bucket. */
  async exists(key: string): Promise<boolean> {
    return this.remote.exists(key);
  }

  list(prefix: string): Promise<string[]> {
    return this.remote.list(prefix);
  }

  async delete(key: string): Promise<void> {
    await this.remote.delete(key);
    await this.#cache.delete(key);
  }

  /** Drops the local copy of `key` (one that failed its hash check), so the next read downloads it again. */
  async evict(key: string): Promise<void> {
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
    await this.#prepare();
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

  /** Checks the cache directory once per instance (a failed check is tried again next time). */
  #prepare(): Promise<void> {
    this.#ready ??= preparePrivateDir(this.cacheDir).catch((err: unknown) => {
      this.#ready = undefined;
      throw err;
    });
    return this.#ready;
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

/** Whether a stored object (header and payload) is intact and holds the content with this hash. */
async function holds(object: Buffer, hash: string): Promise<boolean> {
  try {
    await verifyStoredObject(object, hash, "cache");
    return true;
  } catch (err) {
    if (err instanceof DatastoreError) return false;
    throw err;
  }
}

/**
 * Creates `dir` (0700) or checks an existing one: it must belong to this user and be writable by
 * no one else, since whoever can write it decides what later reads find there; read access for
 * others (a cache made by an older version) is taken away.
 */
async function preparePrivateDir(dir: string): Promise<void> {
  await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await fs.promises.stat(dir);
  const fix = `Set METAFLOW_S3_CACHE_DIR to a directory only you can write (e.g. ~/.cache/metaflow-ts/s3)`;
  if (!st.isDirectory()) {
    throw new DatastoreError(`The S3 cache directory ${dir} is not a directory. ${fix}.`);
  }
  const uid = process.getuid?.();
  // Without POSIX owners (Windows) there is nothing to compare.
  if (uid === undefined) return;
  if (st.uid !== uid) {
    throw new DatastoreError(
      `The S3 cache directory ${dir} is owned by uid ${st.uid}, not by you (uid ${uid}): another user could read your artifacts there or plant files in it. ${fix}, or have ${dir} removed.`,
    );
  }
  const mode = st.mode & 0o777;
  if ((mode & 0o022) !== 0) {
    throw new DatastoreError(
      `The S3 cache directory ${dir} is writable by other users (mode ${mode.toString(8).padStart(4, "0")}), so anyone could plant files in it. Make it private with 'chmod 700 ${dir}', or: ${fix}.`,
    );
  }
  if ((mode & 0o077) !== 0) await fs.promises.chmod(dir, 0o700);
}
