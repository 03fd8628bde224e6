/**
 * The deployed state machine actually runs: each fixture flow is deployed with the `Deployer` to a
 * local AWS stand-in (Step Functions executed by aws-local-stepfunctions, each Batch job a real
 * `metaflow task` process with the job definition's environment) against s3rver and the metadata
 * service, and its run, read through the client, must equal a local run of the same flow.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Deployer, Flow, namespace, Runner, type Run } from "../src/index.js";
import { deployAvailability, startDeployStack, type DeployStack } from "./helpers/deploy-stack.js";
import { Project } from "./helpers/project.js";

const skip = deployAvailability();
let setup: DeployStack;
const saved = { ...process.env };

before(async () => {
  if (skip) return;
  setup = await startDeployStack();
  // This process deploys (as alice) and reads the runs back through the client.
  Object.assign(process.env, setup.env());
  namespace(null);
});

after(async () => {
  process.env = saved;
  await setup?.stop();
});

/** A task's artifacts as comparable text: values, with the parts of an error that name files dropped. */
async function snapshot(run: Run): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for await (const step of run.steps()) {
    const rows: string[] = [];
    for await (const task of step.tasks()) {
      const values: Record<string, unknown> = {};
      for (const a of await task.artifacts()) values[a.name] = await task.data(a.name as never);
      rows.push(
        JSON.stringify(
          values,
          (k, v: unknown) => (k === "stack" || k === "location" ? undefined : v),
          0,
        ),
      );
    }
    out[step.name] = rows.sort();
  }
  return out;
}

const FIXTURES: ReadonlyArray<{
  file: string;
  parameters?: Record<string, unknown>;
  check?: (run: Run) => Promise<void>;
}> = [
  {
    file: "linear",
    parameters: { alpha: 0.25 },
    check: async (r) => assert.equal(await r.data("y" as never), 1.5),
  },
  { file: "branch", check: async (r) => assert.equal(await r.data("total" as never), 11 + 36) },
  {
    file: "foreach",
    parameters: { size: 4 },
    check: async (r) => assert.deepEqual(await r.data("squares" as never), [1, 4, 9, 16]),
  },
  {
    file: "nested",
    check: async (r) =>
      assert.deepEqual(await r.data("all" as never), ["a1@0.0", "a2@0.1", "a3@0.2", "b1@1.0"]),
  },
  {
    file: "switch",
    parameters: { level: "high" },
    check: async (r) =>
      assert.deepEqual(
        [await r.data("path" as never), await r.data("rounds" as never)],
        ["high", 3],
      ),
  },
  {
    file: "catch",
    check: async (r) => assert.equal(await r.data("verdict" as never), "caught RangeError"),
  },
  {
    file: "retry",
    check: async (r) => {
      assert.equal(await r.data("attempts" as never), 2);
      const flaky = await (await r.step("flaky")).task();
      assert.equal(flaky.retryCount, 1);
    },
  },
];

