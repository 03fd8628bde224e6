import assert from "node:assert/strict";
import { describe, it } from "node:test";
import validator from "asl-validator";
import { compileShape, SHAPES, shapeGraph } from "../../../test/fixtures/sfn-shapes.js";
import { buildGraph } from "../../graph/index.js";
import { DeployError } from "../errors.js";
import type { AslMachine, AslState } from "./asl.js";
import { compileFlow } from "./index.js";

/** Every state of a machine, nested ones included, by name (names are unique machine-wide). */
function allStates(machine: AslMachine): Map<string, AslState> {
  const out = new Map<string, AslState>();
  for (const [name, state] of Object.entries(machine.States)) {
    assert.ok(!out.has(name), `state name ${name} used twice`);
    out.set(name, state);
    const nested =
      state.Type === "Map"
        ? [state.ItemProcessor as AslMachine]
        : state.Type === "Parallel"
          ? (state.Branches as AslMachine[])
          : [];
    for (const m of nested) for (const [n, s] of allStates(m)) out.set(n, s);
  }
  return out;
}

function state(machine: AslMachine, name: string): AslState {
  const s = allStates(machine).get(name);
  assert.ok(s, `no state '${name}' in ${[...allStates(machine).keys()].join(", ")}`);
  return s;
}

const command = (m: AslMachine, name: string): string =>
  (state(m, name).Parameters as { ContainerOverrides: Record<string, string> }).ContainerOverrides[
    "Command.$"
  ]!;

