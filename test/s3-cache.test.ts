/**
 * The S3 read-through cache must never stand in for the bucket, must stay private to its owner, and
 * must never serve bytes it has not verified: real s3rver, real `metaflow` processes.
 */
import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { Secret } from "../src/config/index.js";
import { CachedStorage } from "../src/datastore/cache.js";
import { ContentStore, contentKey } from "../src/datastore/cas.js";
import { S3Storage } from "../src/datastore/s3.js";
import { DatastoreError } from "../src/errors.js";
import { LocalMetadata } from "../src/metadata/local.js";
import { Project } from "./helpers/project.js";
import { remoteAvailability, startRemoteStack, type RemoteStack } from "./helpers/remote.js";
import { S3RVER_CREDENTIALS } from "./helpers/s3server.js";

const availability = remoteAvailability();
let stack: RemoteStack | undefined;
const opened: S3Storage[] = [];
const temps: string[] = [];

before(async () => {
  if (!availability.s3) stack = await startRemoteStack({ service: false });
});
after(async () => {
  for (const s of opened) s.close();
  for (const d of temps) fs.rmSync(d, { recursive: true, force: true });
  await stack?.stop();
});

function bucket(prefix: string): S3Storage {
  const s3 = stack!.s3;
  const s = new S3Storage({
    root: `s3://${s3.bucket}/${prefix}`,
    endpoint: s3.endpoint,
    credentials: {
      kind: "env",
      accessKeyId: S3RVER_CREDENTIALS.accessKeyId,
      secretAccessKey: new Secret(S3RVER_CREDENTIALS.secretAccessKey),
    },
  });
  opened.push(s);
  return s;
}

/** A fresh private directory; the cache directory the tests use is created inside it. */
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mf-cachetest-"));
  temps.push(dir);
  return dir;
}

const mode = (p: string): number => fs.statSync(p).mode & 0o777;

