/** Where the client reads from: the configured (or given) datastore and metadata provider. */
import * as path from "node:path";
import { ContentStore } from "../datastore/cas.js";
import { LocalStorage } from "../datastore/local.js";
import type { StorageBackend } from "../datastore/types.js";
import { LocalMetadata } from "../metadata/local.js";
import type { MetadataProvider } from "../metadata/types.js";
import { openBackends } from "../backends.js";

/** Options every client entry point accepts. */
export interface ClientOptions {
  /**
   * Read this local `.metaflow` directory, whatever the configuration says.
   * @default the configured datastore: `METAFLOW_DATASTORE_SYSROOT_LOCAL`, S3, or the nearest `.metaflow`
   */
  readonly datastoreRoot?: string;
  /**
   * Read through these already-open backends instead (a server that holds its own metadata
   * provider, e.g. `metaflow service --ui`). @default none
   */
  readonly backends?: { readonly metadata: MetadataProvider; readonly storage: StorageBackend };
}

/** The metadata provider and content store of one datastore. */
export interface ClientContext {
  /** Where the data is, for messages: a directory or an `s3://` URL. */
  readonly root: string;
  /**
   * The local directory holding the run records when metadata is local and the datastore is
   * remote (S3): then runs are only visible on the machine, and in the directory, that made them.
   */
  readonly localMetadataOverRemote?: string;
  readonly metadata: MetadataProvider;
  readonly storage: StorageBackend;
  readonly store: ContentStore;
  /** The options that open this same context again. */
  readonly options: ClientOptions;
}

const contexts = new Map<string, ClientContext>();
const given = new WeakMap<object, ClientContext>();

/** The context for `options`, shared by every object read from the same datastore. */
export function clientContext(options: ClientOptions = {}): ClientContext {
  const b = options.backends;
  if (b) {
    let ctx = given.get(b);
    if (!ctx) {
      ctx = { root: b.storage.root, metadata: b.metadata, storage: b.storage, store: new ContentStore(b.storage), options };
      given.set(b, ctx);
    }
    return ctx;
  }
  const key = options.datastoreRoot === undefined ? `cwd:${process.cwd()}` : `dir:${path.resolve(options.datastoreRoot)}`;
  let ctx = contexts.get(key);
  if (!ctx) {
    const b = openBackends(options.datastoreRoot === undefined ? {} : { datastoreRoot: options.datastoreRoot });
    const split = b.metadata instanceof LocalMetadata && !(b.storage instanceof LocalStorage);
    ctx = {
      root: b.storage.root,
      ...(split ? { localMetadataOverRemote: (b.metadata as LocalMetadata).root } : {}),
      metadata: b.metadata,
      storage: b.storage,
      store: b.store,
      options,
    };
    contexts.set(key, ctx);
  }
  return ctx;
}
