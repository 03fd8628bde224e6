import { after, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import vm from "node:vm";
import { DatastoreError } from "../errors.js";
import { ContentStore, contentKey } from "./cas.js";
import { benchLargeBuffer } from "./bench-cas.js";
import { LocalStorage } from "./local.js";
import type { StorageBackend } from "./types.js";

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

const HEADER = 8;

function newStore(): { store: ContentStore; storage: LocalStorage; root: string } {
  const root = scratchDir("mf-cas-");
  const storage = new LocalStorage(root);
  return { store: new ContentStore(storage), storage, root };
}

function countObjects(root: string): number {
  const data = path.join(root, "data");
  if (!fs.existsSync(data)) return 0;
  return fs
    .readdirSync(data)
    .reduce((n, dir) => n + fs.readdirSync(path.join(data, dir)).length, 0);
}

/** A backend without local paths, to exercise the generic (non-file) read path. */
class MemoryStorage implements StorageBackend {
  readonly root = "mem://test";
  readonly objects = new Map<string, Buffer>();
  async put(
    key: string,
    data: Buffer | readonly Buffer[],
    options?: { ifAbsent?: boolean },
  ): Promise<void> {
    if (options?.ifAbsent && this.objects.has(key)) return;
    this.objects.set(key, Buffer.concat(Buffer.isBuffer(data) ? [data] : data));
  }
  async get(key: string): Promise<Buffer | undefined> {
    return this.objects.get(key);
  }
  async exists(key: string): Promise<boolean> {
    return this.objects.has(key);
  }
  async list(): Promise<string[]> {
    return [];
  }
  async delete(key: string): Promise<void> {
    this.objects.delete(key);
  }
}

void test("every kind of value round-trips through the store, async and sync", async () => {
  const { store } = newStore();
  const cyclic: Record<string, unknown> = { n: 1 };
  cyclic.me = cyclic;
  const values: unknown[] = [
    0,
    -0,
    NaN,
    "text",
    false,
    10n ** 30n,
    undefined,
    null,
    [1, [2, [3]]],
    { a: { b: "c" } },
    new Map([["k", new Set([1])]]),
    new Date(86_400_000),
    /re/g,
    Buffer.from("buffer"),
    new Float64Array([1, 2.5]),
    new BigInt64Array([-5n]),
    new Uint8Array([1, 2, 3]).buffer,
    { big: "x".repeat(100_000), arr: new Int32Array(10_000).fill(3) },
  ];
  for (const value of values) {
    const ref = await store.putValue(value);
    assert.deepEqual(await store.getValue(ref), value);
    assert.deepEqual(store.getValueSync(ref), value);
  }
  const foreign: unknown = vm.runInNewContext(
    "({m: new Map([[1, new Uint8Array([1,2])]]), d: new Date(0)})",
  );
  const foreignRef = await store.putValue(foreign);
  assert.deepEqual(await store.getValue(foreignRef), {
    m: new Map([[1, new Uint8Array([1, 2])]]),
    d: new Date(0),
  });
  const ref = await store.putValue(cyclic);
  const back = (await store.getValue(ref)) as Record<string, unknown>;
  assert.equal(back.me, back);
});

void test("putValue reports the artifact's encoding, type and hash", async () => {
  const { store } = newStore();
  const ref = await store.putValue(new Float32Array([1, 2]));
  assert.equal(ref.encoding, "typed");
  assert.equal(ref.type, "Float32Array");
  assert.equal(ref.typedArray, "Float32Array");
  assert.equal(ref.size, 8);
  assert.match(ref.hash, /^[0-9a-f]{64}$/);
  const plain = await store.putValue({ a: 1 });
  assert.equal(plain.encoding, "v8");
  assert.equal(plain.type, "Object");
  assert.equal("typedArray" in plain, false);
});

void test("unstorable values are rejected with the path named", async () => {
  const { store } = newStore();
  await assert.rejects(store.putValue({ model: { fit() {} } }), {
    message: "a function at .model.fit",
  });
});

void test("Buffers and typed arrays are stored raw: object size is byte length plus header", async () => {
  const { store, storage } = newStore();
  const buf = randomBytes(200_000);
  const ref = await store.putValue(buf);
  assert.equal(ref.encoding, "buffer");
  assert.equal(ref.storedBytes, buf.length + HEADER);
  assert.equal(fs.statSync(storage.localPath(contentKey(ref.hash))).size, buf.length + HEADER);

  const floats = new Float64Array(randomBytes(80_000).buffer);
  const fref = await store.putValue(floats);
  assert.equal(
    fs.statSync(storage.localPath(contentKey(fref.hash))).size,
    floats.byteLength + HEADER,
  );
  const back = store.getValueSync(fref) as Float64Array;
  assert.ok(back instanceof Float64Array);
  assert.equal(back.buffer.byteLength, floats.byteLength, "the result owns exactly its bytes");
  assert.deepEqual(back, floats);
});

void test("equal content is stored once", async () => {
  const { store, root } = newStore();
  const first = await store.put([Buffer.from("same content")]);
  const second = await store.put([Buffer.from("same "), Buffer.from("content")]);
  assert.equal(first.hash, second.hash);
  assert.equal(first.written, true);
  assert.equal(second.written, false);
  assert.equal(second.storedBytes, 0);
  const a = await store.putValue({ x: [1, 2, 3] });
  const b = await store.putValue({ x: [1, 2, 3] });
  assert.equal(a.hash, b.hash);
  assert.equal(countObjects(root), 2);
  assert.equal(await store.has(first.hash), true);
  assert.equal(await store.has("0".repeat(64)), false);
});

void test("big raw values are written while hashed; a duplicate's speculative copy is discarded", async () => {
  const { store, root } = newStore();
  const big = randomBytes(20 << 20);
  const first = await store.put([big.subarray(0, 5 << 20), big.subarray(5 << 20)]);
  const second = await store.put([big]);
  assert.equal(first.written, true);
  assert.equal(first.storedBytes, big.length + HEADER);
  assert.equal(second.written, false);
  assert.equal(countObjects(root), 1);
  assert.deepEqual(fs.readdirSync(root), ["data"], "no staged temp files left in the root");
  assert.ok((await store.get(first.hash)).equals(big));
  assert.ok(store.getSync(first.hash).equals(big));
});

void test("compressible data is stored compressed, random and small data raw", async () => {
  const { store, storage } = newStore();
  const text = Buffer.from("metaflow ".repeat(100_000));
  const t = await store.put([text]);
  assert.ok(t.storedBytes < text.length / 10, `stored ${t.storedBytes} of ${text.length}`);
  assert.equal(fs.statSync(storage.localPath(contentKey(t.hash))).size, t.storedBytes);
  assert.ok((await store.get(t.hash)).equals(text));
  assert.ok(store.getSync(t.hash).equals(text));

  const noise = randomBytes(500_000);
  assert.equal((await store.put([noise])).storedBytes, noise.length + HEADER);
  const small = Buffer.alloc(1000);
  assert.equal(
    (await store.put([small])).storedBytes,
    small.length + HEADER,
    "below 4 KiB: never compressed",
  );
  // A compressible start followed by noise: the sample says compress, the whole does not pay.
  const mixed = Buffer.concat([Buffer.alloc(70_000), randomBytes(4_000_000)]);
  const m = await store.put([mixed]);
  assert.ok(m.storedBytes <= mixed.length + HEADER);
  assert.ok((await store.get(m.hash)).equals(mixed));
});

void test("a truncated or bit-flipped object is detected on read", async () => {
  for (const content of [randomBytes(100_000), Buffer.from("abc".repeat(50_000))]) {
    const { store, storage } = newStore();
    const { hash } = await store.put([content]);
    const file = storage.localPath(contentKey(hash));
    const original = fs.readFileSync(file);

    fs.writeFileSync(file, original.subarray(0, original.length - 100));
    await assert.rejects(store.get(hash), corruptError(hash, file));
    assert.throws(() => store.getSync(hash), corruptError(hash, file));

    const flipped = Buffer.from(original);
    flipped[flipped.length - 10]! ^= 0x01;
    fs.writeFileSync(file, flipped);
    await assert.rejects(store.get(hash), corruptError(hash, file));
    assert.throws(() => store.getSync(hash), corruptError(hash, file));

    fs.writeFileSync(file, Buffer.from("junk"));
    await assert.rejects(store.get(hash), corruptError(hash, file));

    fs.writeFileSync(file, original);
    assert.ok((await store.get(hash)).equals(content));
  }
});

function corruptError(hash: string, file: string): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof DatastoreError, String(err));
    assert.ok(err.message.includes(hash), err.message);
    assert.ok(err.message.includes(file), err.message);
    assert.match(err.message, /corrupt/);
    assert.match(err.message, /Delete .* rerun/);
    return true;
  };
}

