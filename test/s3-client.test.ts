// The user-facing S3 class against a real s3rver process: put/get/getMany/putMany/list, temp files
// and their cleanup, run-scoped prefixes, and the errors for bad keys and URLs.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { loadConfig, type MetaflowConfig } from "../src/config/index.js";
import { setCurrentTask } from "../src/flow/current.js";
import { S3, S3Error, S3NotFoundError } from "../src/s3/index.js";
import { s3ServerAvailability, startS3Server, type TestS3Server } from "./helpers/s3server.js";

const run = promisify(execFile);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const availability = s3ServerAvailability();
let server: TestS3Server;
let config: MetaflowConfig;
const tempDirs: string[] = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mf-s3client-"));
  tempDirs.push(dir);
  return dir;
}

void describe("S3 client on s3rver", { skip: availability.skip }, () => {
  before(async () => {
    server = await startS3Server();
    config = loadConfig(server.env(`s3://${server.bucket}/sys`), tempDir());
  });
  after(async () => {
    setCurrentTask(undefined);
    await server?.destroy();
    for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
  });

  void test("put and get: key, url, blob, text, path, size", async () => {
    const s3 = new S3({ root: `s3://${server.bucket}/user/data/`, config, tmpDir: tempDir() });
    try {
      assert.equal(s3.root, `s3://${server.bucket}/user/data`);
      assert.equal(
        await s3.put("greeting.txt", "héllo"),
        `s3://${server.bucket}/user/data/greeting.txt`,
      );
      await s3.put("bin/raw", new Uint8Array([0, 1, 2, 255]));
      const text = await s3.get("greeting.txt");
      assert.deepEqual(
        [text.key, text.url, text.exists, text.size],
        ["greeting.txt", `s3://${server.bucket}/user/data/greeting.txt`, true, 6],
      );
      assert.equal(text.text, "héllo");
      assert.equal(fs.readFileSync(text.path, "utf8"), "héllo");
      const raw = await s3.get("bin/raw");
      assert.deepEqual([...raw.blob], [0, 1, 2, 255]);
      // Full URLs work next to relative keys.
      assert.equal((await s3.get(`s3://${server.bucket}/user/data/greeting.txt`)).text, "héllo");
    } finally {
      await s3.close();
    }
  });

  void test("getMany and putMany run in parallel and keep the order asked", async () => {
    const s3 = new S3({ root: `s3://${server.bucket}/many`, config, tmpDir: tempDir() });
    try {
      const keys = Array.from({ length: 60 }, (_, i) => `k/${i}`);
      const urls = await s3.putMany(keys.map((key, i) => ({ key, value: `v${i}` })));
      assert.equal(urls[59], `s3://${server.bucket}/many/k/59`);
      await s3.putMany({ "rec/a": "A", "rec/b": Buffer.from("B") });
      const local = path.join(tempDir(), "upload.csv");
      fs.writeFileSync(local, "x,y\n1,2\n");
      await s3.putMany([{ key: "files/upload.csv", path: local }]);
      const objects = await s3.getMany([...keys].reverse());
      assert.deepEqual(
        objects.map((o) => o.text),
        keys.map((_, i) => `v${i}`).reverse(),
      );
      assert.deepEqual(
        (await s3.getMany(["rec/a", "rec/b", "files/upload.csv"])).map((o) => o.text),
        ["A", "B", "x,y\n1,2\n"],
      );
    } finally {
      await s3.close();
    }
  });

  void test("missing objects: one error naming every missing URL, or exists === false on request", async () => {
    const s3 = new S3({ root: `s3://${server.bucket}/missing`, config, tmpDir: tempDir() });
    try {
      await s3.put("here", "1");
      await assert.rejects(
        s3.getMany(["here", "gone1", "gone2"]),
        (err: unknown) =>
          err instanceof S3NotFoundError &&
          err.urls.length === 2 &&
          err.message.includes(`s3://${server.bucket}/missing/gone1`) &&
          err.message.includes(`s3://${server.bucket}/missing/gone2`),
      );
      await assert.rejects(s3.get("gone1"), S3NotFoundError);
      const [here, gone] = await s3.getMany(["here", "gone1"], { returnMissing: true });
      assert.equal(here?.text, "1");
      assert.equal(gone?.exists, false);
      assert.throws(() => gone?.blob, S3NotFoundError);
    } finally {
      await s3.close();
    }
  });

  void test("list is one level with sub-prefixes; listRecursive goes all the way down", async () => {
    const s3 = new S3({ root: `s3://${server.bucket}/tree`, config, tmpDir: tempDir() });
    try {
      await s3.putMany({ "a.txt": "a", "d/b.txt": "bb", "d/e/c.txt": "ccc" });
      assert.deepEqual(
        (await s3.list()).map((e) => [e.key, e.isPrefix, e.size]),
        [
          ["a.txt", false, 1],
          ["d", true, undefined],
        ],
      );
      assert.deepEqual(
        (await s3.list("d")).map((e) => e.key),
        ["d/b.txt", "d/e"],
      );
      assert.deepEqual(
        (await s3.listRecursive()).map((e) => e.key),
        ["a.txt", "d/b.txt", "d/e/c.txt"],
      );
      const noRoot = new S3({ config });
      try {
        const entries = await noRoot.listRecursive(`s3://${server.bucket}/tree/d`);
        assert.deepEqual(
          entries.map((e) => e.key),
          [`s3://${server.bucket}/tree/d/b.txt`, `s3://${server.bucket}/tree/d/e/c.txt`],
        );
      } finally {
        await noRoot.close();
      }
    } finally {
      await s3.close();
    }
  });

  void test("temp files are removed by close() and by await using", async () => {
    const tmp = tempDir();
    let file: string;
    {
      await using s3 = new S3({ root: `s3://${server.bucket}/tmpfiles`, config, tmpDir: tmp });
      await s3.put("x", "data");
      const obj = await s3.get("x");
      file = obj.path;
      assert.ok(fs.existsSync(file));
    }
    assert.equal(fs.existsSync(file), false);
    assert.deepEqual(fs.readdirSync(tmp), []);

    const s3 = new S3({ root: `s3://${server.bucket}/tmpfiles`, config, tmpDir: tmp });
    const obj = await s3.get("x");
    const unread = await s3.get("x");
    assert.equal(obj.text, "data");
    await s3.close();
    assert.deepEqual(fs.readdirSync(tmp), []);
    assert.equal(obj.text, "data", "bytes already read stay available");
    assert.throws(() => unread.blob, /was closed/);
    await assert.rejects(s3.get("x"), /closed/);
  });

  void test("new S3({ run }) scopes keys to the running task's flow and run, or to a client Run", async () => {
    assert.throws(() => new S3({ run: {} as never, config }), /only inside a running step/);
    setCurrentTask({
      flowName: "TrainFlow",
      runId: "1234",
      stepName: "start",
      taskId: "1",
      retryCount: 0,
      originRunId: undefined,
      username: "ann",
      namespace: "user:ann",
      tags: [],
    });
    try {
      const s3 = new S3({ run: {} as never, config, tmpDir: tempDir() });
      assert.equal(s3.root, `s3://${server.bucket}/sys/datatools/TrainFlow/1234`);
      await s3.put("model.json", '{"w":1}');
      await s3.close();
    } finally {
      setCurrentTask(undefined);
    }
    const later = new S3({ run: { pathspec: "TrainFlow/1234" }, config, tmpDir: tempDir() });
    try {
      assert.equal((await later.get("model.json")).text, '{"w":1}');
    } finally {
      await later.close();
    }
    const noSysroot = loadConfig({}, tempDir());
    assert.throws(
      () => new S3({ run: { pathspec: "F/1" }, config: noSysroot }),
      /METAFLOW_DATASTORE_SYSROOT_S3/,
    );
  });

  void test("bad URLs and keys give errors that name them", async () => {
    assert.throws(
      () => new S3({ root: "s3://Bad_Bucket/x", config }),
      (e: unknown) => e instanceof S3Error && e.url === "s3://Bad_Bucket/x",
    );
    assert.throws(() => new S3({ root: "bucket/x", config }), /Invalid S3 URL "bucket\/x"/);
    assert.throws(
      () => new S3({ root: `s3://${server.bucket}`, run: { pathspec: "F/1" }, config }),
      /either `run` or `root`/,
    );
    const s3 = new S3({ root: `s3://${server.bucket}/bad`, config, tmpDir: tempDir() });
    const noRoot = new S3({ config });
    try {
      for (const key of ["", "/abs", "a/../b", "./x"]) {
        await assert.rejects(
          s3.put(key, "x"),
          (e: unknown) => e instanceof S3Error && e.message.includes(JSON.stringify(key)),
          key,
        );
      }
      await assert.rejects(s3.get("https://example.com/x"), /not an S3 URL/);
      await assert.rejects(
        noRoot.get("relative/key"),
        /"relative\/key" is relative, but this S3 has no root/,
      );
      await assert.rejects(s3.put("k", 42 as never), /takes a string, Buffer or Uint8Array/);
      await assert.rejects(s3.putMany([{ key: "k", path: "/no/such/file" }]), /\/no\/such\/file/);
      await assert.rejects(
        noRoot.get("s3://no-such-bucket-zz/k"),
        (e: unknown) =>
          e instanceof S3Error &&
          e.url === "s3://no-such-bucket-zz/k" &&
          /bucket does not exist/.test(e.message),
      );
    } finally {
      await s3.close();
      await noRoot.close();
    }
  });

  void test("a real flow's steps share data through new S3({ run: this })", async () => {
    const dir = tempDir();
    const runIdFile = path.join(dir, "run-id");
    // Artifacts stay local here; only the user data goes to S3 under the run's prefix.
    const env = {
      ...process.env,
      ...server.env(`s3://${server.bucket}/flows`),
      METAFLOW_DEFAULT_DATASTORE: "local",
      METAFLOW_DATASTORE_SYSROOT_LOCAL: path.join(dir, ".metaflow"),
      METAFLOW_HOME: path.join(dir, "home"),
    };
    const { stdout } = await run(
      process.execPath,
      [
        path.join(repo, "bin/metaflow.js"),
        "run",
        path.join(repo, "test/fixtures/s3-flow.ts"),
        "--run-id-file",
        runIdFile,
      ],
      { cwd: dir, env },
    );
    assert.match(stdout, /echoed: hello from a step/);
    const runId = fs.readFileSync(runIdFile, "utf8").trim();
    const s3 = new S3({ run: { pathspec: `S3DataFlow/${runId}` }, config: loadConfig(env, dir) });
    try {
      assert.equal(s3.root, `s3://${server.bucket}/flows/datatools/S3DataFlow/${runId}`);
      assert.equal((await s3.get("notes/hello.txt")).text, "hello from a step");
    } finally {
      await s3.close();
    }
  });
});
