import { createHash } from "node:crypto";
import fs from "node:fs";
import { promisify } from "node:util";
import zlib from "node:zlib";
import { DatastoreError } from "../errors.js";
import { deserializeValue, serializeValue } from "./serialize.js";
import type { ArtifactRef, StorageBackend } from "./types.js";

/**
 * Stored object layout: 8-byte header, then the payload. Eight bytes keep the payload 8-aligned in
 * a buffer read from offset 0, so Float64Array/BigInt64Array views need no copy.
 *   0..3  magic "MFCA"
 *   4     format version
 *   5     payload flag: 0 raw, 1 deflate
 *   6..7  reserved, zero
 */
const MAGIC = Buffer.from("MFCA", "latin1");
const FORMAT_VERSION = 1;
const HEADER_SIZE = 8;
const FLAG_RAW = 0;
const FLAG_DEFLATE = 1;

/** Values smaller than this are stored raw: compression would save next to nothing. */
export const COMPRESSION_MIN_BYTES = 4 * 1024;
/** How much of a value's start is trial-compressed to decide whether compressing the whole pays. */
const COMPRESSION_SAMPLE_BYTES = 64 * 1024;
/** The whole value is compressed only if the sample shrinks below this fraction of its size. */
const COMPRESSION_MAX_RATIO = 0.85;
/** Raw objects at least this big are written while being hashed, when the backend can stage writes. */
const SPECULATIVE_WRITE_MIN_BYTES = 1024 * 1024;
/** Raw objects are read in slices of this size so hashing one slice overlaps reading the next. */
const READ_SLICE_BYTES = 8 * 1024 * 1024;

const deflate = promisify(zlib.deflate);
const inflate = promisify(zlib.inflate);

/** What `ContentStore.put` did with one object. */
export interface PutResult {
  /** sha256 hex of the uncompressed bytes; the object's name in the store. */
  readonly hash: string;
  /** Uncompressed size in bytes. */
  readonly size: number;
  /** Bytes this call wrote (header + payload, compressed or raw); 0 when the object already existed. */
  readonly storedBytes: number;
  /** False when an identical object was already stored, so nothing was written. */
  readonly written: boolean;
}

/** What `ContentStore.putValue` stored: an `ArtifactRef` without the name, plus what `put` reports. */
export type StoredValue = Omit<ArtifactRef, "name"> & PutResult;

/** The parts of an `ArtifactRef` needed to load its value. */
export type ValueLocator = Pick<ArtifactRef, "hash" | "encoding" | "typedArray">;

/** Key of the object with content hash `hash`: `data/<first 2 hex digits>/<hash>`. */
export function contentKey(hash: string): string {
  return `data/${hash.slice(0, 2)}/${hash}`;
}

/**
 * A content-addressed, deduplicated, verified object store on top of any `StorageBackend`: objects
 * are named by the sha256 of their bytes, compressed only when it pays, and checked on every read.
 */
export class ContentStore {
  constructor(readonly backend: StorageBackend) {}

  /** Stores the concatenation of `chunks` (never concatenated in memory) unless it is already stored. */
  async put(chunks: readonly Buffer[]): Promise<PutResult> {
    const size = chunks.reduce((total, chunk) => total + chunk.length, 0);
    const compressible = worthCompressing(chunks, size);
    // A big raw object is written speculatively while it is hashed (the write runs in the thread
    // pool, the hash on this thread); if it turns out to exist already, the copy is discarded.
    const staged =
      !compressible && size >= SPECULATIVE_WRITE_MIN_BYTES && this.backend.stage
        ? this.backend.stage([header(FLAG_RAW), ...chunks])
        : undefined;
    let published = false;
    try {
      const hasher = createHash("sha256");
      for (const chunk of chunks) hasher.update(chunk);
      const hash = hasher.digest("hex");
      const key = contentKey(hash);
      if (await this.backend.exists(key)) return { hash, size, storedBytes: 0, written: false };
      if (staged) {
        await staged.publish(key, { ifAbsent: true });
        published = true;
        return { hash, size, storedBytes: HEADER_SIZE + size, written: true };
      }
      const payload = compressible ? await deflatePayload(chunks, size) : rawPayload(chunks, size);
      await this.backend.put(key, [header(payload.flag), ...payload.chunks], { ifAbsent: true });
      return { hash, size, storedBytes: HEADER_SIZE + payload.size, written: true };
    } finally {
      if (staged && !published) await staged.discard();
    }
  }

