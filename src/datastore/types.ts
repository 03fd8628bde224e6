/**
 * The storage interface: a flat namespace of `/`-separated keys holding bytes. Every backend
 * (local directory, S3) implements these few methods; everything above it (content addressing,
 * compression, verification, metadata files) is backend-independent.
 */
export interface StorageBackend {
  /** Human-readable location, e.g. `/home/me/proj/.metaflow` or `s3://bucket/prefix`. */
  readonly root: string;
  /** Writes `data` under `key` atomically: readers see the old object, or the whole new one. */
  put(
    key: string,
    data: Buffer | readonly Buffer[],
    options?: { ifAbsent?: boolean },
  ): Promise<void>;
  /** Reads the object under `key`, or `undefined` when there is none. */
  get(key: string): Promise<Buffer | undefined>;
  /** Whether the store holds an object under `key` (a cache in front of a store answers for the store). */
  exists(key: string): Promise<boolean>;
  /** Names directly under `prefix/` (objects and sub-prefixes), without the prefix, sorted. */
  list(prefix: string): Promise<string[]>;
  /** Removes the object under `key` if present. */
  delete(key: string): Promise<void>;
  /** A local file path for `key` when the backend is a local directory; used for fast sync reads. */
  localPath?(key: string): string;
  /**
   * Optional, with `localPath`: makes `localPath(key)` hold each of `keys` (a read-through cache of
   * a remote store downloads the missing ones); throws a DatastoreError naming a key that does not exist.
   */
  ensureLocal?(keys: readonly string[]): Promise<void>;
  /** Optional, with `ensureLocal`: drops a local copy found corrupt, so the next `ensureLocal` fetches it again. */
  evict?(key: string): Promise<void>;
  /**
   * Optional: starts writing `data` to a private temporary object right away and returns a handle
   * that publishes it under a key chosen later; lets the content store hash while the bytes are
   * being written. Backends without it are written with `put` once the key is known.
   */
  stage?(data: readonly Buffer[]): StagedObject;
}

/** An object being written by `StorageBackend.stage`, not yet visible under any key. */
export interface StagedObject {
  /** Waits for the write, then makes the object visible under `key` atomically (like `put`). */
  publish(key: string, options?: { ifAbsent?: boolean }): Promise<void>;
  /** Waits for the write to stop, then removes the temporary object; never throws for write errors. */
  discard(): Promise<void>;
}

/** How an artifact's bytes were encoded; stored in the artifact index so readers can decode. */
export type Encoding =
  | "buffer" // a Node.js Buffer, raw bytes
  | "typed" // a typed array or ArrayBuffer, raw bytes; `typedArray` names the constructor
  | "v8" // anything else structured-clone can hold, via v8.serialize
  | "json" // plain JSON (small primitives and plain data), readable by any language
  | "bytes"; // the bytes a registered serializer returned (`serializer` names it; `arrow`: an Arrow IPC stream)

/** Largest serializer summary of an artifact, as JSON text (checked where it is made and by the service). */
export const MAX_SUMMARY_CHARS = 16 * 1024;

/** What the artifact index records about one stored artifact. */
export interface ArtifactRef {
  readonly name: string;
  /** Content hash (sha256 hex) of the serialized, uncompressed bytes. */
  readonly hash: string;
  /** Size in bytes of the serialized, uncompressed value. */
  readonly size: number;
  readonly encoding: Encoding;
  /** Human-readable type, e.g. `number`, `string`, `Array`, `Map`, `Buffer`, `Float64Array`. */
  readonly type: string;
  /** For `typed`: the typed-array constructor name (`Float64Array`, ..., or `ArrayBuffer`). */
  readonly typedArray?: string;
  /**
   * The registered serializer that wrote the value (`arrow`, or one of the user's), which readers
   * need to rebuild it; absent for values stored with the built-in encodings alone.
   */
  readonly serializer?: string;
  /** The serializer's summary of the value (Arrow: `{ rows, columns }`), readable without loading it. */
  readonly summary?: Readonly<Record<string, unknown>>;
}
