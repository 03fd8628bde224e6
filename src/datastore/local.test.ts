import { after, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DatastoreError } from "../errors.js";
import { findDatastoreRoot, LocalStorage } from "./local.js";

const scratchDirs: string[] = [];
after(() => {
  for (const dir of scratchDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh temp directory, removed when the file's tests finish. */
function scratchDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  scratchDirs.push(dir);
  return dir;
}

function tempDir(): string {
  return scratchDir("mf-local-");
}

void test("put, get, exists, list and delete", async () => {
  const storage = new LocalStorage(tempDir());
  assert.equal(await storage.get("a/b/c"), undefined);
  assert.equal(await storage.exists("a/b/c"), false);
  await storage.put("a/b/c", Buffer.from("one"));
  await storage.put("a/b/d", [Buffer.from("tw"), Buffer.from(""), Buffer.from("o")]);
  assert.equal((await storage.get("a/b/c"))?.toString(), "one");
  assert.equal((await storage.get("a/b/d"))?.toString(), "two");
  assert.equal(await storage.exists("a/b/c"), true);
  assert.equal(await storage.exists("a/b"), false, "a prefix is not an object");
  assert.deepEqual(await storage.list("a/b"), ["c", "d"]);
  assert.deepEqual(await storage.list("a/"), ["b"]);
  assert.deepEqual(await storage.list(""), ["a"]);
  assert.deepEqual(await storage.list("missing/prefix"), []);
  assert.deepEqual(await storage.list("a/b/c"), [], "an object is not a prefix");
  await storage.put("a/b/c", Buffer.from("replaced"));
  assert.equal((await storage.get("a/b/c"))?.toString(), "replaced");
  await storage.delete("a/b/c");
  await storage.delete("a/b/c");
  assert.equal(await storage.exists("a/b/c"), false);
  assert.equal(fs.readFileSync(storage.localPath("a/b/d"), "utf8"), "two");
});

void test("ifAbsent keeps the first object", async () => {
  const storage = new LocalStorage(tempDir());
  await storage.put("k", Buffer.from("first"), { ifAbsent: true });
  await storage.put("k", Buffer.from("second"), { ifAbsent: true });
  assert.equal((await storage.get("k"))?.toString(), "first");
});

void test("concurrent ifAbsent writers of the same key all succeed and leave no temp files", async () => {
  const root = tempDir();
  const storage = new LocalStorage(root);
  const data = Buffer.alloc(1 << 20, 7);
  await Promise.all(
    Array.from({ length: 8 }, () => storage.put("data/ab/same", [data], { ifAbsent: true })),
  );
  assert.deepEqual((await storage.get("data/ab/same"))?.equals(data), true);
  assert.deepEqual(fs.readdirSync(path.join(root, "data", "ab")), ["same"]);
});

void test("keys cannot escape the root", async () => {
  const storage = new LocalStorage(tempDir());
  for (const key of ["../x", "a/../../x", "/abs", "a//b", "a/./b", ""]) {
    await assert.rejects(storage.put(key, Buffer.from("x")), DatastoreError, key);
  }
});

void test("a large Buffer[] is written whole", async () => {
  const storage = new LocalStorage(tempDir());
  const parts = [Buffer.alloc(3 << 20, 1), Buffer.alloc(5, 2), Buffer.alloc(2 << 20, 3)];
  await storage.put("big", parts);
  assert.ok((await storage.get("big"))?.equals(Buffer.concat(parts)));
});

void test("findDatastoreRoot finds the nearest .metaflow, else proposes one in cwd without creating it", () => {
  const top = tempDir();
  const nested = path.join(top, "a", "b", "c");
  fs.mkdirSync(nested, { recursive: true });
  assert.equal(findDatastoreRoot(nested), path.join(nested, ".metaflow"));
  assert.equal(fs.existsSync(path.join(nested, ".metaflow")), false);

  fs.mkdirSync(path.join(top, ".metaflow"));
  assert.equal(findDatastoreRoot(nested), path.join(top, ".metaflow"));
  fs.mkdirSync(path.join(top, "a", ".metaflow"));
  assert.equal(findDatastoreRoot(nested), path.join(top, "a", ".metaflow"));
  assert.equal(findDatastoreRoot(top), path.join(top, ".metaflow"));

  // A file named .metaflow is not a datastore.
  fs.writeFileSync(path.join(nested, ".metaflow"), "");
  assert.equal(findDatastoreRoot(nested), path.join(top, "a", ".metaflow"));
});

void test("a big staged object (page cache filled in parallel) is written whole, or discarded without a trace", async () => {
  const root = tempDir();
  const storage = new LocalStorage(root);
  // 40 MiB in uneven chunks, a distinct byte pattern per chunk so a misplaced slice would show.
  const chunks = [7, 19, 14].map((mb, i) => Buffer.alloc(mb * 1024 * 1024 + i, i + 1));
  const staged = storage.stage(chunks);
  await staged.publish("data/ab/big");
  const back = fs.readFileSync(storage.localPath("data/ab/big"));
  assert.ok(back.equals(Buffer.concat(chunks)));
  const dropped = storage.stage(chunks);
  await dropped.discard();
  assert.deepEqual(fs.readdirSync(root).filter((n) => n.startsWith(".tmp-")), []);
});