void test("a missing object is a DatastoreError naming the hash", async () => {
  const { store } = newStore();
  const hash = "ab".repeat(32);
  await assert.rejects(
    store.get(hash),
    (err: unknown) => err instanceof DatastoreError && err.message.includes(hash),
  );
  assert.throws(
    () => store.getSync(hash),
    (err: unknown) => err instanceof DatastoreError && err.message.includes(hash),
  );
  await assert.rejects(store.get("not-a-hash"), DatastoreError);
});

void test("concurrent writers of the same content both succeed", async () => {
  const { store, root } = newStore();
  const data = randomBytes(2 << 20);
  const stores = [store, new ContentStore(new LocalStorage(root))];
  const results = await Promise.all([...stores, ...stores].map((s) => s.put([data])));
  assert.ok(results.every((r) => r.hash === results[0]?.hash));
  assert.equal(countObjects(root), 1);
  assert.ok((await store.get(results[0]!.hash)).equals(data));
  const leftovers = fs.readdirSync(path.join(root, "data", results[0]!.hash.slice(0, 2)));
  assert.deepEqual(leftovers, [results[0]!.hash], "no temp files left behind");
});

void test("a backend without local files works through get(), and getSync() says why it cannot", async () => {
  const backend = new MemoryStorage();
  const store = new ContentStore(backend);
  const values = [{ a: [1, 2] }, Buffer.from("zz".repeat(10_000)), new Uint16Array([1, 2, 3])];
  for (const value of values) {
    const ref = await store.putValue(value);
    assert.deepEqual(await store.getValue(ref), value);
    assert.throws(
      () => store.getSync(ref.hash),
      (err: unknown) => err instanceof DatastoreError && /synchronous/.test(err.message),
    );
  }
  const [key, object] = [...backend.objects][0]!;
  object[object.length - 1]! ^= 0xff;
  await assert.rejects(store.get(key.split("/")[2]!), DatastoreError);
});

