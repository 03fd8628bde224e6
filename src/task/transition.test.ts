import assert from "node:assert/strict";
import { test } from "node:test";
import { resolveTransition } from "./transition.js";

const ctx = { step: "s", isEnd: false, maxNumSplits: 5 };
const foreach = (value: unknown) => resolveTransition(ctx, { xs: value }, { kind: "foreach", to: "b", foreach: "xs" });

void test("a foreach counts arrays and typed arrays in place and reads other iterables once", () => {
  assert.deepEqual(foreach([1, 2]), { kind: "foreach", to: "b", count: 2, foreach: "xs" });
  assert.deepEqual(foreach(new Uint8Array(3)), { kind: "foreach", to: "b", count: 3, foreach: "xs" });
  assert.deepEqual(foreach("héé"), { kind: "foreach", to: "b", count: 3, foreach: "xs", elements: ["h", "é", "é"] });
  assert.deepEqual(foreach(new Set([1, 1, 2])), { kind: "foreach", to: "b", count: 2, foreach: "xs", elements: [1, 2] });
  assert.deepEqual(foreach(new Map([["a", 1]])), { kind: "foreach", to: "b", count: 1, foreach: "xs", elements: [["a", 1]] });
});

void test("empty, non-iterable, endless and throwing iterables are refused with the artifact's name", () => {
  assert.throws(() => foreach([]), /over artifact 'xs', which is empty/);
  assert.throws(() => foreach(42), /'xs', which is a number; assign an array \(or a string, Set, Map or other finite iterable\)/);
  assert.throws(() => foreach({ a: 1 }), /which is an Object/);
  assert.throws(() => foreach(undefined), /which is undefined \(was it assigned\?\)/);
  assert.throws(() => foreach(Array.from({ length: 6 })), /with 6 elements, more than --max-num-splits \(5\)/);
  const endless = (function* () {
    for (let i = 0; ; i++) yield i;
  })();
  assert.throws(() => foreach(endless), /more than 5 \(it may be endless\)/);
  const broken = {
    *[Symbol.iterator]() {
      yield 1;
      throw new Error("source went away");
    },
  };
  assert.throws(() => foreach(broken), /iterating it threw: source went away/);
});

void test("a switch picks its case by the condition's value; no case is a clear error", () => {
  const t = { kind: "switch", cases: { "1": "hi", low: "lo" }, condition: "c" } as const;
  assert.deepEqual(resolveTransition(ctx, { c: 1 }, t), { kind: "switch", to: "hi", case: "1" });
  assert.throws(() => resolveTransition(ctx, { c: "mid" }, t), /"mid" is not one of the cases "1", "low"/);
  assert.throws(() => resolveTransition(ctx, {}, undefined), /ended without calling this.next\(\)/);
  assert.deepEqual(resolveTransition({ ...ctx, isEnd: true }, {}, undefined), { kind: "end" });
});
