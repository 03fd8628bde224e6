import assert from "node:assert/strict";
import { test } from "node:test";
import type { ArtifactRef } from "../datastore/types.js";
import type { ParentTask } from "../task/protocol.js";
import { JoinBarrier, staticTransition, successors } from "./routing.js";

const items: ArtifactRef = { name: "xs", hash: "h", size: 1, encoding: "v8", type: "Array" };
const parent = (step: string, taskId: string): ParentTask => ({ step, taskId, artifacts: [], frames: [] });

void test("successors: linear and switch keep the frames; a branch adds one frame per target; a foreach one per element", () => {
  const t = { step: "a", taskId: "7", frames: [] };
  assert.deepEqual(successors(t, { kind: "linear", to: "b" }), [{ step: "b", frames: [] }]);
  assert.deepEqual(successors(t, { kind: "switch", to: "hi", case: "1" }), [{ step: "hi", frames: [] }]);
  assert.deepEqual(successors(t, { kind: "end" }), []);
  const branch = successors(t, { kind: "branch", to: ["x", "y"] });
  assert.deepEqual(branch.map((s) => [s.step, s.frames[0]?.index, s.frames[0]?.count, s.frames[0]?.kind]), [
    ["x", 0, 2, "branch"],
    ["y", 1, 2, "branch"],
  ]);
  const each = successors({ ...t, frames: branch[0]!.frames }, { kind: "foreach", to: "f", count: 3, items });
  assert.equal(each.length, 3);
  assert.deepEqual(each[2]!.frames.map((f) => [f.kind, f.step, f.taskId, f.index, f.count]), [
    ["branch", "a", "7", 0, 2],
    ["foreach", "a", "7", 2, 3],
  ]);
  assert.equal(each[2]!.frames[1]!.items, items);
});

void test("the join barrier releases a join once every branch arrived, parents in split order, whatever the arrival order", () => {
  const barrier = new JoinBarrier();
  const frames = successors({ step: "s", taskId: "1", frames: [] }, { kind: "foreach", to: "f", count: 3, items });
  assert.equal(barrier.arrive("j", parent("f", "4"), frames[2]!.frames), undefined);
  assert.equal(barrier.arrive("j", parent("f", "2"), frames[0]!.frames), undefined);
  assert.equal(barrier.waiting, 1);
  const ready = barrier.arrive("j", parent("f", "3"), frames[1]!.frames);
  assert.ok(ready);
  assert.deepEqual(ready.parents.map((p) => p.taskId), ["2", "3", "4"]);
  assert.deepEqual(ready.frames, []);
  assert.equal(barrier.waiting, 0);
});

void test("nested splits: inner joins are kept apart per outer element; a repeated arrival is not counted twice", () => {
  const barrier = new JoinBarrier();
  const outer = successors({ step: "s", taskId: "1", frames: [] }, { kind: "foreach", to: "o", count: 2, items });
  const innerA = successors({ step: "o", taskId: "2", frames: outer[0]!.frames }, { kind: "branch", to: ["x", "y"] });
  const innerB = successors({ step: "o", taskId: "3", frames: outer[1]!.frames }, { kind: "branch", to: ["x", "y"] });
  assert.equal(barrier.arrive("ij", parent("x", "10"), innerA[0]!.frames), undefined);
  assert.equal(barrier.arrive("ij", parent("x", "10"), innerA[0]!.frames), undefined, "the same input twice is one arrival");
  assert.equal(barrier.arrive("ij", parent("x", "11"), innerB[0]!.frames), undefined);
  const a = barrier.arrive("ij", parent("y", "12"), innerA[1]!.frames);
  assert.deepEqual(a?.parents.map((p) => p.taskId), ["10", "12"]);
  assert.deepEqual(a?.frames, outer[0]!.frames);
  assert.throws(() => barrier.arrive("ij", parent("z", "9"), []), /outside a split/);
});

void test("staticTransition gives the step's written transition (where a recovered task goes)", () => {
  const node = { name: "a", kind: "foreach", isJoin: false, next: { kind: "foreach", to: "b", foreach: "xs" }, out: ["b"], in: [], doc: "", line: 1, nextLine: 1, decorators: [], isAsync: false } as const;
  assert.deepEqual(staticTransition(node), { kind: "foreach", to: "b", foreach: "xs" });
  assert.equal(staticTransition({ ...node, next: { kind: "end" } }), undefined);
});