void test("benchLargeBuffer reports its figures", async () => {
  const dir = scratchDir("mf-bench-");
  const r = await benchLargeBuffer(dir, 4);
  assert.ok(r.writeMs > 0 && r.readMs > 0 && r.mbPerSec > 0);
});

void test("big values: compressible ones are stored raw, and synchronous reads verify them on a helper thread", async () => {
  const { store, storage } = newStore();
  // 20 MiB of a repeating pattern: deflate would shrink it, but at this size it costs more than it saves.
  const big = Buffer.alloc(20 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i % 1000, i);
  const { hash, storedBytes } = await store.put([big]);
  assert.equal(storedBytes, big.length + HEADER);
  const back = store.getSync(hash);
  assert.ok(back.equals(big));
  assert.equal(back.byteOffset, 0, "the payload is a buffer of its own, 8-aligned for typed-array views");

  const file = storage.localPath(contentKey(hash));
  const original = fs.readFileSync(file);
  const flipped = Buffer.from(original);
  flipped[HEADER + 12_345_678] = flipped[HEADER + 12_345_678]! ^ 1;
  fs.writeFileSync(file, flipped);
  assert.throws(() => store.getSync(hash), corruptError(hash, file));
  fs.writeFileSync(file, original.subarray(0, original.length - 1));
  assert.throws(() => store.getSync(hash), corruptError(hash, file));
  fs.rmSync(file);
  assert.throws(() => store.getSync(hash), (err: unknown) => err instanceof DatastoreError && /is not in the datastore/.test((err as Error).message));
});
