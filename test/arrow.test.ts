/**
 * Arrow tables as artifacts, end to end: tables of every shape through a step boundary, a foreach
 * and a join (rebuilt with the step's own apache-arrow, columns used in place), the client and
 * `dump` (schema and rows without loading), an independent Arrow reader on the stored bytes, resume
 * (cloned, not copied) and a 10-million-row table.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import zlib from "node:zlib";
import { after, test } from "node:test";
import { tableFromIPC as independentRead } from "@uwdata/flechette";
import { Table } from "apache-arrow";
import { Run } from "../src/index.js";
import { Project, REPO } from "./helpers/project.js";

const FLOW = path.join(REPO, "test/fixtures/arrow-flow.ts");
const project = new Project();
after(() => project.cleanup());

/** Sum of x = i / 2 over the rows i ≡ shard (mod 3) of an n-row table, and how many rows that is. */
function expectedShard(n: number, shard: number): { sum: number; count: number } {
  let sum = 0;
  let count = 0;
  for (let i = shard; i < n; i += 3) {
    sum += i / 2;
    count++;
  }
  return { sum, count };
}

/** The stored object's payload: the 8-byte header stripped, inflated when it was stored deflated. */
function storedBytes(root: string, hash: string): Buffer {
  const object = fs.readFileSync(path.join(root, "data", hash.slice(0, 2), hash));
  const payload = object.subarray(8);
  return object[5] === 1 ? zlib.inflateSync(payload) : payload;
}

function dataObjects(root: string): Set<string> {
  const dir = path.join(root, "data");
  return new Set(fs.readdirSync(dir).flatMap((d) => fs.readdirSync(path.join(dir, d))));
}

let runId: string;

void test("tables of every shape cross a step boundary, a foreach and a join as the step's own Arrow tables", async () => {
  const r = await project.cli(["run", FLOW]);
  assert.equal(r.code, 0, r.stderr);
  runId = await project.latestRun("ArrowFlow");
  const checks = await project.value("ArrowFlow", runId, "end", "checks");
  const shards = [0, 1, 2].map((s) => expectedShard(30, s));
  assert.deepEqual(checks, {
    tables: true,
    batch: true,
    f64: [1.5, -2.25, 1e300],
    f64Own: true,
    i32: [1, -2, 2147483647],
    i64: ["1", "-2", "9007199254740993"],
    strings: ["", "héllo", 'a,"b"\n'],
    dict: ["red", "green", "red", "blue"],
    dictType: "Dictionary<Int32, Utf8>",
    nulls: [1, null, 3],
    nullText: [null, "x", null],
    nullCount: 1,
    nested: [[1, 2], [], null, [3]],
    emptyRows: 0,
    emptyColumns: ["f", "s"],
    bigRows: 30,
    sums: shards.map((s) => s.sum),
    counts: shards.map((s) => s.count),
  });
  const seen = (await project.value("ArrowFlow", runId, "join", "seen")) as { shards: unknown[] };
  assert.deepEqual(seen.shards, [0, 1, 2].map(() => ({ isTable: true, ownFloat64Array: true, inPlace: true })));

  // The artifact index says how to read each table, and what it holds, without the data.
  const start = await project.artifacts("ArrowFlow", runId, "start");
  const big = start.get("big")!;
  assert.equal(big.serializer, "arrow");
  assert.equal(big.encoding, "bytes");
  assert.equal(big.type, "Table");
  assert.deepEqual(big.summary, { rows: 30, columns: ["x: Float64", "n: Int32", "cat: Dictionary<Int32, Utf8>"] });
  assert.equal(start.get("batch")!.type, "RecordBatch");
  // Read in every later step but never changed: one stored object, passed on by reference.
  for (const step of ["check", "join", "end"]) {
    assert.equal((await project.artifacts("ArrowFlow", runId, step)).get("big")!.hash, big.hash, step);
  }
});

