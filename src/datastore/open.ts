/** Opens the datastore backend the configuration names: a local directory, or S3 behind a local read-through cache. */
import { ConfigError, type MetaflowConfig } from "../config/index.js";
import { CachedStorage } from "./cache.js";
import { findDatastoreRoot, LocalStorage } from "./local.js";
import { S3Storage } from "./s3.js";
import { S3Transport } from "./s3-transport.js";
import type { StorageBackend } from "./types.js";

/** Where to look for the nearest `.metaflow` directory when no local root is configured. */
export interface OpenStorageOptions {
  /** @default process.cwd() */
  readonly cwd?: string;
}

/**
 * The configured `StorageBackend`: `LocalStorage` at `METAFLOW_DATASTORE_SYSROOT_LOCAL` (else the
 * nearest `.metaflow`), or, for `METAFLOW_DEFAULT_DATASTORE=s3`, `S3Storage` at
 * `METAFLOW_DATASTORE_SYSROOT_S3` wrapped in a `CachedStorage` under `METAFLOW_S3_CACHE_DIR`, so
 * `ContentStore.prefetch` + `getSync` work the same on both.
 * @example
 * const store = new ContentStore(openStorage(loadConfig()));
 * await store.prefetch(inputHashes); // before the task starts; a no-op on local storage
 */
export function openStorage(
  config: MetaflowConfig,
  options: OpenStorageOptions = {},
): StorageBackend {
  if (config.datastore.value === "local") {
    return new LocalStorage(
      config.localRoot.value ?? findDatastoreRoot(options.cwd ?? process.cwd()),
    );
  }
  const root = config.s3Root.value;
  if (root === undefined) {
    throw new ConfigError(
      "METAFLOW_DATASTORE_SYSROOT_S3",
      config.datastore.origin,
      `METAFLOW_DEFAULT_DATASTORE is 's3' (from ${config.datastore.origin}) but METAFLOW_DATASTORE_SYSROOT_S3 is not set. Set it to the team bucket, e.g. s3://my-bucket/metaflow.`,
    );
  }
  const remote = new S3Storage({ root, transport: S3Transport.fromConfig(config) });
  return new CachedStorage(remote, config.s3CacheDir.value, {
    concurrency: Math.min(32, config.s3WorkerCount.value),
  });
}

/** Releases what a backend from `openStorage` holds (S3 sockets), so the process can exit promptly. */
export function closeStorage(storage: StorageBackend): void {
  const inner = storage instanceof CachedStorage ? storage.remote : storage;
  if (inner instanceof S3Storage) inner.close();
}
