import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { taskCommandExpression } from "../deploy/step-functions/command.js";
import {
  formatTaskCommand,
  parseRunFailedCommand,
  parseTaskCommand,
  runFailedArgv,
  type TaskCommand,
} from "./command.js";
import { outputKey, parseTaskId, startOutputKey, taskIdFor } from "./task-ids.js";

const join: TaskCommand = {
  plan: "abc123",
  step: "join",
  taskId: "sfn-2",
  attempt: 1,
  nextFreeAttempt: true,
  run: { kind: "existing", runId: "1712" },
  parents: [],
  joinOf: { step: "outer", taskId: "sfn-2" },
  recover: false,
  outputKey: "sfn/TrainFlow/e1/join/sfn-2.json",
  finishRun: false,
};

/** What Slurm sends: exact attempt, parents listed, a label. */
const slurm: TaskCommand = {
  plan: "abc123",
  step: "train",
  taskId: "17",
  attempt: 2,
  nextFreeAttempt: false,
  run: { kind: "existing", runId: "1712" },
  parents: [
    { step: "a", taskId: "3" },
    { step: "b", taskId: "4" },
  ],
  splitIndex: 3,
  recover: true,
  finishRun: false,
  label: "slurm job 77_3",
};

void describe("metaflow task command contract", () => {
  void it("round-trips every field through the command line", () => {
    assert.deepEqual(parseTaskCommand(formatTaskCommand(join)), join);
    assert.deepEqual(parseTaskCommand(formatTaskCommand(slurm)), slurm);
    assert.deepEqual(formatTaskCommand(slurm), [
      "task",
      "--plan",
      "abc123",
      "--run-id",
      "1712",
      "--step",
      "train",
      "--task-id",
      "17",
      "--attempt",
      "2",
      "--parents",
      "a/3,b/4",
      "--split-index",
      "3",
      "--recover",
      "--label",
      "slurm job 77_3",
    ]);
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
      parents: [],
      joinOf: undefined,
      outputKey: "sfn/TrainFlow/e1/start/sfn.json",
      caught: "States.Timeout",
      recover: true,
      finishRun: true,
    } as TaskCommand;
    const parsed = parseTaskCommand(formatTaskCommand(start));
    assert.deepEqual(
      parsed,
      Object.fromEntries(Object.entries(start).filter(([, v]) => v !== undefined)),
    );
    const failed = { plan: "p", executionId: "arn:x", error: "States.TaskFailed" };
    assert.deepEqual(parseRunFailedCommand(runFailedArgv(failed) as string[]), failed);
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
    bad[bad.indexOf("--min-attempt") + 1] = "-1";
    assert.throws(
      () => parseTaskCommand(bad),
      /--min-attempt must be a whole number from 0 to 1000, got "-1"/,
    );
    assert.throws(
      () => parseTaskCommand([...argv, "--attempt", "1"]),
      /--attempt or --min-attempt, not both/,
    );
    const badRef = [...argv];
    badRef[badRef.indexOf("--join-of") + 1] = "outer";
    assert.throws(() => parseTaskCommand(badRef), /--join-of takes step\/taskId, got "outer"/);
    assert.throws(
      () => parseTaskCommand([...argv, "--parents", "a/1"]),
      /--parents or --join-of, not both/,
    );
    assert.throws(() => parseTaskCommand([...argv, "--step"]), /--step needs a value/);
    assert.throws(() => parseTaskCommand([...argv, "--sys-tag", "x"]), /go with --new-run-for/);
    assert.throws(
      () => parseTaskCommand(["task", "--run-id", "1", "--step", "s", "--task-id", "t"]),
      /--plan is required/,
    );
    // Checked with the flags, before a run is created: no run is left without an end.
    const withKey = (key: string) => {
      const a = [...argv];
      a[a.indexOf("--output-key") + 1] = key;
      return a;
    };
    for (const key of [
      "data/ab/0123456789abcdef",
      "flows/TrainFlow/1712/_end.json",
      "sfn/TrainFlow/e1/other/sfn-2.json",
      "sfn/TrainFlow/e1/join/sfn-3.json",
      "sfn/TrainFlow/../join/sfn-2.json",
      "/sfn/TrainFlow/e1/join/sfn-2.json",
    ]) {
      assert.throws(
        () => parseTaskCommand(withKey(key)),
        new RegExp(
          `--output-key must be sfn/<deployment>/<execution>/join/sfn-2\\.json .*got ${JSON.stringify(key).replace(/[.]/g, "\\.")}`,
        ),
        key,
      );
    }
    const newRun = ["--new-run-for", "arn:aws:states:r:1:execution:sm:e1"];
    const withRunId = argv.indexOf("--run-id");
    const joinNewRun = [...argv];
    joinNewRun.splice(withRunId, 2, ...newRun);
    assert.throws(
      () => parseTaskCommand(joinNewRun),
      /--new-run-for creates the run, which only the start task does; step 'join' takes --run-id/,
    );
    assert.throws(
      () => parseRunFailedCommand(["task", "--plan", "p", "--run-failed-for", "arn"]),
      /--error is required/,
    );
  });

  void it("becomes a States.Array expression: literals quoted, expressions as they are", () => {
    const expr = taskCommandExpression({
      plan: "It's{odd}\\",
      step: "join",
      taskId: { expr: "$.task.id" },
      attempt: "2",
      nextFreeAttempt: false,
      run: { kind: "existing", runId: { expr: "$.runId" } },
      parents: { expr: "$.p" },
      finishRun: true,
    });
    assert.equal(
      expr,
      "States.Array('metaflow', 'task', '--plan', 'It\\'s\\{odd\\}\\\\', '--run-id', $.runId, '--step', 'join', '--task-id', $.task.id, '--attempt', '2', '--parents', $.p, '--finish-run')",
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
