// The StorageBackend contract on S3 (a real s3rver process), multipart uploads, retries across a
// server restart, and the content store on S3 with the prefetching read-through cache.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ConfigError, Secret, loadConfig } from "../src/config/index.js";
import { CachedStorage } from "../src/datastore/cache.js";
import { ContentStore, contentKey } from "../src/datastore/cas.js";
import { closeStorage, openStorage } from "../src/datastore/open.js";
import { S3Storage } from "../src/datastore/s3.js";
import { DatastoreError } from "../src/errors.js";
import {
  S3RVER_CREDENTIALS,
  s3ServerAvailability,
  startS3Server,
  type TestS3Server,
} from "./helpers/s3server.js";

const run = promisify(execFile);
const MiB = 1024 * 1024;
const availability = s3ServerAvailability();
const here = path.dirname(fileURLToPath(import.meta.url));

let server: TestS3Server;
const opened: S3Storage[] = [];
const tempDirs: string[] = [];

function storage(
  prefix: string,
  options: { multipartThreshold?: number; attempts?: number } = {},
): S3Storage {
  const s = new S3Storage({
    root: `s3://${server.bucket}/${prefix}`,
    endpoint: server.endpoint,
    credentials: {
      kind: "env",
      accessKeyId: S3RVER_CREDENTIALS.accessKeyId,
      secretAccessKey: secret(S3RVER_CREDENTIALS.secretAccessKey),
    },
    ...options,
  });
  opened.push(s);
  return s;
}

function secret(value: string): Secret {
  return new Secret(value);
}

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mf-s3cache-"));
  tempDirs.push(dir);
  return dir;
}

/** Deterministic pseudo-random bytes (incompressible, so the content store stores them raw). */
function bytes(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i);
  }
  return out;
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