/** Every directory and file under `dir`, with `dir` itself. */
function walk(dir: string): string[] {
  const out = [dir];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

const HELLO = `import { FlowSpec, step } from "metaflow-ts";
export default class CacheFlow extends FlowSpec {
  declare message: string;
  @step start() { this.message = "kept-" + process.env.MARK; this.next(this.end); }
  @step end() { console.log(this.message); }
}
`;

void describe("the S3 cache and the bucket", { skip: availability.s3 }, () => {
  void test("an object deleted from the bucket is uploaded again by the next run on the same machine", async () => {
    const work = new Project();
    try {
      work.write("flow.ts", HELLO);
      const prefix = `reupload-${path.basename(work.dir)}`;
      const env = {
        ...stack!.env({ prefix, cacheDir: path.join(work.dir, "cache"), metadata: "local" }),
        MARK: "one",
      };
      const first = await work.cli(["run", "flow.ts"], { env });
      assert.equal(first.code, 0, first.stderr);
      const md = new LocalMetadata(work.root);
      const runId = (await md.listRuns("CacheFlow"))[0]!;
      const task = await md.getTask(
        "CacheFlow",
        runId,
        "start",
        (await md.listTasks("CacheFlow", runId, "start"))[0]!,
      );
      const ref = task!.attempts[0]!.end!.artifacts.find((a) => a.name === "message")!;
      const remote = bucket(prefix);
      const key = contentKey(ref.hash);
      assert.ok(await remote.exists(key));

      // What the corrupt-object message advises: delete the object from the bucket, rerun.
      await remote.delete(key);
      const again = await work.cli(["run", "flow.ts"], { env });
      assert.equal(again.code, 0, again.stderr);
      assert.ok(await remote.exists(key), "the rerun must store the object in the bucket again");

      // Another machine (an empty cache) reads it from the bucket.
      const other = new ContentStore(new CachedStorage(remote, path.join(tempDir(), "cache")));
      assert.equal(await other.getValue(ref), "kept-one");
    } finally {
      work.cleanup();
    }
  });

  void test("the content store asks the bucket, not the cache, whether an object must be written", async () => {
    const remote = bucket("exists-check");
    const cache = new CachedStorage(remote, path.join(tempDir(), "cache"));
    const store = new ContentStore(cache);
    const ref = await store.putValue({ planted: false });
    await remote.delete(contentKey(ref.hash));
    assert.equal(
      await cache.exists(contentKey(ref.hash)),
      false,
      "exists() answers for the bucket",
    );
    const again = await store.putValue({ planted: false });
    assert.equal(again.written, true);
    assert.ok(await remote.exists(contentKey(ref.hash)));
  });
});

void describe("the cache is private to its owner", { skip: availability.s3 }, () => {
  void test("a new cache directory is 0700 and every cached object 0600", async () => {
    const dir = path.join(tempDir(), "nested", "cache");
    const cache = new CachedStorage(bucket("private"), dir);
    const store = new ContentStore(cache);
    const refs = [await store.putValue({ a: 1 }), await store.putValue("x".repeat(20_000))];
    const reader = new ContentStore(
      new CachedStorage(bucket("private"), path.join(tempDir(), "cache2")),
    );
    await reader.prefetch(refs.map((r) => r.hash));
    for (const root of [dir, path.dirname(dir)]) assert.equal(mode(root), 0o700, root);
    for (const p of [...walk(dir), ...walk((reader.backend as CachedStorage).cacheRoot)]) {
      assert.equal(
        mode(p),
        fs.statSync(p).isDirectory() ? 0o700 : 0o600,
        `${p} is ${mode(p).toString(8)}`,
      );
    }
  });

  void test("an existing cache directory of the same user that others can read is made private", async () => {
    const dir = path.join(tempDir(), "cache");
    fs.mkdirSync(dir, { mode: 0o755 });
    fs.chmodSync(dir, 0o755);
    await new ContentStore(new CachedStorage(bucket("private"), dir)).putValue({ b: 2 });
    assert.equal(mode(dir), 0o700);
  });

  void test("a cache directory other users can write is refused, naming it and the setting", async () => {
    const dir = path.join(tempDir(), "cache");
    fs.mkdirSync(dir);
    fs.chmodSync(dir, 0o777);
    const store = new ContentStore(new CachedStorage(bucket("private"), dir));
    await assert.rejects(
      store.putValue({ c: 3 }),
      (err: unknown) =>
        err instanceof DatastoreError &&
        err.message.includes(dir) &&
        /writable by other users/.test(err.message) &&
        err.message.includes("METAFLOW_S3_CACHE_DIR"),
    );
    await assert.rejects(store.prefetch(["a".repeat(64)]), DatastoreError);
  });

  void test(
    "a cache directory owned by another user is refused",
    {
      skip:
        process.getuid?.() === 0 ? false : "needs root to make a directory owned by someone else",
    },
    async () => {
      const dir = path.join(tempDir(), "cache");
      fs.mkdirSync(dir, { mode: 0o700 });
      fs.chownSync(dir, 65534, 65534);
      const store = new ContentStore(new CachedStorage(bucket("private"), dir));
      await assert.rejects(
        store.putValue({ d: 4 }),
        (err: unknown) =>
          err instanceof DatastoreError &&
          /owned by uid 65534/.test(err.message) &&
          err.message.includes(dir),
      );
    },
  );

  void test("the CLI refuses a shared cache directory with a one-line reason, not an internal error", async () => {
    const work = new Project();
    try {
      work.write("flow.ts", HELLO);
      const cacheDir = path.join(work.dir, "shared-cache");
      fs.mkdirSync(cacheDir);
      fs.chmodSync(cacheDir, 0o777);
      const env = {
        ...stack!.env({ prefix: `shared-${path.basename(work.dir)}`, cacheDir, metadata: "local" }),
        MARK: "x",
      };
      const r = await work.cli(["run", "flow.ts"], { env });
      assert.equal(r.code, 1, r.stderr);
      assert.doesNotMatch(r.stderr, /Internal error/);
      assert.match(r.stderr, /writable by other users/);
      assert.ok(r.stderr.includes(cacheDir), r.stderr);
    } finally {
      work.cleanup();
    }
  });
});

void describe("the cache serves only verified bytes", { skip: availability.s3 }, () => {
  void test("a planted or corrupted cached object is never served: the bucket's copy is read and the cache mended", async () => {
    const remote = bucket("verify");
    const writer = new ContentStore(remote);
    const ref = await writer.putValue({ truth: "from the bucket" });
    const key = contentKey(ref.hash);
    const cache = new CachedStorage(remote, path.join(tempDir(), "cache"));
    const reader = new ContentStore(cache);
    await reader.prefetch([ref.hash]);
    // Replace the cached copy with a well-formed object holding other content.
    const planted = await new ContentStore(
      new CachedStorage(bucket("verify-other"), path.join(tempDir(), "c")),
    ).putValue({ truth: "planted" });
    const plantedBytes = (await bucket("verify-other").get(contentKey(planted.hash)))!;
    fs.writeFileSync(cache.localPath(key), plantedBytes);

    assert.deepEqual(await reader.getValue(ref), { truth: "from the bucket" });
    assert.deepEqual(
      reader.getValueSync(ref),
      { truth: "from the bucket" },
      "the cache file was replaced by the verified copy",
    );
    fs.writeFileSync(cache.localPath(key), plantedBytes);
    const raw = await cache.get(key);
    assert.ok(raw?.equals((await remote.get(key))!), "the backend's own get verifies too");
  });
});

void describe("a damaged cached copy is downloaded again for synchronous reads", { skip: availability.s3 }, () => {
  /** A value stored raw (random bytes do not compress), cached, with the cache file's path. */
  async function cachedRaw(prefix: string) {
    const remote = bucket(prefix);
    const ref = await new ContentStore(remote).putValue(crypto.randomBytes(64 * 1024));
    const cache = new CachedStorage(remote, path.join(tempDir(), "cache"));
    const reader = new ContentStore(cache);
    await reader.prefetch([ref.hash]);
    const file = cache.localPath(contentKey(ref.hash));
    const good = fs.readFileSync(file);
    return { ref, reader, file, good };
  }

  void test("a copy cut short inside its header is replaced by prefetch, as a task reads its inputs", async () => {
    const { ref, reader, file, good } = await cachedRaw("torn-head");
    fs.truncateSync(file, 5);
    await reader.prefetch([ref.hash]);
    assert.ok(Buffer.from(reader.getValueSync(ref) as Uint8Array).equals(good.subarray(8)));
  });

  void test("a copy cut short inside its payload is replaced when prefetch knows the value's size", async () => {
    const { ref, reader, file, good } = await cachedRaw("torn-payload");
    fs.truncateSync(file, good.length / 2);
    await reader.prefetch([ref]);
    assert.ok(reader.getSync(ref.hash).equals(good.subarray(8)));
  });

  void test("a copy that fails its hash check in a synchronous read is removed, so the next attempt downloads it", async () => {
    const { ref, reader, file, good } = await cachedRaw("flipped");
    const flipped = Buffer.from(good);
    flipped[flipped.length - 1]! ^= 0xff;
    fs.writeFileSync(file, flipped);
    await reader.prefetch([ref]);
    assert.throws(
      () => reader.getSync(ref.hash),
      (err: unknown) =>
        err instanceof DatastoreError &&
        /was removed/.test(err.message) &&
        /next attempt/.test(err.message) &&
        !/Delete /.test(err.message),
    );
    assert.equal(fs.existsSync(file), false);
    await reader.prefetch([ref]);
    assert.ok(reader.getSync(ref.hash).equals(good.subarray(8)));
  });
});

void describe("an S3 datastore with local metadata", { skip: availability.s3 }, () => {
  void test("another machine's runs are not visible, and the error says why instead of 'the datastore is empty'", async () => {
    const [a, b] = [new Project(), new Project()];
    try {
      a.write("flow.ts", HELLO);
      const prefix = `localmd-${path.basename(a.dir)}`;
      const envOf = (w: Project) => ({
        ...stack!.env({ prefix, cacheDir: path.join(w.dir, "cache"), metadata: "local" }),
        MARK: "m",
      });
      const ran = await a.cli(["run", "flow.ts"], { env: envOf(a) });
      assert.equal(ran.code, 0, ran.stderr);
      const seen = await b.cli(["runs", "CacheFlow", "--all-namespaces"], { env: envOf(b) });
      assert.equal(seen.code, 1);
      assert.doesNotMatch(seen.stderr, /datastore is empty/);
      assert.match(seen.stderr, /metadata is local/);
      assert.ok(seen.stderr.includes(b.root), seen.stderr);
      assert.match(seen.stderr, /METAFLOW_DEFAULT_METADATA=service/);
    } finally {
      a.cleanup();
      b.cleanup();
    }
  });
});
