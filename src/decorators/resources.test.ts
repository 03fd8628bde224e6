import assert from "node:assert/strict";
import { test } from "node:test";
import * as api from "../api.js";
import { defaultPlan, type StepDecoratorDefinition, type TaskPlan } from "./contract.js";
import { libraryDefinitions } from "./registry.js";

/** The plan after applying `@name(options)` for each pair, in this order (as the runtime does). */
function planOf(...decorators: Array<[string, Record<string, unknown>]>): TaskPlan {
  const defs = libraryDefinitions(api);
  const plan = defaultPlan();
  for (const [name, raw] of decorators) {
    const def = defs.get(name) as StepDecoratorDefinition<Record<string, unknown>>;
    def.plan!(def.parse ? def.parse(raw, "code") : raw, plan, { step: "train", flowName: "F", decorators: [] } as never);
  }
  return plan;
}

void test("@resources and @batch request the larger of each field, in either order", () => {
  const expected = { cpu: 8, memoryMb: 16384, gpu: 1 };
  const resources: [string, Record<string, unknown>] = ["resources", { memory: 16384, cpu: 2 }];
  const batch: [string, Record<string, unknown>] = ["batch", { cpu: 8, gpu: 1, memory: 1024 }];
  assert.deepEqual(planOf(resources, batch).resources, expected);
  assert.deepEqual(planOf(batch, resources).resources, expected, "@resources applied after @batch keeps @batch's request");
  assert.equal(planOf(batch, resources).launcher.kind, "batch", "@resources' memory does not move a @batch step to a local process");
});