void describe("S3Storage on s3rver", { skip: availability.skip }, () => {
  before(async () => {
    server = await startS3Server();
  });
  after(async () => {
    for (const s of opened) s.close();
    await server?.destroy();
    for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
  });

  void test("put / get / exists / delete round trip; missing objects are undefined, not errors", async () => {
    const s = storage("contract");
    assert.equal(s.root, `s3://${server.bucket}/contract`);
    await s.put("runs/1/meta.json", Buffer.from('{"a":1}'));
    await s.put("runs/1/parts", [Buffer.from("ab"), Buffer.alloc(0), Buffer.from("cd")]);
    assert.equal((await s.get("runs/1/meta.json"))?.toString(), '{"a":1}');
    assert.equal((await s.get("runs/1/parts"))?.toString(), "abcd");
    assert.equal(await s.exists("runs/1/meta.json"), true);
    assert.equal(await s.exists("runs/1/nothing"), false);
    assert.equal(await s.get("runs/1/nothing"), undefined);
    await s.put("runs/1/meta.json", Buffer.from("v2"));
    assert.equal((await s.get("runs/1/meta.json"))?.toString(), "v2", "put replaces");
    await s.put("runs/1/meta.json", Buffer.from("v3"), { ifAbsent: true });
    assert.equal(
      (await s.get("runs/1/meta.json"))?.toString(),
      "v2",
      "ifAbsent keeps the existing object",
    );
    await s.put("runs/1/empty", Buffer.alloc(0));
    assert.deepEqual(await s.get("runs/1/empty"), Buffer.alloc(0));
    await s.delete("runs/1/meta.json");
    await s.delete("runs/1/meta.json");
    assert.equal(await s.exists("runs/1/meta.json"), false);
  });

  void test("list: one level, sorted, sub-prefixes as names, isolated by root prefix", async () => {
    const s = storage("listing/a");
    const sibling = storage("listing/ab");
    await Promise.all([
      s.put("x/2", Buffer.from("2")),
      s.put("x/1", Buffer.from("1")),
      s.put("x/sub/deep", Buffer.from("d")),
      s.put("top", Buffer.from("t")),
      sibling.put("x/other", Buffer.from("o")),
    ]);
    assert.deepEqual(await s.list("x"), ["1", "2", "sub"]);
    assert.deepEqual(await s.list("x/"), ["1", "2", "sub"]);
    assert.deepEqual(await s.list(""), ["top", "x"]);
    assert.deepEqual(await s.list("x/sub"), ["deep"]);
    assert.deepEqual(await s.list("nothing/here"), []);
    assert.deepEqual(
      await sibling.list("x"),
      ["other"],
      "a prefix that extends another one is a different root",
    );
  });

  void test("list follows continuation past 1000 keys", async () => {
    const s = storage("many");
    const names = Array.from({ length: 1050 }, (_, i) => `k${String(i).padStart(4, "0")}`);
    await Promise.all(names.map((n) => s.put(`p/${n}`, Buffer.from(n))));
    assert.deepEqual(await s.list("p"), names);
  });

  void test("keys that could escape the root are refused, as on local storage", async () => {
    const s = storage("keys");
    for (const key of ["", "a//b", "../x", "a/./b", "/abs"]) {
      await assert.rejects(s.put(key, Buffer.from("x")), DatastoreError, key);
    }
    assert.throws(() => new S3Storage({ root: "s3://No_Such/x" }), /Invalid S3 URL/);
  });

  // Overwrites are not what the datastore relies on (s3rver, unlike S3, can expose a half-written
  // overwrite): content objects are written once, with `ifAbsent`, and read only after the writer
  // recorded them. What must hold is that racing writers of one object both succeed and leave it whole.
  void test("racing writers of one content object both succeed and leave it whole and verified", async () => {
    const s = storage("atomic", { multipartThreshold: 5 * MiB });
    const value = Buffer.alloc(6 * MiB, 3);
    const [a, b] = await Promise.all([new ContentStore(s).put([value]), new ContentStore(s).put([value])]);
    assert.equal(a.hash, b.hash);
    const back = await new ContentStore(s).get(a.hash);
    assert.ok(back.equals(value));
  });

  void test("a large object goes up in parts and comes back byte-identical", async () => {
    const s = storage("large");
    const commands: string[] = [];
    (await s.transport.sdkClient()).middlewareStack.add(
      (next, context) => (args) => {
        commands.push(String(context.commandName));
        return next(args);
      },
      { step: "initialize" },
    );
    const data = bytes(40 * MiB + 123, 7);
    // Uneven chunks, as the serializer produces them: the upload must not depend on chunk boundaries.
    await s.put("big.bin", [
      data.subarray(0, 1000),
      data.subarray(1000, 20 * MiB),
      data.subarray(20 * MiB),
    ]);
    assert.ok(commands.includes("CreateMultipartUploadCommand"), commands.join());
    assert.equal(
      commands.filter((c) => c === "UploadPartCommand").length,
      6,
      "40 MiB in 8 MiB parts",
    );
    assert.ok(!commands.includes("PutObjectCommand"));
    const back = await s.get("big.bin");
    assert.equal(back?.length, data.length);
    assert.equal(sha(back as Buffer), sha(data));
    const file = path.join(tempDir(), "big.bin");
    assert.equal(await s.download("big.bin", file), true);
    assert.equal(sha(fs.readFileSync(file)), sha(data));
  });

  void test("operations in flight when the server restarts are retried and complete", async () => {
    const s = storage("restart");
    let attempts = 0;
    // The deserialize step runs once per HTTP attempt, below the SDK's retry middleware.
    (await s.transport.sdkClient()).middlewareStack.add(
      (next) => (args) => {
        attempts++;
        return next(args);
      },
      { step: "deserialize" },
    );
    const small = Array.from({ length: 150 }, (_, i) => bytes(64 * 1024, 100 + i));
    const big = bytes(24 * MiB, 99);
    const bigRead = bytes(32 * MiB, 98);
    await s.put("before", Buffer.from("kept"));
    await s.put("big-read", bigRead);
    // Downloads of a big object in flight when the server dies fail mid-body, past the SDK's retries.
    const reads = Promise.all([s.get("big-read"), s.get("big-read")]);
    const writes = Promise.all([...small.map((b, i) => s.put(`obj/${i}`, b)), s.put("big", big)]);
    // Kill the server while that sequence is in flight, keep it down a moment, bring it back.
    await new Promise((resolve) => setTimeout(resolve, 60));
    await server.stop();
    const readDuringOutage = s.get("before");
    await new Promise((resolve) => setTimeout(resolve, 800));
    await server.start();
    await writes;
    for (const got of await reads) assert.equal(sha(got as Buffer), sha(bigRead));
    assert.equal((await readDuringOutage)?.toString(), "kept");
    assert.ok(attempts > small.length + 3, `the outage forced retries (${attempts} HTTP attempts)`);
    const back = await Promise.all(small.map((_, i) => s.get(`obj/${i}`)));
    back.forEach((b, i) => assert.ok(b?.equals(small[i] as Buffer), `obj/${i} intact`));
    assert.equal(sha((await s.get("big")) as Buffer), sha(big));
  });

  void test("a server that stays down fails with an error naming the URL, after the configured attempts", async () => {
    const s = storage("down", { attempts: 2 });
    await server.stop();
    try {
      await assert.rejects(
        s.get("some/key"),
        (err: unknown) =>
          err instanceof DatastoreError &&
          err.message.includes(`s3://${server.bucket}/down/some/key`) &&
          /after 2 attempts/.test(err.message),
      );
    } finally {
      await server.start();
    }
  });

  void test("a missing bucket is an error naming the bucket, not a missing object", async () => {
    const s = new S3Storage({
      root: "s3://no-such-bucket-here/x",
      endpoint: server.endpoint,
      credentials: { kind: "env", accessKeyId: "S3RVER", secretAccessKey: secret("S3RVER") },
    });
    opened.push(s);
    await assert.rejects(s.get("k"), /no-such-bucket-here.*bucket does not exist/s);
  });

  void describe("ContentStore on S3 with the read-through cache", () => {
    void test("values written in another process are prefetched, verified and read synchronously", async () => {
      const env = {
        ...process.env,
        ...server.env(`s3://${server.bucket}/cas`),
        METAFLOW_S3_CACHE_DIR: tempDir(),
      };
      const values = [{ a: 1, b: "two" }, "x".repeat(10_000), [1, 2, 3]];
      const { stdout } = await run(
        process.execPath,
        ["--import", "tsx", path.join(here, "fixtures/s3-put-values.ts"), JSON.stringify(values)],
        { env },
      );
      const refs = JSON.parse(stdout) as { hash: string; encoding: "json" | "v8" }[];
      assert.equal(refs.length, 3);

      // A "second machine": the same bucket, an empty cache.
      const cacheDir = tempDir();
      const config = loadConfig(
        { ...server.env(`s3://${server.bucket}/cas`), METAFLOW_S3_CACHE_DIR: cacheDir },
        tempDir(),
      );
      const backend = openStorage(config);
      try {
        assert.ok(backend instanceof CachedStorage);
        const store = new ContentStore(backend);
        assert.throws(
          () => store.getValueSync(refs[0] as never),
          DatastoreError,
          "not prefetched yet",
        );
        await store.prefetch(refs.map((r) => r.hash));
        assert.deepEqual(
          refs.map((r) => store.getValueSync(r)),
          values,
        );
        for (const r of refs) assert.ok(fs.existsSync(backend.localPath(contentKey(r.hash))));
        assert.ok(backend.cacheRoot.startsWith(cacheDir));
      } finally {
        closeStorage(backend);
      }
    });

    void test("large raw and compressible values round-trip; async get needs no prefetch", async () => {
      const remote = storage("cas2");
      const store = new ContentStore(new CachedStorage(remote, tempDir()));
      const floats = new Float64Array(3 * 1024 * 1024).map((_, i) => Math.sin(i));
      const raw = bytes(20 * MiB, 3);
      const [a, b] = [await store.putValue(floats), await store.putValue(raw)];
      assert.equal((await store.putValue(raw)).written, false, "dedup");
      const fresh = new ContentStore(new CachedStorage(remote, tempDir()));
      assert.deepEqual(await fresh.getValue(a), floats);
      assert.ok(((await fresh.getValue(b)) as Buffer).equals(raw));
      assert.ok((fresh.getValueSync(b) as Buffer).equals(raw), "the async read filled the cache");
    });

    void test("a corrupt object never enters the cache, and a missing one is named", async () => {
      const remote = storage("cas3");
      const writer = new ContentStore(remote);
      const ref = await writer.putValue({ secret: "value" });
      const key = contentKey(ref.hash);
      const stored = (await remote.get(key)) as Buffer;
      const tampered = Buffer.from(stored);
      tampered[tampered.length - 2] = (tampered[tampered.length - 2] ?? 0) ^ 0xff;
      await remote.put(key, tampered);
      const cache = new CachedStorage(remote, tempDir());
      const store = new ContentStore(cache);
      await assert.rejects(store.prefetch([ref.hash]), /corrupt/);
      assert.equal(fs.existsSync(cache.localPath(key)), false);
      const missing = randomBytes(32).toString("hex");
      await assert.rejects(
        store.prefetch([missing]),
        (err: unknown) =>
          err instanceof DatastoreError && err.message.includes(`${remote.root}/data/`),
      );
    });

    void test("prefetch downloads many objects in parallel", async () => {
      const remote = storage("cas4");
      const writer = new ContentStore(remote);
      const refs = await Promise.all(
        Array.from({ length: 200 }, (_, i) => writer.putValue({ i, pad: "p".repeat(100) })),
      );
      const store = new ContentStore(new CachedStorage(remote, tempDir()));
      const started = Date.now();
      await store.prefetch(refs.map((r) => r.hash));
      const elapsed = Date.now() - started;
      refs.forEach((r, i) => assert.deepEqual(store.getValueSync(r), { i, pad: "p".repeat(100) }));
      assert.ok(elapsed < 20_000, `prefetch of 200 objects took ${elapsed} ms`);
    });

    void test("openStorage: local by default, and s3 without a root is a config error", () => {
      const local = openStorage(
        loadConfig({ METAFLOW_DATASTORE_SYSROOT_LOCAL: "/tmp/x/.metaflow" }, tempDir()),
      );
      assert.equal(local.root, "/tmp/x/.metaflow");
      assert.throws(
        () => openStorage(loadConfig({ METAFLOW_DEFAULT_DATASTORE: "s3" }, tempDir())),
        (err: unknown) => err instanceof ConfigError && err.key === "METAFLOW_DATASTORE_SYSROOT_S3",
      );
    });
  });
});
