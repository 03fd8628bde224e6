import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { openBackends } from "../backends.js";
import { openSerializerScope, registerSerializer } from "../datastore/serializers.js";
import { startDeployedRun } from "./deployed-run.js";
import type { RunPlan } from "./run-plan.js";

void describe("the run of a deployed flow", () => {
  void it("records each parameter's reference as a local run does: serializer and summary kept", async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "mf-deployed-run-"));
    const close = openSerializerScope();
    const backends = openBackends({ datastoreRoot: root, env: { METAFLOW_USER: "tester" } });
    try {
      registerSerializer<{ grid: number[] }>({
        name: "grid",
        test: (v) => typeof v === "object" && v !== null && "grid" in v,
        encode: (v) => Buffer.from(JSON.stringify(v.grid)),
        decode: (b) => ({ grid: JSON.parse(String(b)) as number[] }),
        describe: (v) => ({ type: "Grid", summary: { points: v.grid.length } }),
      });
      const plan: RunPlan = {
        version: 1,
        flowName: "GridFlow",
        className: "GridFlow",
        codePackage: "0".repeat(64),
        flowFile: "grid.ts",
        parameterNames: ["space"],
        maxNumSplits: 100,
        flowDecorators: [],
        steps: {},
        parameters: [
          {
            kind: "parameter",
            name: "space",
            field: "space",
            type: "json",
            required: false,
            default: { grid: [1, 2, 3] },
          },
        ],
      };
      const selector = {
        kind: "new",
        executionId: "arn:aws:states:r:1:execution:GridFlow:e1",
        parameters: "{}",
        systemTags: [],
      } as const;
      const runId = await startDeployedRun(backends, plan, "p", selector, {
        METAFLOW_USER: "tester",
      });
      const run = await backends.metadata.getRun("GridFlow", runId);
      const ref = run?.parameterRefs.find((r) => r.name === "space");
      assert.equal(ref?.serializer, "grid");
      assert.equal(ref?.type, "Grid");
      assert.deepEqual(ref?.summary, { points: 3 });
      assert.deepEqual(await backends.store.getValue(ref!), { grid: [1, 2, 3] });
    } finally {
      backends.close();
      close();
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
