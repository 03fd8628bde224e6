/**
 * Spike: the generated state machines executed by aws-local-stepfunctions, with each Batch task
 * state handed to a fake `metaflow task` that records what it was asked to run and does what the
 * design says a task does: record its transition (as the metadata would), write its output
 * document where the state machine reads it, and, for a join, find its parents by walking the
 * recorded transitions. Fast and exact about what each state asks; the real thing — each job a
 * `metaflow task` process against s3rver and the metadata service — is test/step-functions.test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  analyseFlow,
  resolveJoinParents,
  startOutputKey,
  type TaskCommand,
  type FlowStructure,
} from "../src/deploy/step-functions/index.js";
import type { TakenTransition } from "../src/metadata/types.js";
import {
  compileShape,
  SHAPES,
  shapeGraph,
  TEST_OPTIONS,
  type Shape,
} from "./fixtures/sfn-shapes.js";
import { runLocally, type LocalRunResult, type SubmittedJob } from "./helpers/sfn-local.js";

/** What one attempt was asked to run. */
interface Call {
  readonly step: string;
  readonly taskId: string;
  readonly attempt: number;
  readonly parent?: string;
  readonly joinOf?: string;
  readonly splitIndex?: number;
  readonly caught?: string;
  readonly runId: string;
  /** Join tasks: the parents they resolved. */
  parents?: string[];
  readonly job: SubmittedJob;
}

/** Decides what a fake task does: how many splits, which case, whether it fails. */
type Script = (c: TaskCommand) => { splits?: number; case?: string; fail?: boolean } | undefined;

class FakeDeployment {
  readonly calls: Call[] = [];
  readonly objects = new Map<string, string>();
  readonly transitions = new Map<string, TakenTransition>();
  failedRuns: string[] = [];
  readonly structure: FlowStructure;

  constructor(
    readonly shape: Shape,
    readonly script: Script = () => undefined,
  ) {
    this.structure = analyseFlow(shapeGraph(shape));
  }

  async run(
    input: unknown = { Parameters: { alpha: "0.5" } },
    executionName = "exec-1",
  ): Promise<LocalRunResult> {
    const { definition } = compileShape(this.shape);
    return runLocally(definition, input, {
      executionName,
      runTask: (c, job) => this.task(c, job),
      stateMachineArn: `arn:aws:states:us-east-1:123456789012:stateMachine:${TEST_OPTIONS.deployment}`,
      runFailed: async (c) => {
        // The run-failed task finds the run through the start task's output document.
        const doc = this.objects.get(`test-bucket/metaflow/${startOutputKey(c.executionId)}`);
        this.failedRuns.push(
          `${c.error} run ${doc ? (JSON.parse(doc) as { runId: string }).runId : "?"}`,
        );
      },
      readObject: async (bucket, key) => this.objects.get(`${bucket}/${key}`),
    });
  }

  private async task(c: TaskCommand, job: SubmittedJob): Promise<void> {
    const runId = c.run.kind === "new" ? "1001" : c.run.runId;
    const call: Call = {
      step: c.step,
      taskId: c.taskId,
      attempt: c.attempt,
      runId,
      job,
      ...(c.parents[0] ? { parent: `${c.parents[0].step}/${c.parents[0].taskId}` } : {}),
      ...(c.joinOf ? { joinOf: `${c.joinOf.step}/${c.joinOf.taskId}` } : {}),
      ...(c.splitIndex !== undefined ? { splitIndex: c.splitIndex } : {}),
      ...(c.caught !== undefined ? { caught: c.caught } : {}),
    };
    this.calls.push(call);
    if (c.run.kind === "new") assert.equal(c.run.parameters, JSON.stringify({ alpha: "0.5" }));
    if (c.joinOf) {
      const parents = await resolveJoinParents(this.structure, c.step, c.joinOf, async (step, id) =>
        this.transitions.get(`${step}/${id}`),
      );
      call.parents = parents.map((p) => `${p.step}/${p.taskId}`);
    }
    const decided = c.caught === undefined ? this.script(c) : undefined;
    if (decided?.fail)
      throw Object.assign(new Error(`${c.step} failed`), { name: "States.TaskFailed" });
    const node = this.structure.steps.get(c.step)!;
    const t = node.next;
    let transition: TakenTransition;
    if (t.kind === "foreach") {
      transition = {
        kind: "foreach",
        to: t.to,
        count: decided?.splits ?? 2,
        items: { name: t.foreach, hash: "h", size: 1, encoding: "json", type: "array" } as never,
      };
    } else if (t.kind === "switch") {
      const chosen = decided?.case ?? Object.keys(t.cases)[0]!;
      transition = { kind: "switch", to: t.cases[chosen]!, case: chosen };
    } else {
      transition =
        t.kind === "branch"
          ? { kind: "branch", to: [...t.to] }
          : t.kind === "linear"
            ? { kind: "linear", to: t.to }
            : { kind: "end" };
    }
    this.transitions.set(`${c.step}/${c.taskId}`, transition);
    if (c.outputKey) {
      const doc = {
        runId,
        step: c.step,
        taskId: c.taskId,
        ...(transition.kind === "foreach"
          ? { splits: Array.from({ length: transition.count }, (_, i) => i) }
          : {}),
        ...(transition.kind === "switch" ? { case: transition.case } : {}),
      };
      this.objects.set(`test-bucket/metaflow/${c.outputKey}`, JSON.stringify(doc));
    }
  }