  /** Whether an object with this hash is stored. */
  async has(hash: string): Promise<boolean> {
    return this.backend.exists(contentKey(checkHash(hash)));
  }

  /** Reads, decompresses and verifies the object with this hash. */
  async get(hash: string): Promise<Buffer> {
    const key = contentKey(checkHash(hash));
    if (this.backend.localPath) {
      await this.backend.ensureLocal?.([key]);
      try {
        return await readLocalObject(this.backend.localPath(key), hash);
      } catch (err) {
        // A cache's copy that fails its check is dropped and fetched again from the store it mirrors.
        if (!this.backend.evict || !(err instanceof DatastoreError)) throw err;
        await this.backend.evict(key);
        await this.backend.ensureLocal?.([key]);
        return readLocalObject(this.backend.localPath(key), hash);
      }
    }
    const where = `${this.backend.root}/${key}`;
    const object = await this.backend.get(key);
    if (object === undefined) throw missingObject(hash, where);
    const flag = parseHeader(object.subarray(0, HEADER_SIZE), object.length, hash, where);
    const payload = object.subarray(HEADER_SIZE);
    const data = flag === FLAG_DEFLATE ? await inflateOrCorrupt(payload, hash, where) : payload;
    verify(data, hash, where);
    return data;
  }

  /**
   * Makes the objects with these hashes readable with `getSync`: a backend with a read-through cache
   * (S3) downloads the missing ones in parallel; a local backend has nothing to do.
   */
  async prefetch(hashes: Iterable<string>): Promise<void> {
    const keys = [...new Set(hashes)].map((hash) => contentKey(checkHash(hash)));
    await this.backend.ensureLocal?.(keys);
  }

  /** Like `get`, synchronously; only for backends with local files (throws a DatastoreError otherwise). */
  getSync(hash: string): Buffer {
    const key = contentKey(checkHash(hash));
    if (!this.backend.localPath) {
      throw new DatastoreError(
        `Cannot read object ${hash} synchronously from ${this.backend.root}: synchronous reads need a local datastore; use the async get() instead.`,
      );
    }
    return readLocalObjectSync(this.backend.localPath(key), hash);
  }

  /** Serializes `value` and stores it; throws a plain Error (naming the path inside the value) if it cannot be stored. */
  async putValue(value: unknown): Promise<StoredValue> {
    const serialized = serializeValue(value);
    const stored = await this.put(serialized.chunks);
    const ref: StoredValue = {
      ...stored,
      encoding: serialized.encoding,
      type: serialized.type,
      ...(serialized.typedArray === undefined ? {} : { typedArray: serialized.typedArray }),
    };
    return ref;
  }

  /** Loads and rebuilds the value of a stored artifact. */
  async getValue(ref: ValueLocator): Promise<unknown> {
    return decode(await this.get(ref.hash), ref);
  }

  /** Like `getValue`, synchronously; only for backends with local files. */
  getValueSync(ref: ValueLocator): unknown {
    return decode(this.getSync(ref.hash), ref);
  }
}

/**
 * Checks that `object` (a stored object: header and payload, as a backend returns it) is intact and
 * holds the content with this hash; throws a DatastoreError naming `where` otherwise.
 */
export async function verifyStoredObject(object: Buffer, hash: string, where: string): Promise<void> {
  const flag = parseHeader(object.subarray(0, HEADER_SIZE), object.length, checkHash(hash), where);
  const payload = object.subarray(HEADER_SIZE);
  verify(flag === FLAG_DEFLATE ? await inflateOrCorrupt(payload, hash, where) : payload, hash, where);
}

