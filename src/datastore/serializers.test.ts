import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import * as arrow from "apache-arrow";
import { RecordBatch, Table, tableFromArrays } from "apache-arrow";
import { arrowKind, useArrow } from "./arrow.js";
import { ContentStore } from "./cas.js";
import { decodeStored, prepareValue } from "./codec.js";
import { LocalStorage } from "./local.js";
import { findSerializer, openSerializerScope, registerSerializer, SerializerError, type Serializer } from "./serializers.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mf-serializers-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const store = new ContentStore(new LocalStorage(dir));
// Under tsx this file's apache-arrow may be another copy than the one Metaflow.ts requires itself.
useArrow(arrow);

class Celsius {
  constructor(readonly degrees: number) {}
}

const celsius: Serializer<Celsius> = {
  name: "celsius",
  test: (v) => v instanceof Celsius,
  encode: (c) => Buffer.from(String(c.degrees)),
  decode: (bytes) => new Celsius(Number(String(bytes))),
};

/** Runs `fn` with registrations that end with it, like a task's. */
async function scoped<T>(fn: () => Promise<T> | T): Promise<T> {
  const close = openSerializerScope();
  try {
    return await fn();
  } finally {
    close();
  }
}

void test("registerSerializer checks its argument and names the bad field", () => {
  const bad: Array<[unknown, RegExp]> = [
    [undefined, /the argument must be an object/],
    [{ ...celsius, name: "" }, /name must be 1 to 100 letters/],
    [{ ...celsius, name: "has space" }, /name must be .*got "has space"/],
    [{ ...celsius, name: "v8" }, /"v8" is reserved for a built-in encoding/],
    [{ ...celsius, test: true }, /test must be a function, got boolean/],
    [{ ...celsius, decode: undefined }, /decode must be a function, got undefined/],
    [{ ...celsius, describe: "rows" }, /describe must be a function when given, got string/],
  ];
  for (const [arg, message] of bad) {
    assert.throws(() => registerSerializer(arg as Serializer), (e: unknown) => e instanceof SerializerError && e.code === "serializer-invalid" && message.test(e.message));
  }
});

void test("a task's registrations end with it; the latest registration of a name wins", async () => {
  await scoped(() => {
    registerSerializer(celsius);
    assert.equal(findSerializer("celsius"), celsius);
    const again = { ...celsius };
    registerSerializer(again);
    assert.equal(findSerializer("celsius"), again);
  });
  assert.equal(findSerializer("celsius"), undefined);
  assert.equal(findSerializer("arrow")?.name, "arrow", "the built-in Arrow serializer is registered like any other");
});

void test("values a serializer claims are stored as its bytes or plain data, with its name, and rebuilt by it", async () => {
  await scoped(async () => {
    registerSerializer(celsius);
    registerSerializer({
      name: "celsius-data",
      test: (v) => v instanceof Celsius && v.degrees < 0,
      encode: (c: Celsius) => ({ below: -c.degrees }),
      decode: (d) => new Celsius(-(d as { below: number }).below),
      describe: (c: Celsius) => ({ type: "Frost", summary: { degrees: c.degrees } }),
    });
    const warm = await store.putValue(new Celsius(21.5));
    assert.deepEqual([warm.serializer, warm.encoding, warm.type, warm.summary], ["celsius", "bytes", "Celsius", undefined]);
    assert.deepEqual(await store.getValue(warm), new Celsius(21.5));
    // Registered later, asked first.
    const cold = await store.putValue(new Celsius(-4));
    assert.deepEqual([cold.serializer, cold.encoding, cold.type, cold.summary], ["celsius-data", "v8", "Frost", { degrees: -4 }]);
    assert.deepEqual(store.getValueSync(cold), new Celsius(-4));
    // Values no serializer claims keep the built-in encodings; primitives are never offered to one.
    assert.equal((await store.putValue({ plain: true })).serializer, undefined);
    registerSerializer({ name: "strict", test: (v) => (v as { constructor: unknown }).constructor === Celsius && false, encode: () => Buffer.alloc(0), decode: () => null });
    for (const primitive of [null, undefined, 3, "text"]) assert.equal((await store.putValue(primitive)).encoding, "v8");
    // A list of byte chunks is stored as their concatenation.
    const marker = { chunked: true };
    registerSerializer({ name: "chunks", test: (v) => v === marker, encode: () => [Buffer.from("ab"), new Uint8Array([99])], decode: (b) => String(b) });
    const chunked = await store.putValue(marker);
    assert.equal(chunked.size, 3);
    assert.equal(await store.getValue(chunked), "abc");
  });
});

