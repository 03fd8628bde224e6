import { createHash } from "node:crypto";
import fs from "node:fs";
import { promisify } from "node:util";
import zlib from "node:zlib";
import { DatastoreError } from "../errors.js";
import { decodeStored, prepareValue, type PreparedValue, type StoredLocator } from "./codec.js";
import { SerializerError } from "./serializers.js";
import { checkObjectShape, readLocalObject, readLocalObjectSync } from "./local-read.js";
import {
  FLAG_DEFLATE,
  FLAG_RAW,
  HEADER_SIZE,
  header,
  inflateOrCorrupt,
  missingObject,
  parseHeader,
  verify,
} from "./object-format.js";
import type { ArtifactRef, StorageBackend } from "./types.js";

/** Values smaller than this are stored raw: compression would save next to nothing. */
export const COMPRESSION_MIN_BYTES = 4 * 1024;
/** How much of a value's start is trial-compressed to decide whether compressing the whole pays. */
const COMPRESSION_SAMPLE_BYTES = 64 * 1024;
/** The whole value is compressed only if the sample shrinks below this fraction of its size. */
const COMPRESSION_MAX_RATIO = 0.85;
/** Raw objects at least this big are written while being hashed, when the backend can stage writes. */
const SPECULATIVE_WRITE_MIN_BYTES = 1024 * 1024;
/**
 * Values bigger than this are stored raw: deflate runs at ~200 MB/s and inflate at ~250 MB/s, several
 * times slower than writing and reading the raw bytes, so for them it costs more time than it saves.
 */
export const COMPRESSION_MAX_BYTES = 16 * 1024 * 1024;

/** Cached copies whose shape `prefetch` checks at once (each holds a file open). */
const SHAPE_CHECKS_AT_ONCE = 16;

const deflate = promisify(zlib.deflate);

/** An object to prefetch: its hash and, when known, the value's size (see `ContentStore.prefetch`). */
export interface PrefetchItem {
  readonly hash: string;
  /** The uncompressed size (`ArtifactRef.size`): a raw cached copy must be exactly this long plus the header. */
  readonly size?: number;
}

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

/** The parts of an `ArtifactRef` needed to load its value (the name only makes errors clearer). */
export type ValueLocator = StoredLocator;

/** The artifact index entry for a value stored under `name`. */
export function artifactRef(name: string, stored: StoredValue): ArtifactRef {
  return {
    name,
    hash: stored.hash,
    size: stored.size,
    encoding: stored.encoding,
    type: stored.type,
    ...(stored.typedArray === undefined ? {} : { typedArray: stored.typedArray }),
    ...(stored.serializer === undefined ? {} : { serializer: stored.serializer }),
    ...(stored.summary === undefined ? {} : { summary: stored.summary }),
  };
}

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
    return payloadOf(object, hash, where);
  }

  /**
   * Makes the objects with these hashes readable with `getSync`: a backend with a read-through cache
   * (S3) downloads the missing ones in parallel; a local backend has nothing to do. A cached copy is
   * trusted only if its header is ours and, for an item that gives the value's `size`, a raw copy is
   * exactly that long (one small read each); one that is not is dropped and downloaded again.
   */
  async prefetch(items: Iterable<string | PrefetchItem>): Promise<void> {
    const { ensureLocal, evict, localPath } = this.backend;
    if (!ensureLocal) return;
    const wanted = new Map<string, number | undefined>();
    for (const item of items) {
      const hash = checkHash(typeof item === "string" ? item : item.hash);
      const size = typeof item === "string" ? undefined : item.size;
      if (size !== undefined || !wanted.has(hash)) wanted.set(hash, size);
    }
    if (evict && localPath) {
      await forEachLimited([...wanted], SHAPE_CHECKS_AT_ONCE, async ([hash, size]) => {
        const key = contentKey(hash);
        try {
          await checkObjectShape(localPath.call(this.backend, key), hash, size);
        } catch (err) {
          if (!(err instanceof DatastoreError)) throw err;
          await evict.call(this.backend, key);
        }
      });
    }
    await ensureLocal.call(this.backend, [...wanted.keys()].map(contentKey));
  }

  /**
   * Like `get`, synchronously; only for backends with local files (throws a DatastoreError otherwise).
   * A cache's copy that fails its check cannot be downloaded again here, so it is removed and the
   * error says that the next attempt's `prefetch` downloads it.
   */
  getSync(hash: string): Buffer {
    const key = contentKey(checkHash(hash));
    if (!this.backend.localPath) {
      throw new DatastoreError(
        `Cannot read object ${hash} synchronously from ${this.backend.root}: synchronous reads need a local datastore; use the async get() instead.`,
      );
    }
    const file = this.backend.localPath(key);
    try {
      return readLocalObjectSync(file, hash);
    } catch (err) {
      if (!this.backend.ensureLocal || !(err instanceof DatastoreError)) throw err;
      fs.rmSync(file, { force: true });
      const cacheError = new DatastoreError(
        `Object ${hash} cannot be read from the local cache of ${this.backend.root}: its copy at ${file} is missing or failed its check (see the cause), and a synchronous read cannot download it. ` +
          `The copy was removed, so the next attempt (a @retry, or the same run resumed) downloads it again from ${this.backend.root}/${key}.`,
      );
      cacheError.cause = err;
      throw cacheError;
    }
  }

  /**
   * Serializes `value` and stores it; throws a SerializerError when a serializer fails, or a plain
   * Error (naming the path inside the value) if it cannot be stored.
   */
  async putValue(value: unknown): Promise<StoredValue> {
    return this.putPrepared(await prepareValue(value));
  }

  /** Stores a value `prepareValue` made ready. */
  async putPrepared(prepared: PreparedValue): Promise<StoredValue> {
    const stored = await this.put(prepared.chunks());
    return {
      ...stored,
      encoding: prepared.encoding,
      type: prepared.type,
      ...(prepared.typedArray === undefined ? {} : { typedArray: prepared.typedArray }),
      ...(prepared.serializer === undefined ? {} : { serializer: prepared.serializer }),
      ...(prepared.summary === undefined ? {} : { summary: prepared.summary }),
    };
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
  await payloadOf(object, checkHash(hash), where);
}

/** The verified content of a stored object (header and payload); throws a LostObjectError naming `where`. */
async function payloadOf(object: Buffer, hash: string, where: string): Promise<Buffer> {
  const flag = parseHeader(object.subarray(0, HEADER_SIZE), object.length, hash, where);
  const payload = object.subarray(HEADER_SIZE);
  const data = flag === FLAG_DEFLATE ? await inflateOrCorrupt(payload, hash, where) : payload;
  verify(data, hash, where);
  return data;
}

function decode(bytes: Buffer, ref: ValueLocator): unknown {
  try {
    return decodeStored(bytes, ref);
  } catch (err) {
    if (err instanceof SerializerError) throw err;
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
  if (size < COMPRESSION_MIN_BYTES || size > COMPRESSION_MAX_BYTES) return false;
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

/** Runs `fn` on each item, at most `limit` at a time. */
async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function checkHash(hash: string): string {
  if (!/^[0-9a-f]{64}$/.test(hash)) {
    throw new DatastoreError(
      `Invalid content hash ${JSON.stringify(hash)}: expected 64 lowercase hex digits (sha256).`,
    );
  }
  return hash;
}