function decode(bytes: Buffer, ref: ValueLocator): unknown {
  try {
    return deserializeValue(bytes, {
      encoding: ref.encoding,
      ...(ref.typedArray ? { typedArray: ref.typedArray } : {}),
    });
  } catch (err) {
    throw new DatastoreError(
      `Object ${ref.hash} (encoding ${ref.encoding}) passed its hash check but cannot be decoded: ${(err as Error).message}`,
    );
  }
}

interface Payload {
  readonly flag: number;
  readonly chunks: readonly Buffer[];
  readonly size: number;
}

function rawPayload(chunks: readonly Buffer[], size: number): Payload {
  return { flag: FLAG_RAW, chunks, size };
}

/** A cheap trial on the first 64 KiB avoids compressing what will not shrink. */
function worthCompressing(chunks: readonly Buffer[], size: number): boolean {
  if (size < COMPRESSION_MIN_BYTES) return false;
  const sample = leadingBytes(chunks, COMPRESSION_SAMPLE_BYTES);
  const trial = zlib.deflateSync(sample, { level: 1 });
  return trial.length < sample.length * COMPRESSION_MAX_RATIO;
}

async function deflatePayload(chunks: readonly Buffer[], size: number): Promise<Payload> {
  const whole = chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks, size);
  const compressed = await deflate(whole, { level: 1 });
  // The sample can mislead (a compressible header before random data); never store something bigger.
  if (compressed.length >= size) return rawPayload(chunks, size);
  return { flag: FLAG_DEFLATE, chunks: [compressed], size: compressed.length };
}

function leadingBytes(chunks: readonly Buffer[], limit: number): Buffer {
  const first = chunks[0];
  if (first && first.length >= limit) return first.subarray(0, limit);
  const parts: Buffer[] = [];
  let total = 0;
  for (const chunk of chunks) {
    if (total >= limit) break;
    const part = chunk.subarray(0, limit - total);
    parts.push(part);
    total += part.length;
  }
  return Buffer.concat(parts, total);
}

function header(flag: number): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(h, 0);
  h[4] = FORMAT_VERSION;
  h[5] = flag;
  return h;
}

/** Returns the payload flag, or throws a corrupt-object error for anything that is not our header. */
function parseHeader(head: Buffer, objectSize: number, hash: string, where: string): number {
  if (objectSize < HEADER_SIZE || head.length < HEADER_SIZE) {
    throw corruptObject(
      hash,
      where,
      `it is only ${objectSize} bytes long, shorter than the ${HEADER_SIZE}-byte header`,
    );
  }
  if (!head.subarray(0, 4).equals(MAGIC))
    throw corruptObject(hash, where, "its header does not start with the store's magic bytes");
  if (head[4] !== FORMAT_VERSION) {
    throw corruptObject(
      hash,
      where,
      `its format version is ${head[4]}, this version of Metaflow.ts reads version ${FORMAT_VERSION}`,
    );
  }
  const flag = head[5];
  if (flag !== FLAG_RAW && flag !== FLAG_DEFLATE)
    throw corruptObject(hash, where, `its payload flag ${flag} is unknown`);
  return flag;
}

async function inflateOrCorrupt(payload: Buffer, hash: string, where: string): Promise<Buffer> {
  try {
    return await inflate(payload);
  } catch (err) {
    throw corruptObject(
      hash,
      where,
      `its compressed payload cannot be inflated (${(err as Error).message})`,
    );
  }
}

function inflateOrCorruptSync(payload: Buffer, hash: string, where: string): Buffer {
  try {
    return zlib.inflateSync(payload);
  } catch (err) {
    throw corruptObject(
      hash,
      where,
      `its compressed payload cannot be inflated (${(err as Error).message})`,
    );
  }
}

function verify(data: Buffer, hash: string, where: string): void {
  const actual = createHash("sha256").update(data).digest("hex");
  if (actual !== hash) throw corruptObject(hash, where, `its content hashes to ${actual}`);
}

