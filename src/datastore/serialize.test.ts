import { test } from "node:test";
import assert from "node:assert/strict";
import vm from "node:vm";
import { decodeStored, prepareValue } from "./codec.js";
import { deserializeValue } from "./serialize.js";

/** What the runtime stores for `value` (see codec.ts `prepareValue`), with its bytes made. */
async function serialize(value: unknown) {
  const prepared = await prepareValue(value);
  const chunks = prepared.chunks();
  return { ...prepared, chunks, size: chunks.reduce((n, c) => n + c.length, 0) };
}

async function roundTrip(value: unknown): Promise<{ back: unknown; type: string; encoding: string }> {
  const s = await serialize(value);
  const bytes = Buffer.concat(s.chunks);
  assert.equal(bytes.length, s.size);
  const ref = { hash: "0".repeat(64), encoding: s.encoding, ...(s.typedArray ? { typedArray: s.typedArray } : {}) };
  return { back: decodeStored(bytes, ref), type: s.type, encoding: s.encoding };
}

void test("primitives round-trip with their type names", async () => {
  const cases: [unknown, string][] = [
    [42, "number"],
    [NaN, "number"],
    [-0, "number"],
    [Infinity, "number"],
    ["héllo", "string"],
    [true, "boolean"],
    [12345678901234567890n, "bigint"],
    [undefined, "undefined"],
    [null, "null"],
  ];
  for (const [value, type] of cases) {
    const r = await roundTrip(value);
    assert.ok(Object.is(r.back, value), `round trip of ${String(value)}`);
    assert.equal(r.type, type);
    assert.equal(r.encoding, "v8");
  }
});

void test("structured data round-trips: objects, arrays, Map, Set, Date, RegExp, boxed, errors, nested binary", async () => {
  const value = {
    list: [1, "two", [3], { four: 4 }, undefined, null],
    map: new Map<unknown, unknown>([
      ["a", 1],
      [2, new Set([1, 2])],
    ]),
    set: new Set(["x", "y"]),
    date: new Date(1_700_000_000_000),
    re: /ab+c/gi,
    big: 2n ** 70n,
    boxed: Object("str"),
    err: new RangeError("too big"),
    buf: Buffer.from("nested"),
    f32: new Float32Array([1.5, -2]),
    nul: Object.assign(Object.create(null) as object, { k: 1 }),
    "odd key": 1,
  };
  const r = await roundTrip(value);
  assert.equal(r.type, "Object");
  const back = r.back as typeof value;
  assert.deepEqual(back.list, value.list);
  assert.deepEqual(back.map, value.map);
  assert.deepEqual(back.set, value.set);
  assert.deepEqual(back.date, value.date);
  assert.equal(String(back.re), String(value.re));
  assert.equal(back.big, value.big);
  assert.equal(back.boxed.valueOf(), "str");
  assert.ok(back.err instanceof RangeError);
  assert.equal(back.err.message, "too big");
  assert.ok(Buffer.isBuffer(back.buf));
  assert.equal(back.buf.toString(), "nested");
  assert.ok(back.f32 instanceof Float32Array);
  assert.deepEqual([...back.f32], [1.5, -2]);
  assert.equal((back.nul as { k: number }).k, 1);
  assert.equal(back["odd key"], 1);
});

void test("type names of containers", async () => {
  assert.equal((await serialize([1])).type, "Array");
  assert.equal((await serialize(new Map())).type, "Map");
  assert.equal((await serialize(new Set())).type, "Set");
  assert.equal((await serialize(new Date(0))).type, "Date");
  assert.equal((await serialize(new TypeError("x"))).type, "TypeError");
});

void test("cycles round-trip", async () => {
  const a: Record<string, unknown> = { name: "a" };
  const list: unknown[] = [a];
  a.self = a;
  a.list = list;
  list.push(list);
  const m = new Map<string, unknown>();
  m.set("me", m);
  a.map = m;
  const back = (await roundTrip(a)).back as Record<string, unknown>;
  assert.equal(back.self, back);
  const backList = back.list as unknown[];
  assert.equal(backList[0], back);
  assert.equal(backList[1], backList);
  const backMap = back.map as Map<string, unknown>;
  assert.equal(backMap.get("me"), backMap);
});

void test("values built in another realm round-trip", async () => {
  const foreign = vm.runInNewContext(
    "({m: new Map([[1, new Uint8Array([1,2])]]), d: new Date(0), a: [1, {b: new Set([2])}], e: new TypeError('t'), f: new Float64Array([0.5])})",
  ) as Record<string, unknown>;
  const r = await roundTrip(foreign);
  assert.equal(r.type, "Object");
  const back = r.back as {
    m: Map<number, Uint8Array>;
    d: Date;
    a: unknown[];
    e: Error;
    f: Float64Array;
  };
  assert.ok(back.m instanceof Map);
  const inner = back.m.get(1);
  assert.ok(inner instanceof Uint8Array);
  assert.deepEqual([...inner], [1, 2]);
  assert.ok(back.d instanceof Date);
  assert.equal(back.d.getTime(), 0);
  assert.deepEqual(back.a, [1, { b: new Set([2]) }]);
  assert.ok(back.e instanceof TypeError);
  assert.ok(back.f instanceof Float64Array);

  const foreignTyped = vm.runInNewContext("new Int16Array([1, -2, 3])");
  const t = await roundTrip(foreignTyped);
  assert.equal(t.encoding, "typed");
  assert.equal(t.type, "Int16Array");
  assert.ok(t.back instanceof Int16Array, "rebuilt with this realm's constructor");
  assert.deepEqual([...(t.back as Int16Array)], [1, -2, 3]);

  assert.equal((await roundTrip(vm.runInNewContext("[1, 2]"))).type, "Array");
  assert.deepEqual((await roundTrip(vm.runInNewContext("new Map([[1, 2]])"))).back, new Map([[1, 2]]));
});

