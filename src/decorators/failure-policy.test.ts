import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultPlan } from "./contract.js";
import { afterFailure, describeDecision } from "./failure-policy.js";

void test("retry while attempts remain, then recover when the plan says so, else fail", () => {
  const plan = { ...defaultPlan(), retries: 2, retryDelayMs: 500 };
  assert.deepEqual(afterFailure(plan, 0, false), { kind: "retry", attempt: 1, delayMs: 500 });
  assert.deepEqual(afterFailure(plan, 1, false), { kind: "retry", attempt: 2, delayMs: 500 });
  assert.deepEqual(afterFailure(plan, 2, false), { kind: "fail" });
  const recovering = { ...plan, onFailure: { storeIn: "err", print: true } };
  assert.deepEqual(afterFailure(recovering, 2, false), { kind: "recover", attempt: 3, storeIn: "err", print: true });
  assert.deepEqual(afterFailure(recovering, 3, true), { kind: "fail" }, "a failed recovery is final");
  assert.match(describeDecision(afterFailure(plan, 0, false), plan), /retrying \(attempt 2 of 3\)/);
  assert.match(describeDecision(afterFailure({ ...recovering, onFailure: { storeIn: undefined, print: false } }, 2, false), plan), /not stored/);
});