/**
 * Reads a local object so that a raw payload lands in its own exactly-sized allocation (typed arrays
 * then view it without a copy), hashing each slice while the next one is being read.
 */
async function readLocalObject(file: string, hash: string): Promise<Buffer> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw missingObject(hash, file);
    throw err;
  }
  try {
    const objectSize = (await handle.stat()).size;
    const head = Buffer.alloc(HEADER_SIZE);
    await readFully(handle, head, 0);
    const flag = parseHeader(head, objectSize, hash, file);
    const payload = Buffer.allocUnsafeSlow(objectSize - HEADER_SIZE);
    if (flag === FLAG_DEFLATE) {
      await readFully(handle, payload, HEADER_SIZE);
      const data = await inflateOrCorrupt(payload, hash, file);
      verify(data, hash, file);
      return data;
    }
    const hasher = createHash("sha256");
    let pending = readFully(handle, payload.subarray(0, READ_SLICE_BYTES), HEADER_SIZE);
    for (let offset = 0; offset < payload.length; offset += READ_SLICE_BYTES) {
      await pending;
      const next = offset + READ_SLICE_BYTES;
      if (next < payload.length) {
        pending = readFully(
          handle,
          payload.subarray(next, next + READ_SLICE_BYTES),
          HEADER_SIZE + next,
        );
      }
      hasher.update(payload.subarray(offset, next));
    }
    const actual = hasher.digest("hex");
    if (actual !== hash) throw corruptObject(hash, file, `its content hashes to ${actual}`);
    return payload;
  } finally {
    await handle.close();
  }
}

function readLocalObjectSync(file: string, hash: string): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw missingObject(hash, file);
    throw err;
  }
  try {
    const objectSize = fs.fstatSync(fd).size;
    const head = Buffer.alloc(HEADER_SIZE);
    readFullySync(fd, head, 0);
    const flag = parseHeader(head, objectSize, hash, file);
    const payload = Buffer.allocUnsafeSlow(objectSize - HEADER_SIZE);
    readFullySync(fd, payload, HEADER_SIZE);
    const data = flag === FLAG_DEFLATE ? inflateOrCorruptSync(payload, hash, file) : payload;
    verify(data, hash, file);
    return data;
  } finally {
    fs.closeSync(fd);
  }
}

/** Fills `target` from `position`; a short file (a torn write) leaves the rest unfilled and is caught by the hash. */
async function readFully(
  handle: fs.promises.FileHandle,
  target: Buffer,
  position: number,
): Promise<void> {
  let filled = 0;
  while (filled < target.length) {
    const { bytesRead } = await handle.read(
      target,
      filled,
      target.length - filled,
      position + filled,
    );
    if (bytesRead === 0) {
      target.fill(0, filled);
      return;
    }
    filled += bytesRead;
  }
}

function readFullySync(fd: number, target: Buffer, position: number): void {
  let filled = 0;
  while (filled < target.length) {
    const bytesRead = fs.readSync(fd, target, filled, target.length - filled, position + filled);
    if (bytesRead === 0) {
      target.fill(0, filled);
      return;
    }
    filled += bytesRead;
  }
}

function checkHash(hash: string): string {
  if (!/^[0-9a-f]{64}$/.test(hash)) {
    throw new DatastoreError(
      `Invalid content hash ${JSON.stringify(hash)}: expected 64 lowercase hex digits (sha256).`,
    );
  }
  return hash;
}

function missingObject(hash: string, where: string): DatastoreError {
  return new DatastoreError(
    `Object ${hash} is not in the datastore (looked for ${where}). The run that wrote it may have used another datastore root, or the file was deleted.`,
  );
}

function corruptObject(hash: string, where: string, detail: string): DatastoreError {
  return new DatastoreError(
    `Object ${hash} at ${where} is corrupt or was torn by an interrupted write: ${detail}. ` +
      `Delete ${where} and rerun the run or task that wrote it (for example with 'metaflow resume'), which stores it again.`,
  );
}