void test("a Buffer is stored raw, zero-copy", async () => {
  const buf = Buffer.from("raw bytes");
  const s = await serialize(buf);
  assert.equal(s.encoding, "buffer");
  assert.equal(s.type, "Buffer");
  assert.equal(s.chunks.length, 1);
  assert.equal(s.chunks[0], buf);
  const back = deserializeValue(Buffer.concat(s.chunks), s);
  assert.ok(Buffer.isBuffer(back));
  assert.equal(back.toString(), "raw bytes");
});

void test("typed arrays, ArrayBuffer and DataView are stored as exactly their viewed bytes", async () => {
  const backing = new ArrayBuffer(64);
  const view = new Float64Array(backing, 16, 3);
  view.set([1.25, -3, 1e300]);
  const s = await serialize(view);
  assert.equal(s.encoding, "typed");
  assert.equal(s.typedArray, "Float64Array");
  assert.equal(s.size, 24);
  assert.equal(s.chunks[0]?.buffer, backing, "zero-copy view of the caller's memory");

  const all = [
    new Int8Array([-1, 2]),
    new Uint8Array([255]),
    new Uint8ClampedArray([9]),
    new Int16Array([-300]),
    new Uint16Array([60000]),
    new Int32Array([-70000]),
    new Uint32Array([4e9]),
    new Float32Array([0.5]),
    new Float64Array([Math.PI]),
    new BigInt64Array([-(2n ** 60n)]),
    new BigUint64Array([2n ** 63n]),
  ];
  for (const arr of all) {
    const r = await roundTrip(arr);
    assert.equal(r.type, arr.constructor.name);
    assert.equal((r.back as object).constructor, arr.constructor);
    assert.deepEqual(r.back, arr);
  }

  const ab = new Uint8Array([1, 2, 3]).buffer;
  const abBack = await roundTrip(ab);
  assert.equal(abBack.type, "ArrayBuffer");
  assert.ok(abBack.back instanceof ArrayBuffer);
  assert.deepEqual([...new Uint8Array(abBack.back)], [1, 2, 3]);

  const dv = new DataView(new Uint8Array([0, 7, 8, 0]).buffer, 1, 2);
  const dvBack = await roundTrip(dv);
  assert.equal(dvBack.type, "DataView");
  assert.ok(dvBack.back instanceof DataView);
  assert.equal((dvBack.back as DataView).getUint16(0), 0x0708);
});

void test("typed arrays over misaligned bytes are copied into aligned memory", async () => {
  const bytes = Buffer.alloc(17);
  new Float64Array(bytes.buffer, bytes.byteOffset, 2).set([1, 2]);
  const misaligned = Buffer.concat([Buffer.alloc(1), bytes.subarray(0, 16)]).subarray(1);
  const back = deserializeValue(misaligned, {
    encoding: "typed",
    typedArray: "Float64Array",
  }) as Float64Array;
  assert.deepEqual([...back], [1, 2]);
});

void test("rejections name the path inside the value", async () => {
  class Model {
    fit(): void {}
  }
  const cases: [unknown, string | RegExp][] = [
    [{ model: { fit: () => 1 } }, "a function at .model.fit"],
    [
      { models: [1, 2, new Model()] },
      /^an instance of class Model at \.models\[2\] \(store plain data: objects, arrays, Map, Set, Date, typed arrays; a value that needs a serializer, like an Arrow table or a class registered with registerSerializer, must be an artifact of its own, not part of another value\)$/,
    ],
    [{ k: Symbol("s") }, "a symbol at .k"],
    [{ p: Promise.resolve(1) }, "a Promise at .p (did you forget await?)"],
    [Promise.resolve(1), "a Promise (did you forget await?)"],
    [new WeakMap(), "a WeakMap"],
    [new Map([["key", { f() {} }]]), 'a function at .get("key").f'],
    [new Set([1, () => 1]), "a function at .values()[1]"],
    [{ "a b": [() => 1] }, 'a function at ["a b"][0]'],
    [() => 1, "a function"],
    [{ [Symbol("hidden")]: 1 }, /symbol-keyed property/],
    [
      vm.runInNewContext("class Net {}; ({ nets: [new Net()] })"),
      /^an instance of class Net at \.nets\[0\]/,
    ],
  ];
  for (const [value, message] of cases) {
    await assert.rejects(
      serialize(value),
      (err: Error) => {
        if (typeof message === "string") assert.equal(err.message, message);
        else assert.match(err.message, message);
        return err.constructor === Error;
      },
    );
  }
});

void test("a cyclic value with a bad leaf is rejected without looping", async () => {
  const a: Record<string, unknown> = {};
  a.self = a;
  a.bad = { fn: () => 1 };
  await assert.rejects(serialize(a), { message: "a function at .bad.fn" });
});

void test("deeply nested data does not overflow the walk", async () => {
  let deep: Record<string, unknown> = {};
  const root = deep;
  for (let i = 0; i < 1000; i++) {
    const next = {};
    deep.n = next;
    deep = next;
  }
  assert.equal((await serialize(root)).encoding, "v8");
  for (let i = 0; i < 100_000; i++) {
    const next = {};
    deep.n = next;
    deep = next;
  }
  await assert.rejects(serialize(root), /nested too deeply/);
});
