/**
 * Opens what a run or the client reads and writes, as configured: the datastore (local directory,
 * or S3 behind a local cache) and the metadata provider (local files, or the metadata service).
 */
import * as os from "node:os";
import * as path from "node:path";
import { emitConfigWarnings, loadConfig, type MetaflowConfig } from "./config/index.js";
import { ContentStore } from "./datastore/cas.js";
import { findDatastoreRoot, LocalStorage } from "./datastore/local.js";
import { closeStorage, openStorage } from "./datastore/open.js";
import type { StorageBackend } from "./datastore/types.js";
import { LocalMetadata } from "./metadata/local.js";
import { ServiceMetadata } from "./metadata/service.js";
import type { MetadataProvider } from "./metadata/types.js";
import { ConfigError } from "./config/index.js";

/** The datastore and metadata of one configuration. */
export interface Backends {
  readonly config: MetaflowConfig;
  readonly storage: StorageBackend;
  readonly store: ContentStore;
  readonly metadata: MetadataProvider;
  /** A local directory for files a run needs on this machine (the bundle hosts compile). */
  readonly localDir: string;
  /** What a worker host needs to open the same datastore. */
  readonly storageSpec: StorageSpec;
  /** One line naming the datastore and metadata, for the console. */
  readonly description: string;
  /** Releases sockets and timers. */
  close(): void;
}

/** How a worker host opens the run's datastore: a local root, or the configuration (S3). */
export type StorageSpec = { readonly type: "local"; readonly root: string } | { readonly type: "config" };

/** Options of `openBackends`. */
export interface OpenBackendsOptions {
  /** Use this local datastore directory, whatever the configuration says. */
  readonly datastoreRoot?: string;
  /** @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** @default process.cwd() */
  readonly cwd?: string;
}

/** Opens the configured (or given) datastore and metadata provider. */
export function openBackends(options: OpenBackendsOptions = {}): Backends {
  const env = options.env ?? process.env;
  const config = loadConfig(env as NodeJS.ProcessEnv);
  emitConfigWarnings(config);
  const cwd = options.cwd ?? process.cwd();
  // Settings are checked before the storage is opened, so a bad one leaves no S3 client behind.
  const serviceUrl = config.metadata.value === "service" ? requireServiceUrl(config) : undefined;
  const storage: StorageBackend = options.datastoreRoot
    ? new LocalStorage(path.resolve(options.datastoreRoot))
    : openStorage(config, { cwd });
  const isLocal = storage instanceof LocalStorage;
  // Local metadata lives beside a local datastore, or in the nearest .metaflow when data is on S3.
  const localRoot = isLocal ? storage.root : (config.localRoot.value ?? findDatastoreRoot(cwd));
  let metadata: MetadataProvider;
  try {
    metadata = serviceUrl
      ? new ServiceMetadata({ url: serviceUrl, token: config.serviceToken.value ?? "", retryTimeoutMs: config.serviceRetryTimeout.value * 1000 })
      : new LocalMetadata(localRoot, { heartbeatTimeoutMs: config.heartbeatTimeout.value * 1000 });
  } catch (err) {
    closeStorage(storage);
    throw err;
  }
  const localDir = isLocal ? path.join(storage.root, "tmp") : path.join(os.tmpdir(), `metaflow-ts-${process.getuid?.() ?? "user"}`);
  return {
    config,
    storage,
    store: new ContentStore(storage),
    metadata,
    localDir,
    storageSpec: isLocal ? { type: "local", root: storage.root } : { type: "config" },
    description: `datastore ${storage.root}, metadata ${config.metadata.value === "service" ? config.serviceUrl.value : localRoot}`,
    close() {
      (metadata as { close?: () => void }).close?.();
      closeStorage(storage);
    },
  };
}

/** The metadata service's URL, which `METAFLOW_DEFAULT_METADATA=service` requires. */
function requireServiceUrl(config: MetaflowConfig): string {
  const url = config.serviceUrl.value;
  if (!url) {
    throw new ConfigError(
      "METAFLOW_SERVICE_URL",
      config.metadata.origin,
      `METAFLOW_DEFAULT_METADATA is 'service' (from ${config.metadata.origin}) but METAFLOW_SERVICE_URL is not set; set it to the metadata service, e.g. http://metaflow.example.com:8080`,
    );
  }
  return url;
}

/** Opens the storage a worker host was told to use. */
export function openStorageFromSpec(spec: StorageSpec): StorageBackend {
  return spec.type === "local" ? new LocalStorage(spec.root) : openStorage(loadConfig(process.env));
}
