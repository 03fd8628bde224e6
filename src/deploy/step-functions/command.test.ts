import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  formatTaskCommand,
  parseTaskCommand,
  taskCommandExpression,
  type TaskCommand,
} from "./command.js";
import { outputKey, parseTaskId, startOutputKey, taskIdFor } from "./ids.js";

const join: TaskCommand = {
  flow: "TrainFlow",
  codePackage: "abc123",
  step: "join",
  taskId: "sfn-2",
  attempt: 1,
  run: { kind: "existing", runId: "1712" },
  joinOf: { step: "outer", taskId: "sfn-2" },
  outputKey: "sfn/TrainFlow/e1/join/sfn-2.json",
  finishRun: false,
  maxNumSplits: 100,
  namespace: "production:trainflow-x1",
  project: { name: "recsys", branch: "test.feature", production: false },
};

void describe("metaflow task command contract", () => {
  void it("round-trips every field through the command line", () => {
    assert.deepEqual(parseTaskCommand(formatTaskCommand(join)), join);
    const start: TaskCommand = {
      ...join,
      step: "start",
      taskId: "sfn",
      attempt: 0,
      run: {
        kind: "new",
        executionId: "arn:aws:states:us-east-1:1:execution:sm:e1",
        parameters: '{"alpha":"0.1"}',
        systemTags: ["production:t", "project:recsys"],
      },
      joinOf: undefined,
      parent: undefined,
      splitIndex: 3,
      caught: "States.Timeout",
      finishRun: true,
      project: { name: "recsys", branch: "prod", production: true },
    } as TaskCommand;
    const parsed = parseTaskCommand(formatTaskCommand(start));
    assert.deepEqual(
      parsed,
      Object.fromEntries(Object.entries(start).filter(([, v]) => v !== undefined)),
    );
  });

  void it("names the flag of a bad command line", () => {
    const argv = formatTaskCommand(join);
    assert.throws(
      () => parseTaskCommand(["run", ...argv.slice(1)]),
      /expected 'task' first, got "run"/,
    );
    assert.throws(() => parseTaskCommand([...argv, "--bogus"]), /unknown flag "--bogus"/);
    assert.throws(
      () => parseTaskCommand([...argv, "--new-run-for", "arn"]),
      /exactly one of --run-id and --new-run-for/,
    );
    const bad = [...argv];
    bad[bad.indexOf("--attempt") + 1] = "-1";
    assert.throws(() => parseTaskCommand(bad), /--attempt must be a whole number ≥ 0, got "-1"/);
    const badRef = [...argv];
    badRef[badRef.indexOf("--join-of") + 1] = "outer";
    assert.throws(() => parseTaskCommand(badRef), /--join-of must be step\/taskId, got "outer"/);
    assert.throws(() => parseTaskCommand([...argv, "--step"]), /--step needs a value/);
  });

  void it("quotes literals for States.Array and keeps expressions as they are", () => {
    const expr = taskCommandExpression({
      ...join,
      flow: "It's{odd}\\",
      taskId: { expr: "$.task.id" },
      attempt: "2",
      run: { kind: "existing", runId: { expr: "$.runId" } },
      joinOf: undefined,
      splitIndex: undefined,
      parent: { expr: "$.p" },
      outputKey: undefined,
      project: undefined,
    });
    assert.equal(
      expr,
      "States.Array('metaflow', 'task', '--flow', 'It\\'s\\{odd\\}\\\\', '--code-package', 'abc123', '--step', 'join', '--task-id', $.task.id, '--attempt', '2', '--run-id', $.runId, '--parent', $.p, '--max-num-splits', '100', '--namespace', 'production:trainflow-x1')",
    );
  });
});

void describe("deployed task ids", () => {
  void it("encode foreach indices and iterations, and read back", () => {
    const cases: Array<[Parameters<typeof taskIdFor>[0], string]> = [
      [{ indices: [] }, "sfn"],
      [{ indices: [2] }, "sfn-2"],
      [{ indices: [2, 0] }, "sfn-2-0"],
      [{ indices: [], iteration: 0 }, "sfn-r0"],
      [{ indices: [1, 12], iteration: 3 }, "sfn-1-12-r3"],
    ];
    for (const [position, id] of cases) {
      assert.equal(taskIdFor(position), id);
      assert.deepEqual(parseTaskId(id), position);
    }
    for (const bad of ["", "1", "sfn-", "sfn-a", "sfn-r", "sfn-r1-2", "xsfn"]) {
      assert.throws(() => parseTaskId(bad), /is not a Step Functions task id/);
    }
    assert.match(taskIdFor({ indices: [99999, 99999], iteration: 9999 }), /^[A-Za-z0-9_-]{1,64}$/);
  });

  void it("output documents live under the deployment and the execution", () => {
    assert.equal(
      outputKey("recsys.prod.TrainFlow", "e-1", "start", "sfn"),
      "sfn/recsys.prod.TrainFlow/e-1/start/sfn.json",
    );
    assert.equal(
      startOutputKey("arn:aws:states:eu-west-1:123456789012:execution:recsys.prod.TrainFlow:e-1"),
      "sfn/recsys.prod.TrainFlow/e-1/start/sfn.json",
    );
    assert.equal(startOutputKey("arn:aws:states:eu-west-1:1:stateMachine:x"), undefined);
  });
});
