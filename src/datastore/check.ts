/**
 * Checking stored objects without trusting them: resume asks, before it clones a task, whether
 * every object the task points to is still there and intact.
 */
import { DatastoreError } from "../errors.js";
import { contentKey, type ContentStore } from "./cas.js";
import { checkObjectShape } from "./local-read.js";

/** What `checkObject` found. */
export type ObjectCheck =
  | { readonly ok: true }
  | { readonly ok: false; readonly problem: "missing" | "corrupt"; readonly where: string; readonly detail: string };

/**
 * Whether the object with this hash (of `size` uncompressed bytes) is present and intact, without
 * throwing for a bad object: objects up to `verifyUpTo` bytes are read and checked against their
 * hash; bigger ones are checked for presence and, in a local directory, for their header and length
 * (a truncated or overwritten file), which costs one small read whatever their size.
 */
export async function checkObject(store: ContentStore, hash: string, size: number, verifyUpTo: number): Promise<ObjectCheck> {
  const backend = store.backend;
  const key = contentKey(hash);
  const local = backend.localPath && !backend.ensureLocal ? backend.localPath(key) : undefined;
  const where = local ?? `${backend.root}/${key}`;
  try {
    if (size <= verifyUpTo) {
      await store.get(hash);
      return { ok: true };
    }
    if (local) return await checkLocalShape(local, hash, size);
    return (await backend.exists(key)) ? { ok: true } : { ok: false, problem: "missing", where, detail: "" };
  } catch (err) {
    if (!(err instanceof DatastoreError)) throw err;
    const present = await backend.exists(key);
    return { ok: false, problem: present ? "corrupt" : "missing", where, detail: err.message };
  }
}

/** A big local object: its header must be ours and a raw payload exactly as long as the value. */
async function checkLocalShape(file: string, hash: string, size: number): Promise<ObjectCheck> {
  try {
    if (await checkObjectShape(file, hash, size)) return { ok: true };
    return { ok: false, problem: "missing", where: file, detail: "" };
  } catch (err) {
    if (err instanceof DatastoreError) return { ok: false, problem: "corrupt", where: file, detail: err.message };
    throw err;
  }
}