  /** Calls as `step/taskId`, optionally with attempt, in the order they happened. */
  order(): string[] {
    return this.calls.map((c) => `${c.step}/${c.taskId}`);
  }

  only(step: string): Call[] {
    return this.calls.filter((c) => c.step === step);
  }
}

const sorted = (xs: readonly string[]): string[] => [...xs].sort();

void describe("generated state machines run in aws-local-stepfunctions", () => {
  void it("linear: one task per step, in order; the run id from start reaches every later task", async () => {
    const d = new FakeDeployment(SHAPES.linear!);
    const result = await d.run();
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.deepEqual(d.order(), ["start/sfn", "a/sfn", "end/sfn"]);
    assert.deepEqual(
      d.calls.map((c) => c.runId),
      ["1001", "1001", "1001"],
    );
    assert.deepEqual(
      d.calls.map((c) => c.parent),
      [undefined, "start/sfn", "a/sfn"],
    );
    assert.deepEqual(
      d.calls.map((c) => c.attempt),
      [0, 0, 0],
    );
    assert.equal(d.calls[0]!.job.jobName, "TestFlow-start-sfn");
    assert.equal(d.calls[0]!.job.queue, TEST_OPTIONS.batch.queue);
    // The output document the start task wrote is where the state machine read it.
    assert.ok(d.objects.has("test-bucket/metaflow/sfn/TestFlow/exec-1/start/sfn.json"));
    assert.deepEqual(d.failedRuns, []);
  });

  void it("an execution started without Parameters gives the start task an empty object", async () => {
    const d = new FakeDeployment(SHAPES.linear!);
    // The fake asserts the parameters of the start task; check them by hand here instead.
    const seen: string[] = [];
    const { definition } = compileShape(SHAPES.linear!);
    const result = await runLocally(
      definition,
      {},
      {
        executionName: "e",
        runTask: async (c) => {
          if (c.run.kind === "new") seen.push(c.run.parameters);
          if (c.outputKey)
            d.objects.set(`test-bucket/metaflow/${c.outputKey}`, JSON.stringify({ runId: "7" }));
        },
        readObject: async (b, k) => d.objects.get(`${b}/${k}`),
      },
    );
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.deepEqual(seen, ["{}"]);
  });

  void it("branch: both branches run after the split, and the join finds their last tasks in branch order", async () => {
    const d = new FakeDeployment(SHAPES.branch!);
    assert.equal((await d.run()).ok, true);
    assert.deepEqual(
      sorted(d.order()),
      sorted(["start/sfn", "a/sfn", "b/sfn", "b2/sfn", "join/sfn", "end/sfn"]),
    );
    const order = d.order();
    assert.ok(
      order.indexOf("b/sfn") < order.indexOf("b2/sfn") &&
        order.indexOf("b2/sfn") < order.indexOf("join/sfn"),
    );
    assert.ok(order.indexOf("a/sfn") < order.indexOf("join/sfn"));
    const join = d.only("join")[0]!;
    assert.equal(join.joinOf, "start/sfn");
    assert.deepEqual(join.parents, ["a/sfn", "b2/sfn"]);
    assert.equal(d.only("end")[0]!.parent, "join/sfn");
  });

  void it("foreach: one task per split with its index; the join gets all of them in index order", async () => {
    const d = new FakeDeployment(SHAPES.foreach!, (c) =>
      c.step === "start" ? { splits: 4 } : undefined,
    );
    assert.equal((await d.run()).ok, true);
    const squares = d.only("square");
    assert.deepEqual(sorted(squares.map((c) => c.taskId)), ["sfn-0", "sfn-1", "sfn-2", "sfn-3"]);
    for (const c of squares) {
      assert.equal(c.splitIndex, Number(c.taskId.slice(4)));
      assert.equal(c.parent, "start/sfn");
    }
    assert.deepEqual(d.only("join")[0]!.parents, [
      "square/sfn-0",
      "square/sfn-1",
      "square/sfn-2",
      "square/sfn-3",
    ]);
  });

  void it("nested foreach: index paths two deep; each inner join gathers its own outer index's tasks", async () => {
    const d = new FakeDeployment(SHAPES.nestedForeach!, (c) =>
      c.step === "start"
        ? { splits: 2 }
        : c.step === "outer"
          ? { splits: c.taskId === "sfn-0" ? 3 : 1 }
          : undefined,
    );
    assert.equal((await d.run()).ok, true);
    assert.deepEqual(sorted(d.only("inner").map((c) => c.taskId)), [
      "sfn-0-0",
      "sfn-0-1",
      "sfn-0-2",
      "sfn-1-0",
    ]);
    const innerJoins = new Map(d.only("innerJoin").map((c) => [c.taskId, c]));
    assert.equal(innerJoins.get("sfn-0")!.joinOf, "outer/sfn-0");
    assert.deepEqual(innerJoins.get("sfn-0")!.parents, [
      "inner/sfn-0-0",
      "inner/sfn-0-1",
      "inner/sfn-0-2",
    ]);
    assert.deepEqual(innerJoins.get("sfn-1")!.parents, ["inner/sfn-1-0"]);
    assert.deepEqual(sorted(d.only("after").map((c) => c.parent!)), [
      "innerJoin/sfn-0",
      "innerJoin/sfn-1",
    ]);
    assert.deepEqual(d.only("outerJoin")[0]!.parents, ["after/sfn-0", "after/sfn-1"]);
    assert.equal(d.only("inner").find((c) => c.taskId === "sfn-0-2")!.splitIndex, 2);
  });

  void it("switch with recursion: only the picked case runs; the step repeats until the condition says done", async () => {
    let loops = 0;
    const d = new FakeDeployment(SHAPES.switchRecursion!, (c) => {
      if (c.step === "start") return { case: "low" };
      if (c.step === "loop") return { case: ++loops < 3 ? "again" : "done" };
      return undefined;
    });
    assert.equal((await d.run()).ok, true);
    assert.deepEqual(d.order(), [
      "start/sfn",
      "low/sfn",
      "merge/sfn",
      "loop/sfn-r0",
      "loop/sfn-r1",
      "loop/sfn-r2",
      "end/sfn",
    ]);
    assert.deepEqual(
      d.calls.map((c) => c.parent),
      [undefined, "start/sfn", "low/sfn", "merge/sfn", "loop/sfn-r0", "loop/sfn-r1", "loop/sfn-r2"],
    );
  });

  void it("recursion inside a foreach: each split loops on its own; the join finds each split's last iteration", async () => {
    const d = new FakeDeployment(SHAPES.recursionInForeach!, (c) => {
      if (c.step === "start") return { splits: 3 };
      if (c.step !== "work") return undefined;
      // Split i repeats i times before it is done.
      const { taskId } = c;
      const [, index, iteration] = /^sfn-(\d+)-r(\d+)$/.exec(taskId)!;
      return { case: Number(iteration) < Number(index) ? "again" : "done" };
    });
    assert.equal((await d.run()).ok, true);
    assert.deepEqual(sorted(d.only("work").map((c) => c.taskId)), [
      "sfn-0-r0",
      "sfn-1-r0",
      "sfn-1-r1",
      "sfn-2-r0",
      "sfn-2-r1",
      "sfn-2-r2",
    ]);
    assert.deepEqual(d.only("join")[0]!.parents, [
      "work/sfn-0-r0",
      "work/sfn-1-r1",
      "work/sfn-2-r2",
    ]);
  });

  void it("retry: a task failing once runs again as attempt 1 and the flow goes on", async () => {
    const d = new FakeDeployment(SHAPES.retry!, (c) =>
      c.step === "flaky" && c.attempt === 0 ? { fail: true } : undefined,
    );
    assert.equal((await d.run()).ok, true);
    assert.deepEqual(
      d.calls.map((c) => `${c.step}/${c.taskId}#${c.attempt}`),
      ["start/sfn#0", "flaky/sfn#0", "flaky/sfn#1", "end/sfn#0"],
    );
    const flaky = d.only("flaky")[0]!;
    assert.equal(flaky.job.attemptSeconds, 90);
    assert.deepEqual(flaky.job.environment, [{ Name: "MODE", Value: "fast" }]);
  });

  void it("retry exhausted without @catchError: the execution fails and the run is recorded as failed", async () => {
    const d = new FakeDeployment(SHAPES.retry!, (c) =>
      c.step === "flaky" ? { fail: true } : undefined,
    );
    const result = await d.run();
    assert.equal(result.ok, false);
    assert.equal(result.ok === false && result.error, "MetaflowRunFailed");
    assert.deepEqual(
      d.only("flaky").map((c) => c.attempt),
      [0, 1, 2],
    );
    assert.deepEqual(d.only("end"), []);
    assert.deepEqual(d.failedRuns, ["States.TaskFailed run 1001"]);
  });

  void it("catch: after every attempt failed, a caught task stores the error and the flow goes on", async () => {
    const d = new FakeDeployment(SHAPES.catch!, (c) =>
      c.step === "fragile" ? { fail: true } : undefined,
    );
    assert.equal((await d.run()).ok, true);
    assert.deepEqual(
      d.calls.map(
        (c) => `${c.step}/${c.taskId}#${c.attempt}${c.caught ? ` caught ${c.caught}` : ""}`,
      ),
      [
        "start/sfn#0",
        "fragile/sfn#0",
        "fragile/sfn#1",
        "fragile/sfn#2 caught States.TaskFailed",
        "end/sfn#0",
      ],
    );
    assert.equal(d.only("end")[0]!.parent, "fragile/sfn");
    assert.deepEqual(d.failedRuns, []);
  });
});