void describe("step-functions compiler", () => {
  for (const [shapeName, shape] of Object.entries(SHAPES)) {
    void it(`${shapeName}: the state machine passes asl-validator`, () => {
      const { definition } = compileShape(shape);
      const result = validator(definition as never);
      assert.deepEqual(result.errors, [], JSON.stringify(result.errors, null, 1));
      assert.equal(result.isValid, true);
      // Also with the datastore at the bucket's root and a project's dotted name.
      const other = compileShape(shape, {
        datastoreRoot: "s3://bucket",
        deployment: "recsys.user.bob.Flow",
      });
      assert.equal(validator(other.definition as never).isValid, true);
    });
  }

  void it("linear: start creates the run, later steps name their parent, end finishes the run", () => {
    const { definition } = compileShape(SHAPES.linear!);
    const start = command(definition, "start task");
    assert.match(
      start,
      /'--new-run-for', \$\$\.Execution\.Id, '--parameters', States\.JsonToString\(\$\.Parameters\)/,
    );
    assert.match(start, /'--sys-tag', 'production:testflow-abc123'/);
    assert.match(
      start,
      /'--output-key', States\.Format\('sfn\/TestFlow\/\{\}\/start\/\{\}\.json', \$\$\.Execution\.Name, \$\.task\.id\)/,
    );
    assert.doesNotMatch(start, /--parents/);
    assert.match(start, /^States\.Array\('metaflow', 'task', '--plan', 'c0ffee', /);
    const a = command(definition, "a task");
    assert.match(
      a,
      /'--run-id', \$\.runId, '--step', 'a', '--task-id', \$\.task\.id, '--min-attempt', States\.Format\('\{\}', \$\$\.State\.RetryCount\), '--parents', States\.Format\('\{\}\/\{\}', \$\.task\.parentStep, \$\.task\.parentId\)/,
    );
    assert.match(a, /'--min-attempt', States\.Format\('\{\}', \$\$\.State\.RetryCount\)/);
    assert.doesNotMatch(a, /--output-key|--finish-run/);
    assert.match(command(definition, "end task"), /'--finish-run'/);
    assert.equal(state(definition, "end task").End, true);
    // The output read uses the full S3 key under the datastore prefix.
    const read = state(definition, "start output");
    assert.deepEqual(read.Parameters, {
      Bucket: "test-bucket",
      "Key.$":
        "States.Format('metaflow/sfn/TestFlow/{}/start/{}.json', $$.Execution.Name, $.task.id)",
    });
    // A failed run is recorded, then the execution fails.
    assert.deepEqual((state(definition, "Run").Catch as unknown[])[0], {
      ErrorEquals: ["States.ALL"],
      ResultPath: "$.error",
      Next: "Record failure",
    });
    assert.match(
      command(definition, "Record failure"),
      /'--run-failed-for', \$\$\.Execution\.Id, '--error', \$\.error\.Error/,
    );
  });

  void it("branch: a Parallel state with one branch per target, and the join told the split task", () => {
    const { definition } = compileShape(SHAPES.branch!);
    const parallel = state(definition, "start parallel");
    const branches = parallel.Branches as AslMachine[];
    assert.deepEqual(
      branches.map((b) => b.StartAt),
      ["a", "b"],
    );
    assert.deepEqual(Object.keys(branches[1]!.States).sort(), ["b", "b task", "b2", "b2 task"]);
    assert.equal(branches[1]!.States["b2 task"]!.End, true);
    assert.equal(branches[1]!.States["b2 task"]!.OutputPath, "$.task");
    assert.equal(parallel.Next, "join");
    assert.equal(parallel.ResultPath, null);
    assert.match(command(definition, "join task"), /'--join-of', States\.Format/);
    assert.doesNotMatch(command(definition, "join task"), /--parents/);
  });

  void it("foreach: a Map over the split indices the task wrote, with the index path in each item", () => {
    const { definition } = compileShape(SHAPES.foreach!, { maxWorkers: 7 });
    const map = state(definition, "start map");
    assert.equal(map.ItemsPath, "$.out.doc.splits");
    assert.equal(map.MaxConcurrency, 7);
    assert.deepEqual(map.ItemSelector, {
      "runId.$": "$.runId",
      "ix.$": "States.Format('{}-{}', $.ix, $$.Map.Item.Index)",
      "index.$": "$$.Map.Item.Index",
      "task.$": "$.task",
    });
    assert.match(
      command(definition, "square task"),
      /'--split-index', States\.Format\('\{\}', \$\.index\)/,
    );
    assert.equal(
      (state(definition, "square").Parameters as Record<string, string>)["id.$"],
      "States.Format('sfn{}', $.ix)",
    );
  });

  void it("nested foreach: a Map inside the Map, closed by the inner join inside the outer body", () => {
    const { definition } = compileShape(SHAPES.nestedForeach!);
    const outer = state(definition, "start map").ItemProcessor as AslMachine;
    assert.ok(outer.States["outer map"]);
    const inner = outer.States["outer map"]!.ItemProcessor as AslMachine;
    assert.deepEqual(Object.keys(inner.States).sort(), ["inner", "inner task"]);
    assert.ok(outer.States.innerJoin && outer.States.after);
    assert.equal(outer.States["after task"]!.End, true);
  });

  void it("switch with recursion: a Choice on the case the task wrote; the repeating step counts its iterations", () => {
    const { definition } = compileShape(SHAPES.switchRecursion!);
    assert.deepEqual(state(definition, "start choice").Choices, [
      { Variable: "$.out.doc.case", StringEquals: "high", Next: "high" },
      { Variable: "$.out.doc.case", StringEquals: "low", Next: "low" },
    ]);
    assert.equal(state(definition, "start choice").Default, "start no case");
    assert.equal(state(definition, "merge task").Next, "loop loop");
    assert.deepEqual(state(definition, "loop loop"), {
      Type: "Pass",
      Result: { n: 0 },
      ResultPath: "$.loop",
      Next: "loop",
    });
    assert.equal(
      (state(definition, "loop").Parameters as Record<string, string>)["id.$"],
      "States.Format('sfn{}-r{}', $.ix, $.loop.n)",
    );
    assert.deepEqual((state(definition, "loop choice").Choices as unknown[])[0], {
      Variable: "$.out.doc.case",
      StringEquals: "again",
      Next: "loop again",
    });
    assert.deepEqual(state(definition, "loop again").Parameters, {
      "n.$": "States.MathAdd($.loop.n, 1)",
    });
    assert.equal(state(definition, "loop again").Next, "loop");
  });

  void it("catch: the task's Catch goes to a task that stores the error, attempt retries + 1", () => {
    const { definition } = compileShape(SHAPES.catch!);
    const task = state(definition, "fragile task");
    assert.deepEqual(task.Retry, [
      { ErrorEquals: ["States.ALL"], IntervalSeconds: 1, MaxAttempts: 1, BackoffRate: 1 },
    ]);
    assert.deepEqual(task.Catch, [
      { ErrorEquals: ["States.ALL"], ResultPath: "$.caught", Next: "fragile caught" },
    ]);
    const caught = command(definition, "fragile caught");
    assert.match(caught, /'--min-attempt', '2'/);
    assert.match(caught, /'--caught', \$\.caught\.Error/);
    assert.equal(state(definition, "fragile caught").Next, "end");
  });

  void it("retry, timeout, resources, environment: Retry, Batch timeout, resource requests, variables", () => {
    const { definition } = compileShape(SHAPES.retry!);
    const task = state(definition, "flaky task");
    assert.deepEqual(task.Retry, [
      { ErrorEquals: ["States.ALL"], IntervalSeconds: 30, MaxAttempts: 2, BackoffRate: 1 },
    ]);
    const p = task.Parameters as Record<string, any>;
    assert.deepEqual(p.Timeout, { AttemptDurationSeconds: 90 });
    assert.equal(task.TimeoutSeconds, 90 + 86_400);
    assert.deepEqual(p.ContainerOverrides.ResourceRequirements, [
      { Type: "VCPU", Value: "2" },
      { Type: "MEMORY", Value: "8192" },
      { Type: "GPU", Value: "1" },
    ]);
    assert.deepEqual(p.ContainerOverrides.Environment, [{ Name: "MODE", Value: "fast" }]);
    assert.equal(p.JobQueue, "test-queue");
    assert.equal(p["JobName.$"], "States.Format('TestFlow-flaky-{}', $.task.id)");
    // Without @timeout: Metaflow's five days.
    assert.deepEqual((state(definition, "start task").Parameters as Record<string, any>).Timeout, {
      AttemptDurationSeconds: 432_000,
    });
  });

  void it("a @timeout under a minute becomes Batch's minimum of 60 s", () => {
    const shape = {
      ...SHAPES.linear!,
      decorators: { a: [{ name: "timeout", options: { seconds: 5 } }] },
    };
    const p = state(compileShape(shape).definition, "a task").Parameters as Record<string, any>;
    assert.deepEqual(p.Timeout, { AttemptDurationSeconds: 60 });
  });

  void it("one job definition per distinct image and roles, named with a content hash", () => {
    const plain = compileShape(SHAPES.linear!);
    assert.equal(plain.jobDefinitions.length, 1);
    assert.match(plain.jobDefinitions[0]!.name, /^TestFlow-[0-9a-f]{10}$/);
    const shape = {
      ...SHAPES.linear!,
      decorators: { a: [{ name: "batch", options: { image: "my/image:2", queue: "gpu" } }] },
    };
    const { jobDefinitions, definition } = compileShape(shape, {
      environment: { METAFLOW_DEFAULT_DATASTORE: "s3" },
    });
    assert.equal(jobDefinitions.length, 2);
    assert.deepEqual(jobDefinitions.map((j) => j.image).sort(), ["my/image:2", "node:20"]);
    assert.equal(
      (state(definition, "a task").Parameters as Record<string, string>).JobQueue,
      "gpu",
    );
    assert.deepEqual(jobDefinitions[0]!.environment, { METAFLOW_DEFAULT_DATASTORE: "s3" });
  });

  void it("refuses what it cannot deploy, saying how to fix it", () => {
    assert.throws(
      () => compileShape(SHAPES.linear!, { datastoreRoot: "/home/me/.metaflow" }),
      (e: unknown) => {
        assert.ok(e instanceof DeployError);
        assert.match(e.message, /METAFLOW_DATASTORE_SYSROOT_S3=s3:\/\/bucket\/prefix/);
        return true;
      },
    );
    const loopStart = buildGraph(
      "f.ts",
      `import { FlowSpec, step } from "metaflow-ts";
      export default class L extends FlowSpec {
        @step start() { this.next({ again: this.start, done: this.end }, { condition: "c" }); }
        @step end() {}
      }`,
    );
    assert.throws(
      () => compileFlow(loopStart, new Map(), { ...compileOptions() }),
      /start step.s switch names start itself; on Step Functions the start task creates the run/,
    );
    const longName = "s".repeat(75);
    const long = buildGraph(
      "f.ts",
      `import { FlowSpec, step } from "metaflow-ts";
      export default class L extends FlowSpec {
        @step start() { this.next(this.${longName}); }
        @step ${longName}() { this.next(this.end); }
        @step end() {}
      }`,
    );
    assert.throws(
      () => compileFlow(long, new Map(), compileOptions()),
      /has 75 characters; state names are limited to 80/,
    );
    const levels = [1, 2, 3, 4, 5];
    const deep = buildGraph(
      "f.ts",
      `import { FlowSpec, step } from "metaflow-ts";
      export default class D extends FlowSpec {
        @step start() { this.next(this.s1, { foreach: "xs" }); }
        ${levels.map((i) => (i < 5 ? `@step s${i}() { this.next(this.s${i + 1}, { foreach: "xs" }); }` : `@step s5() { this.next(this.j5); }`)).join("\n")}
        ${levels.map((i) => `@step j${6 - i}(inputs) { this.next(this.${i < 5 ? `j${5 - i}` : "end"}); }`).join("\n")}
        @step end() {}
      }`,
    );
    assert.equal(compileFlow(deep, new Map(), compileOptions()).name, "L");
    assert.throws(
      () => compileFlow(deep, new Map(), { ...compileOptions(), maxNumSplits: 10 ** 10 }),
      /5 nested foreach levels and --max-num-splits 10000000000, task ids could reach 66/,
    );
    assert.throws(
      () =>
        compileShape({
          ...SHAPES.linear!,
          decorators: { a: [{ name: "batch", options: { cpu: -1 } }] },
        }),
      /@batch\.cpu must be a number > 0, got -1/,
    );
  });

  void it("the graph must pass the linter first", () => {
    const bad = buildGraph(
      "f.ts",
      `import { FlowSpec, step } from "metaflow-ts";
      export default class B extends FlowSpec {
        @step start() { this.next(this.a, this.b); }
        @step a() { this.next(this.end); }
        @step b() { this.next(this.end); }
        @step end() {}
      }`,
    );
    assert.throws(() => compileFlow(bad, new Map(), compileOptions()), /not a join/);
    assert.ok(shapeGraph(SHAPES.branch!));
  });
});

function compileOptions() {
  return {
    deployment: "L",
    plan: "x",
    datastoreRoot: "s3://b/p",
    systemTags: [],
    batch: { queue: "q", image: "i" },
  };
}