void test("the client lists rows and columns without loading, and data() returns Tables", async () => {
  const run = await Run.get(`ArrowFlow/${runId}`, { datastoreRoot: project.root });
  const task = await (await run.step("start")).task();
  const listed = new Map((await task.artifacts()).map((a) => [a.name, a]));
  const big = listed.get("big")!;
  assert.deepEqual([big.type, big.serializer, big.summary], ["Table", "arrow", { rows: 30, columns: ["x: Float64", "n: Int32", "cat: Dictionary<Int32, Utf8>"] }]);
  assert.equal(big.toJSON().serializer, "arrow");
  const table = (await big.data()) as Table;
  assert.ok(table instanceof Table);
  assert.equal(table.numRows, 30);
  assert.deepEqual([...table.getChild("cat")!].slice(0, 4), ["alpha", "beta", "gamma", "alpha"]);
  const sums = (await run.data("sums")) as Table;
  assert.deepEqual([...sums.getChild("shard")!], [0, 1, 2]);

  const dump = await project.cli(["dump", `ArrowFlow/${runId}/start/${task.id}`, "--include", "big,nulls"]);
  assert.equal(dump.code, 0, dump.stderr);
  assert.match(dump.stdout, /big: Table, 1\.\d KB, serializer arrow\n {4}rows: 30\n {4}columns: x: Float64, n: Int32, cat: Dictionary<Int32, Utf8>/);
  assert.match(dump.stdout, /nulls: Table, .*serializer arrow\n {4}rows: 3\n {4}columns: maybe: Int32, text: Utf8/);
});

void test("an independent Arrow reader reads the stored bytes as a plain IPC stream", async () => {
  const start = await project.artifacts("ArrowFlow", runId, "start");
  const big = independentRead(storedBytes(project.root, start.get("big")!.hash), { useBigInt: true });
  assert.equal(big.numRows, 30);
  assert.deepEqual(Array.from(big.getChild("x").toArray() as Float64Array).slice(0, 4), [0, 0.5, 1, 1.5]);
  assert.deepEqual(Array.from(big.getChild("n").toArray() as Int32Array).slice(-2), [28, 29]);
  assert.deepEqual(Array.from(big.getChild("cat").toArray() as string[]).slice(0, 3), ["alpha", "beta", "gamma"]);
  const nulls = independentRead(storedBytes(project.root, start.get("nulls")!.hash));
  assert.deepEqual(Array.from(nulls.getChild("maybe").toArray() as unknown[]), [1, null, 3]);
  const nested = independentRead(storedBytes(project.root, start.get("nested")!.hash));
  assert.deepEqual(
    Array.from(nested.getChild("lists").toArray() as unknown[]).map((l) => (l === null ? null : Array.from(l as ArrayLike<number>))),
    [[1, 2], [], null, [3]],
  );
  const numeric = independentRead(storedBytes(project.root, start.get("numeric")!.hash), { useBigInt: true });
  assert.deepEqual(Array.from(numeric.getChild("i64").toArray() as BigInt64Array), [1n, -2n, 9007199254740993n]);
});

void test("resume clones the tasks that hold tables: the same stored objects, nothing copied", async () => {
  const failed = await project.cli(["run", FLOW], { env: { ARROW_FLOW_FAIL: "1" } });
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /failing on purpose/);
  const origin = await project.latestRun("ArrowFlow");
  const before = dataObjects(project.root);
  const resumed = await project.cli(["resume", FLOW]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stdout, /Cloned from ArrowFlow\/\d+\/start\/1/);
  const again = await project.latestRun("ArrowFlow");
  const originStart = await project.artifacts("ArrowFlow", origin, "start");
  const end = await project.artifacts("ArrowFlow", again, "end");
  for (const name of ["big", "numeric", "nested", "batch"]) assert.equal(end.get(name)!.hash, originStart.get(name)!.hash, name);
  // The only objects the resumed run wrote are the end step's new values (its checks).
  const written = [...dataObjects(project.root)].filter((h) => !before.has(h));
  const endHashes = new Set([...end.values()].map((r) => r.hash));
  assert.ok(written.every((h) => endHashes.has(h)), `resume wrote objects besides the end step's: ${written.join(", ")}`);
  assert.equal(((await project.value("ArrowFlow", again, "end", "checks")) as { bigRows: number }).bigRows, 30);
});

void test("a 10-million-row table (float64, int32, dictionary) goes through a foreach and back", async () => {
  const rows = 10_000_000;
  const r = await project.cli(["run", FLOW, "--rows", String(rows)], { timeoutMs: 240_000 });
  assert.equal(r.code, 0, r.stderr);
  const id = await project.latestRun("ArrowFlow");
  const checks = (await project.value("ArrowFlow", id, "end", "checks")) as { bigRows: number; sums: number[]; counts: number[] };
  assert.equal(checks.bigRows, rows);
  const shards = [0, 1, 2].map((s) => expectedShard(rows, s));
  assert.deepEqual(checks.sums, shards.map((s) => s.sum));
  assert.deepEqual(checks.counts, shards.map((s) => s.count));
  const big = (await project.artifacts("ArrowFlow", id, "start")).get("big")!;
  // float64 + int32 + int32 dictionary codes, and a few hundred bytes of messages.
  assert.ok(big.size > rows * 16 && big.size < rows * 16 + 4096, `stored size ${big.size}`);
});
