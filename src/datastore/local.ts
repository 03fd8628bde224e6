import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { keySegments } from "./keys.js";
import type { StagedObject, StorageBackend } from "./types.js";

const openFile = promisify(fs.open);
const closeFile = promisify(fs.close);
const writevFile = promisify(fs.writev);

/** Name of the directory that holds a project's datastore. */
export const DATASTORE_DIR_NAME = ".metaflow";

/** Temp files start with this prefix; `list` hides them so half-written objects are never seen. */
const TEMP_PREFIX = ".tmp-";

/**
 * Returns the `.metaflow` directory in `cwd` or in the nearest parent that has one, else
 * `<cwd>/.metaflow` (which is created only when something is first written to it).
 */
export function findDatastoreRoot(cwd: string): string {
  const start = path.resolve(cwd);
  for (let dir = start; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, DATASTORE_DIR_NAME);
    if (isDirectory(candidate)) return candidate;
    if (path.dirname(dir) === dir) break;
  }
  return path.join(start, DATASTORE_DIR_NAME);
}

/** Options of a `LocalStorage`. */
export interface LocalStorageOptions {
  /** Create directories 0700 and files 0600, so other local users can neither list nor read them. @default false */
  readonly private?: boolean;
}

/**
 * A `StorageBackend` over a local directory; many processes may read and write it at once, because
 * every write goes to a unique temp file in the target directory and is then renamed into place.
 */
export class LocalStorage implements StorageBackend {
  readonly root: string;
  /** Modes for new directories and files; the umask still applies. */
  readonly #dirMode: number;
  readonly #fileMode: number;

  constructor(root: string, options: LocalStorageOptions = {}) {
    this.root = path.resolve(root);
    this.#dirMode = options.private ? 0o700 : 0o777;
    this.#fileMode = options.private ? 0o600 : 0o666;
  }

  /** The file that holds `key`; throws a DatastoreError for keys that would escape the root. */
  localPath(key: string): string {
    return path.join(this.root, ...keySegments(key));
  }

  /** Writes to a unique temp file beside the target, then renames (or, for `ifAbsent`, links) it into place. */
  async put(
    key: string,
    data: Buffer | readonly Buffer[],
    options: { ifAbsent?: boolean } = {},
  ): Promise<void> {
    const target = this.localPath(key);
    if (options.ifAbsent && (await fileExists(target))) return;
    const dir = path.dirname(target);
    await fs.promises.mkdir(dir, { recursive: true, mode: this.#dirMode });
    const temp = path.join(dir, tempName(path.basename(target)));
    try {
      const fd = await openFile(temp, "wx", this.#fileMode);
      await writeAllAndClose(fd, Buffer.isBuffer(data) ? [data] : data);
      await publishFile(temp, target, options.ifAbsent ?? false);
    } finally {
      // After a rename the temp name is gone; after a link or a failure it must be removed.
      await fs.promises.rm(temp, { force: true });
    }
  }

  /** Starts writing `data` to a temp file in the root at once; see `StorageBackend.stage`. */
  stage(data: readonly Buffer[]): StagedObject {
    // Synchronous open on purpose: the write must reach the thread pool before this call returns,
    // because the caller's next move is to hash on the main thread, which would hold back any callback.
    fs.mkdirSync(this.root, { recursive: true, mode: this.#dirMode });
    const temp = path.join(this.root, tempName("staged"));
    const written = writeAllAndClose(fs.openSync(temp, "wx", this.#fileMode), data);
    // The caller awaits `written` only later (in publish or discard); until then a failed write must
    // not count as an unhandled rejection.
    written.catch(() => undefined);
    return {
      publish: async (key, options = {}) => {
        try {
          const target = this.localPath(key);
          await written;
          await fs.promises.mkdir(path.dirname(target), { recursive: true, mode: this.#dirMode });
          await publishFile(temp, target, options.ifAbsent ?? false);
        } finally {
          await fs.promises.rm(temp, { force: true });
        }
      },
      discard: async () => {
        await written.catch(() => undefined);
        await fs.promises.rm(temp, { force: true });
      },
    };
  }

  async get(key: string): Promise<Buffer | undefined> {
    try {
      return await fs.promises.readFile(this.localPath(key));
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async exists(key: string): Promise<boolean> {
    return fileExists(this.localPath(key));
  }

  async list(prefix: string): Promise<string[]> {
    const trimmed = prefix.replace(/\/+$/, "");
    const dir = trimmed === "" ? this.root : this.localPath(trimmed);
    try {
      const names = await fs.promises.readdir(dir);
      return names.filter((name) => !name.startsWith(TEMP_PREFIX)).sort();
    } catch (err) {
      if (isMissing(err)) return [];
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await fs.promises.rm(this.localPath(key), { force: true });
  }
}


function tempName(base: string): string {
  return `${TEMP_PREFIX}${base}-${process.pid}-${randomBytes(6).toString("hex")}`;
}

/** Writes all buffers with vectored writes (no concatenation), looping over short writes, then closes `fd`. */
async function writeAllAndClose(fd: number, chunks: readonly Buffer[]): Promise<void> {
  try {
    let pending = chunks.filter((c) => c.length > 0);
    let position = 0;
    while (pending.length > 0) {
      const { bytesWritten } = await writevFile(fd, pending, position);
      position += bytesWritten;
      pending = dropWritten(pending, bytesWritten);
    }
  } finally {
    await closeFile(fd);
  }
}

function publishFile(temp: string, target: string, ifAbsent: boolean): Promise<void> {
  return ifAbsent ? linkIfAbsent(temp, target) : fs.promises.rename(temp, target);
}

/** The part of `chunks` that remains after the first `written` bytes. */
function dropWritten(chunks: readonly Buffer[], written: number): Buffer[] {
  const rest: Buffer[] = [];
  let skip = written;
  for (const chunk of chunks) {
    if (skip >= chunk.length) {
      skip -= chunk.length;
    } else {
      rest.push(skip > 0 ? chunk.subarray(skip) : chunk);
      skip = 0;
    }
  }
  return rest;
}

/**
 * Publishes `temp` under `target` unless `target` exists; a hard link fails atomically with EEXIST
 * when another writer won the race, which is success for us since that writer stored the same key.
 */
async function linkIfAbsent(temp: string, target: string): Promise<void> {
  try {
    await fs.promises.link(temp, target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return;
    // Some filesystems (FAT, certain network mounts) have no hard links; rename is still atomic.
    if (code === "EPERM" || code === "ENOTSUP" || code === "EOPNOTSUPP" || code === "ENOSYS") {
      await fs.promises.rename(temp, target);
      return;
    }
    throw err;
  }
}

async function fileExists(file: string): Promise<boolean> {
  try {
    return (await fs.promises.stat(file)).isFile();
  } catch (err) {
    if (isMissing(err)) return false;
    throw err;
  }
}

function isDirectory(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}