void test("a serializer that fails is named: test, encode, describe, the data it returns, and decode", async () => {
  await scoped(async () => {
    // Each serializer claims the object { kind: <its name> }.
    const claims = (v: unknown, name: string): boolean => (v as { kind?: unknown }).kind === name;
    const failing = (name: string, parts: Partial<Serializer>): void =>
      registerSerializer({ name, test: (v) => claims(v, name), encode: () => Buffer.alloc(1), decode: () => name, ...parts });
    failing("bad-test", { test: (v) => { if (claims(v, "bad-test")) throw new RangeError("no"); return false; } });
    failing("bad-encode", { encode: () => Promise.reject(new Error("disk on fire")) });
    failing("bad-describe", { describe: () => ({ summary: { big: "x".repeat(20_000) } }) });
    failing("bad-data", { encode: () => ({ fn: () => 1 }) });
    const cases: Array<[string, RegExp]> = [
      ["bad-test", /the serializer "bad-test" failed: its test\(\) threw RangeError: no; make test\(value\) return true or false/],
      ["bad-encode", /the serializer "bad-encode" failed to encode it: Error: disk on fire/],
      ["bad-describe", /the serializer "bad-describe" failed to describe it: TypeError: describe\(\)\.summary must be a plain object of at most 16384 characters of JSON/],
      ["bad-data", /the serializer "bad-data" failed to return storable data: Error: encode\(\) returned a function at \.fn/],
    ];
    for (const [value, message] of cases) {
      await assert.rejects(prepareValue({ kind: value }), (e: unknown) => e instanceof SerializerError && e.serializer === value && message.test(e.message), value);
    }
    failing("bad-decode", { decode: () => { throw new Error("corrupt weights"); } });
    const stored = await store.putValue({ kind: "bad-decode" });
    assert.throws(() => store.getValueSync({ ...stored, name: "weights" }), (e: unknown) =>
      e instanceof SerializerError && e.code === "serializer-failed" && /The serializer "bad-decode" failed to decode artifact 'weights' \(sha256 [0-9a-f]{64}\): Error: corrupt weights/.test(e.message));
  });
});

void test("reading a value whose serializer is not registered names the serializer and how to register it", async () => {
  const stored = await scoped(async () => {
    registerSerializer(celsius);
    return store.putValue(new Celsius(3));
  });
  await assert.rejects(store.getValue({ ...stored, name: "temperature" }), (e: unknown) =>
    e instanceof SerializerError &&
    e.code === "serializer-missing" &&
    e.serializer === "celsius" &&
    /Artifact 'temperature' was stored by the serializer "celsius", which is not registered in this process\..*registerSerializer\(\{ name: "celsius", test, encode, decode \}\)/.test(e.message));
});

void test("Arrow tables and record batches round-trip as IPC streams, columns viewing the bytes read", async () => {
  const table = tableFromArrays({ x: Float64Array.from([1, 2, 3]), s: ["a", "b", "a"] });
  const ref = await store.putValue(table);
  assert.deepEqual([ref.serializer, ref.encoding, ref.type], ["arrow", "bytes", "Table"]);
  assert.deepEqual(ref.summary, { rows: 3, columns: ["x: Float64", "s: Dictionary<Int32, Utf8>"] });
  const back = store.getValueSync(ref) as Table;
  assert.ok(back instanceof Table);
  assert.deepEqual([...back.getChild("s")!], ["a", "b", "a"]);
  const x = back.getChild("x")!.toArray() as Float64Array;
  assert.ok(x.buffer.byteLength >= ref.size, "the column is a view of the whole stream, not a copy");
  // Equal tables are one object (without dictionaries, whose ids apache-arrow numbers per process).
  const numbers = () => tableFromArrays({ x: Float64Array.from([1, 2, 3]), n: Int32Array.from([4, 5, 6]) });
  assert.equal((await store.putValue(numbers())).hash, (await store.putValue(numbers())).hash);

  const batchRef = await store.putValue(table.batches[0]);
  assert.equal(batchRef.type, "RecordBatch");
  const batch = (await store.getValue(batchRef)) as RecordBatch;
  assert.ok(batch instanceof RecordBatch);
  assert.equal(batch.numRows, 3);
});

void test("Arrow values are recognised by their brand or their shape, whichever copy made them", () => {
  const table = tableFromArrays({ x: Int32Array.of(1) });
  assert.equal(arrowKind(table), "Table");
  assert.equal(arrowKind(table.batches[0]), "RecordBatch");
  // An older apache-arrow without the brand: recognised by class name and shape.
  class Table2 {
    schema = { fields: [] };
    batches = [];
    numRows = 0;
    getChild() {
      return null;
    }
  }
  Object.defineProperty(Table2, "name", { value: "Table" });
  assert.equal(arrowKind(new Table2()), "Table");
  assert.equal(arrowKind({ schema: { fields: [] }, batches: [] }), undefined);
  assert.equal(arrowKind(new Proxy({}, {})), undefined);
});

void test("a table inside plain data is refused: serializers apply to whole artifacts", async () => {
  await assert.rejects(prepareValue({ train: tableFromArrays({ x: Int32Array.of(1) }) }), /an instance of class Table at \.train \(.*must be an artifact of its own/);
  assert.equal(decodeStored(Buffer.from("{}"), { hash: "0".repeat(64), encoding: "json" }) instanceof Object, true);
});

void test("useArrow takes the apache-arrow module itself", () => {
  assert.throws(() => useArrow({ Table }), /useArrow\(arrow\) takes the apache-arrow module itself/);
  assert.throws(() => useArrow(undefined), TypeError);
});