void describe(
  "deployed flows run on the local Step Functions and Batch",
  { skip, concurrency: true },
  () => {
    for (const fixture of FIXTURES) {
      void it(`${fixture.file}: the deployed run's artifacts equal a local run's`, async () => {
        const file = `test/fixtures/deployed/${fixture.file}.ts`;
        const local = new Runner(file).run(fixture.parameters ?? {});
        const deployed = await new Deployer(file, { aws: setup.aws.target })
          .stepFunctions()
          .create();
        assert.match(deployed.namespace ?? "", /^production:/);
        const triggered = await deployed.trigger(fixture.parameters ?? {});
        const run = await triggered.wait({ pollMs: 200 });
        assert.equal(await triggered.status(), "SUCCEEDED");
        assert.ok(
          run.successful,
          `${run.pathspec} ${run.status}: ${JSON.stringify(run.exception)}`,
        );
        assert.ok(run.systemTags.includes(deployed.namespace!), run.systemTags.join(" "));
        assert.ok(run.systemTags.includes("runtime:step-functions"));
        await fixture.check?.(run);
        assert.deepEqual(await snapshot(run), await snapshot(await local));
        // The run is listed under its production namespace's tag.
        const listed: string[] = [];
        for await (const r of new Flow(run.flowName).runs(deployed.namespace!)) listed.push(r.id);
        assert.deepEqual(listed, [run.id]);
      });
    }

    void it("a failed task fails the execution and the run is recorded as failed, with the task's error", async () => {
      const file = "test/fixtures/deployed/failing.ts";
      const deployed = await new Deployer(file, { aws: setup.aws.target }).stepFunctions().create();
      // A bad or missing parameter fails before any execution starts.
      await assert.rejects(
        deployed.trigger({ threshold: "high" }),
        /Parameter 'threshold' expects a number, got "high"/,
      );
      await assert.rejects(deployed.trigger({}), /Parameter 'threshold' is required/);
      await assert.rejects(deployed.trigger({ threshold: 1, nope: 2 }), /has no parameter 'nope'/);
      assert.deepEqual(await deployed.list(), []);
      const triggered = await deployed.trigger({ threshold: 3 });
      // run() gives the Run as soon as the start task created it, while the execution goes on.
      const early = await triggered.run({ pollMs: 100 });
      assert.equal(early.flowName, "FailingDeployFlow");
      assert.deepEqual(early.parameters, { threshold: 3 });
      const run = await triggered.wait({ pollMs: 200 });
      assert.equal(run.id, early.id);
      assert.equal(await triggered.status(), "FAILED");
      assert.equal(run.status, "failed");
      assert.equal(run.exception?.name, "States.TaskFailed");
      const boom = await (await run.step("boom")).task();
      assert.equal(boom.successful, false);
      assert.match(boom.exception?.message ?? "", /threshold 3 is too high/);
      assert.match(await boom.stderr(), /threshold 3 is too high/);
      // The failed attempt keeps its artifacts (here the one it inherited), as a local run does.
      assert.equal(boom.artifactsFromFailedAttempt, 0);
      assert.equal(await boom.data("seen" as never), 3);
      assert.deepEqual(
        (await deployed.list()).map((r) => r.executionArn),
        [triggered.executionArn],
      );
      assert.equal(await deployed.delete(), true);
      assert.equal(await deployed.delete(), false);
    });

    void it("metaflow task: a retried start task gets the same run, a rerun task the next free attempt, run-failed records the failure", async () => {
      const { loadFlow } = await import("../src/runtime/load-flow.js");
      const { storeDeploymentPlan } = await import("../src/deploy/step-functions/deploy.js");
      const { openBackends } = await import("../src/backends.js");
      const lib = await import("../src/index.js");
      const flow = await loadFlow(
        "test/fixtures/deployed/linear.ts",
        lib as unknown as Record<string, unknown>,
      );
      // What step-functions create stores; the state machine is not needed to run tasks by hand.
      const backends = openBackends();
      const plan = await storeDeploymentPlan(flow, {}, backends).finally(() => backends.close());
      const work = new Project({ prefix: "mf-task-" });
      try {
        const execution =
          "arn:aws:states:us-east-1:123456789012:execution:LinearDeployFlow:by-hand-1";
        const key = "sfn/LinearDeployFlow/by-hand-1/start/sfn.json";
        const start = [
          "task",
          "--plan",
          plan,
          "--new-run-for",
          execution,
          "--parameters",
          '{"alpha":"2"}',
          "--sys-tag",
          "production:by-hand",
          "--step",
          "start",
          "--task-id",
          "sfn",
          "--min-attempt",
          "0",
          "--output-key",
          key,
        ];
        // A bad --output-key, or --new-run-for on another step, is refused before any run exists.
        const refused: Array<[string[], RegExp]> = [
          [
            start.map((a) => (a === key ? "data/ab/0123456789abcdef" : a)),
            /--output-key must be sfn\/<deployment>\/<execution>\/start\/sfn\.json .*got "data\/ab\/0123456789abcdef"/,
          ],
          [
            start.map((a) => (a === "start" ? "a" : a)),
            /--new-run-for creates the run, which only the start task does; step 'a' takes --run-id/,
          ],
        ];
        for (const [argv, message] of refused) {
          const r = await work.cli(
            argv.map((a) => (a === execution ? `${execution}-refused` : a)),
            { env: setup.env() },
          );
          assert.equal(r.code, 2, r.stderr);
          assert.match(r.stderr, message);
        }
        for (let i = 0; i < 2; i++) {
          const r = await work.cli(start, { env: setup.env() });
          assert.equal(r.code, 0, r.stderr);
        }
        const runs: Run[] = [];
        for await (const r of new Flow("LinearDeployFlow").runs("production:by-hand")) runs.push(r);
        assert.equal(runs.length, 1, "one run for one execution");
        const run = runs[0]!;
        assert.deepEqual(run.parameters, { alpha: 2 });
        const task = await (await run.step("start")).task();
        assert.deepEqual(
          task.attempts.map((a) => a.attempt),
          [0, 1],
        );
        assert.equal(await task.data("x" as never), 4);
        const bad = await work.cli(
          [
            "task",
            "--plan",
            plan,
            "--new-run-for",
            `${execution}x`,
            "--parameters",
            '{"alpha":"many"}',
            "--step",
            "start",
            "--task-id",
            "sfn",
          ],
          { env: setup.env() },
        );
        assert.equal(bad.code, 1);
        assert.match(bad.stderr, /Parameter 'alpha' expects a number, got "many"/);
        const failed = await work.cli(
          ["task", "--plan", plan, "--run-failed-for", execution, "--error", "States.Timeout"],
          { env: setup.env() },
        );
        assert.equal(failed.code, 0, failed.stderr);
        assert.match(
          failed.stdout,
          new RegExp(`Run LinearDeployFlow/${run.id} is recorded as failed \\(States.Timeout\\)`),
        );
        const after = await run.refresh();
        assert.equal(after.status, "failed");
        assert.equal(after.exception?.name, "States.Timeout");
        const none = await work.cli(
          [
            "task",
            "--plan",
            plan,
            "--run-failed-for",
            `${execution}-never`,
            "--error",
            "States.TaskFailed",
          ],
          { env: setup.env() },
        );
        assert.match(none.stdout, /before it created a run; nothing to record/);
      } finally {
        work.cleanup();
      }
    });
  },
);
