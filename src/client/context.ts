/** Where the client reads from: one datastore directory's metadata and content store. */
import * as path from "node:path";
import { ContentStore } from "../datastore/cas.js";
import { findDatastoreRoot, LocalStorage } from "../datastore/local.js";
import { LocalMetadata } from "../metadata/local.js";
import type { MetadataProvider } from "../metadata/types.js";

/** Options every client entry point accepts. */
export interface ClientOptions {
  /** The `.metaflow` directory to read. @default the nearest `.metaflow` up from the working directory */
  readonly datastoreRoot?: string;
}

/** The metadata provider and content store of one datastore. */
export interface ClientContext {
  readonly root: string;
  readonly metadata: MetadataProvider;
  /** The local metadata, for what only a local datastore has (log files). */
  readonly local: LocalMetadata;
  readonly store: ContentStore;
}

const contexts = new Map<string, ClientContext>();

/** The context for `options`, shared by every object read from the same datastore. */
export function clientContext(options: ClientOptions = {}): ClientContext {
  const root = path.resolve(options.datastoreRoot ?? findDatastoreRoot(process.cwd()));
  let ctx = contexts.get(root);
  if (!ctx) {
    const local = new LocalMetadata(root);
    ctx = { root, metadata: local, local, store: new ContentStore(new LocalStorage(root)) };
    contexts.set(root, ctx);
  }
  return ctx;
}
