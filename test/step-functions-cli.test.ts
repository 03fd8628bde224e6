/**
 * `metaflow step-functions create | trigger | list-runs | delete` as a user types them, against the
 * local AWS stand-in, s3rver and the metadata service: `@project` names and production namespaces
 * for user / `--branch` / `--production`, production tokens across creates and users, `@schedule`,
 * `current.projectName` and friends (deployed and in a local `metaflow run --branch`), and clear
 * errors for bad input.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as path from "node:path";
import validator from "asl-validator";
import { Deployer, Flow, namespace, type Run } from "../src/index.js";
import { deployAvailability, startDeployStack, type DeployStack } from "./helpers/deploy-stack.js";
import { Project, REPO, type CliResult } from "./helpers/project.js";

const skip = deployAvailability();
let setup: DeployStack;
let work: Project;
const saved = { ...process.env };

const PROJECT_FLOW = `import { current, FlowSpec, Parameter, project, schedule, step } from "metaflow-ts";

@project({ name: "recsys" })
@schedule({ cron: "0 3 * * *", timezone: "Europe/Amsterdam" })
export default class ProjFlow extends FlowSpec {
  alpha = Parameter("alpha", { default: 1 });
  declare info: unknown[];

  @step start() {
    this.info = [current.projectName, current.branchName, current.isProduction, current.projectFlowName, current.namespace, this.alpha];
    this.next(this.end);
  }

  @step end() {}
}
`;

const BATCH_FLOW = `import { batch, current, FlowSpec, resources, step } from "metaflow-ts";
export default class BatchStepFlow extends FlowSpec {
  declare where: string[];
  @step start() { this.where = [current.taskId]; this.next(this.train); }
  @batch({ cpu: 2 }) @resources({ memory: 8192 })
  @step train() { console.log("training on batch"); this.where = [...this.where, String(process.env.MODE)]; this.next(this.end); }
  @step end() {}
}
`;

/** A @batch step whose job dies (as from the OOM killer) before the task can record its end. */
const KILLED_FLOW = `import { batch, FlowSpec, step } from "metaflow-ts";
export default class KilledBatchFlow extends FlowSpec {
  @step start() { this.next(this.train); }
  @batch({ cpu: 1 })
  @step train() { process.kill(process.pid, "SIGKILL"); this.next(this.end); }
  @step end() {}
}
`;

/** A foreach whose tasks all run on Batch, with one job definition. */
const BATCH_FOREACH_FLOW = `import { batch, FlowSpec, step, type Inputs } from "metaflow-ts";
export default class BatchForeachFlow extends FlowSpec {
  declare items: number[];
  declare square: number;
  declare squares: number[];
  @step start() { this.items = [1, 2, 3, 4]; this.next(this.work, { foreach: "items" }); }
  @batch({ cpu: 1 })
  @step work() { this.square = (this.input as number) ** 2; this.next(this.join); }
  @step join(inputs: Inputs<BatchForeachFlow>) { this.squares = inputs.map((i) => i.square); this.next(this.end); }
  @step end() {}
}
`;

const PLAIN_FLOW = `import { FlowSpec, Parameter, step } from "metaflow-ts";
export default class PlainFlow extends FlowSpec {
  alpha = Parameter("alpha", { default: 0.5 });
  @step start() { this.next(this.end); }
  @step end() {}
}
`;

before(async () => {
  if (skip) return;
  setup = await startDeployStack();
  Object.assign(process.env, setup.env());
  namespace(null);
  work = new Project({ prefix: "mf-sfn-cli-" });
  work.write("proj.ts", PROJECT_FLOW);
  work.write("plain.ts", PLAIN_FLOW);
  work.write("batchstep.ts", BATCH_FLOW);
  work.write("killed.ts", KILLED_FLOW);
  work.write("batchforeach.ts", BATCH_FOREACH_FLOW);
  work.write("badschedule.ts", PROJECT_FLOW.replace('"0 3 * * *"', '"0 3 * * * * *"'));
});

after(async () => {
  process.env = saved;
  work?.cleanup();
  await setup?.stop();
});

function sfn(
  args: readonly string[],
  user = "alice",
  extra: Record<string, string> = {},
): Promise<CliResult> {
  return work.cli(["step-functions", ...args], { env: { ...setup.env(user), ...extra } });
}

function ok(r: CliResult): string {
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}`);
  return r.stdout;
}

function fails(r: CliResult, pattern: RegExp, code = 1): void {
  assert.equal(
    r.code,
    code,
    `expected exit ${code}, got ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`,
  );
  assert.match(r.stderr, pattern);
}

const namespaceOf = (stdout: string): string =>
  /namespace (production:\S+?)[.\s]/.exec(stdout)?.[1] ?? assert.fail(stdout);

void describe("metaflow step-functions", { skip }, () => {
  void it("--only-json prints a valid state machine, job definitions and the schedule, with no settings and no AWS", async () => {
    const unset = Object.fromEntries(Object.keys(setup.env()).map((k) => [k, ""]));
    const r = await work.cli(["step-functions", "create", "proj.ts", "--only-json"], {
      env: { ...unset, METAFLOW_HOME: setup.scratch, METAFLOW_USER: "carol" },
    });
    const doc = JSON.parse(ok(r)) as {
      name: string;
      stateMachine: object;
      jobDefinitions: Array<{ image: string }>;
      schedule: unknown;
    };
    assert.equal(doc.name, "recsys.user.carol.ProjFlow");
    assert.deepEqual(validator(doc.stateMachine as never).errors, []);
    assert.equal(doc.jobDefinitions[0]!.image, "<METAFLOW_BATCH_CONTAINER_IMAGE>");
    assert.deepEqual(doc.schedule, {
      expression: "cron(0 3 * * ? *)",
      timezone: "Europe/Amsterdam",
    });
    // The example the docs point to.
    const example = await work.cli(
      [
        "step-functions",
        "create",
        path.join(REPO, "examples/production.ts"),
        "--only-json",
        "--production",
      ],
      { env: { ...unset, METAFLOW_HOME: setup.scratch } },
    );
    assert.equal((JSON.parse(ok(example)) as { name: string }).name, "demo.prod.ProductionFlow");
  });

  void it("@project: user, --branch and --production deployments, each with its schedule", async () => {
    const user = ok(await sfn(["create", "proj.ts"]));
    assert.match(user, /Deployed ProjFlow as recsys\.user\.alice\.ProjFlow/);
    assert.match(
      ok(await sfn(["create", "proj.ts", "--branch", "feature"])),
      /as recsys\.test\.feature\.ProjFlow/,
    );
    const prod = ok(await sfn(["create", "proj.ts", "--production"]));
    assert.match(prod, /as recsys\.prod\.ProjFlow/);
    assert.match(prod, /\(a new production token\)/);
    for (const name of [
      "recsys.user.alice.ProjFlow",
      "recsys.test.feature.ProjFlow",
      "recsys.prod.ProjFlow",
    ]) {
      assert.ok(setup.aws.stateMachines.has(name), name);
      assert.equal(setup.aws.schedules.get(name)?.ScheduleExpression, "cron(0 3 * * ? *)");
      assert.equal(setup.aws.schedules.get(name)?.ScheduleExpressionTimezone, "Europe/Amsterdam");
    }
    // Every namespace differs: a branch's runs never mix with production's.
    const namespaces = new Set([user, prod].map(namespaceOf));
    assert.equal(namespaces.size, 2);
  });

  void it("production tokens: reused by the same deployer, refused to another user without --authorize", async () => {
    const first = namespaceOf(ok(await sfn(["create", "proj.ts", "--production"])));
    const again = ok(await sfn(["create", "proj.ts", "--production"]));
    assert.equal(namespaceOf(again), first);
    assert.doesNotMatch(again, /new production token/);
    const token = first.slice("production:".length);
    fails(
      await sfn(["create", "proj.ts", "--production"], "bob"),
      /Not authorized to deploy recsys\.prod\.ProjFlow[\s\S]*deployed by alice[\s\S]*--authorize TOKEN/,
    );
    fails(
      await sfn(["create", "proj.ts", "--production", "--authorize", "wrong-token"], "bob"),
      /--authorize wrong-token is not the production token of recsys\.prod\.ProjFlow/,
    );
    // Bob may still deploy his own branch.
    ok(await sfn(["create", "proj.ts", "--branch", "bobs"], "bob"));
    assert.equal(
      namespaceOf(
        ok(await sfn(["create", "proj.ts", "--production", "--authorize", token], "bob")),
      ),
      first,
    );
    // Bob's machine now knows the token: no --authorize needed the next time.
    assert.equal(namespaceOf(ok(await sfn(["create", "proj.ts", "--production"], "bob"))), first);
    const fresh = ok(await sfn(["create", "proj.ts", "--production", "--new-token"]));
    assert.notEqual(namespaceOf(fresh), first);
  });

  void it("trigger runs the production deployment: current.projectName and friends, its namespace, list-runs, delete", async () => {
    const ns = namespaceOf(ok(await sfn(["create", "proj.ts", "--production"])));
    ok(await sfn(["create", "proj.ts", "--branch", "feature"]));
    // --name=value as `metaflow run` takes it.
    const started = ok(await sfn(["trigger", "proj.ts", "--production", "--alpha=2"]));
    assert.match(started, /^Started arn:aws:states:.*:execution:recsys\.prod\.ProjFlow:/);
    await setup.aws.settle();
    const runs: Run[] = [];
    for await (const r of new Flow("ProjFlow").runs(ns)) runs.push(r);
    assert.equal(runs.length, 1);
    const run = runs[0]!;
    assert.ok(run.successful, run.status);
    assert.deepEqual(await run.data("info" as never), [
      "recsys",
      "prod",
      true,
      "recsys.prod.ProjFlow",
      ns,
      2,
    ]);
    for (const tag of [ns, "project:recsys", "project_branch:prod", "user:alice"])
      assert.ok(run.systemTags.includes(tag), tag);
    namespace(ns);
    try {
      assert.equal((await new Flow("ProjFlow").latestSuccessfulRun()).id, run.id);
    } finally {
      namespace(null);
    }
    assert.match(ok(await sfn(["list-runs", "proj.ts", "--production"])), /SUCCEEDED/);
    assert.match(
      ok(await sfn(["list-runs", "proj.ts", "--branch", "feature"])),
      /has no executions yet/,
    );
    assert.match(
      ok(await sfn(["delete", "proj.ts", "--branch", "feature"])),
      /Deleted recsys\.test\.feature\.ProjFlow/,
    );
    assert.equal(setup.aws.stateMachines.has("recsys.test.feature.ProjFlow"), false);
    assert.equal(setup.aws.schedules.has("recsys.test.feature.ProjFlow"), false);
    fails(
      await sfn(["list-runs", "proj.ts", "--branch", "feature"]),
      /recsys\.test\.feature\.ProjFlow is not deployed[\s\S]*step-functions create proj\.ts --branch feature/,
    );
  });

  void it("a local run takes --branch and --production too, and refuses them without @project", async () => {
    const env = setup.env();
    ok(
      await work.cli(["run", "proj.ts", "--branch", "feature", "--run-id-file", "id.txt"], { env }),
    );
    const id = (await import("node:fs")).readFileSync(`${work.dir}/id.txt`, "utf8");
    const run = await new Flow("ProjFlow").run(id);
    assert.deepEqual(await run.data("info" as never), [
      "recsys",
      "test.feature",
      false,
      "recsys.test.feature.ProjFlow",
      "user:alice",
      1,
    ]);
    assert.ok(run.systemTags.includes("project_branch:test.feature"));
    fails(
      await work.cli(["run", "plain.ts", "--production"], { env }),
      /--production needs a flow decorator that names branches, such as @project/,
      2,
    );
    fails(
      await work.cli(["run", "proj.ts", "--branch", "no/slash"], { env }),
      /--branch must be letters, digits, _ or -/,
    );
  });

  void it("bad input gets a clear error that names it, and nothing is deployed", async () => {
    const before = setup.aws.stateMachines.size;
    fails(
      await sfn(["create", "plain.ts", "--branch", "x"]),
      /--branch x needs a flow decorator that names branches, such as @project/,
      2,
    );
    fails(
      await sfn(["create", "proj.ts", "--branch", "x", "--production"]),
      /Give --branch or --production, not both/,
      2,
    );
    fails(
      await sfn(["create", "proj.ts", "--max-workers", "0"]),
      /maxWorkers \(--max-workers\) must be a whole number ≥ 1, got 0/,
      2,
    );
    fails(
      await sfn(["create", "proj.ts", "--only-json", "--max-num-splits", "0"]),
      /maxNumSplits \(--max-num-splits\) must be a whole number ≥ 1, got 0/,
      2,
    );
    fails(
      await sfn(["create", "proj.ts", "--max-workers", "many"]),
      /--max-workers expects a whole number ≥ 1, got "many"/,
      2,
    );
    // The Deployer's options are checked by the same code (0 would compile to unlimited concurrency).
    const plain = path.join(work.dir, "plain.ts");
    await assert.rejects(
      new Deployer(plain, { aws: setup.aws.target }).stepFunctions({ maxWorkers: 0 }).create(),
      /maxWorkers \(--max-workers\) must be a whole number ≥ 1, got 0/,
    );
    await assert.rejects(
      new Deployer(plain, { aws: setup.aws.target }).stepFunctions({ maxNumSplits: 2.5 }).create(),
      /maxNumSplits \(--max-num-splits\) must be a whole number ≥ 1, got 2\.5/,
    );
    fails(
      await sfn(["create", "proj.ts", "--new-token", "--authorize", "t"]),
      /--new-token or --authorize TOKEN, not both/,
      2,
    );
    fails(
      await sfn(["create", "plain.ts", "--authorize", " "]),
      /--authorize needs the production token of PlainFlow \(its deployer has it\), got " "/,
      2,
    );
    fails(
      await sfn(["create", "proj.ts", "--with", "batch:cpu=0"]),
      /@batch\.cpu must be a number > 0, got "0"/,
      2,
    );
    fails(
      await sfn(["create", "plain.ts"], "alice", { METAFLOW_DEFAULT_DATASTORE: "local" }),
      /Deployed flows need the S3 datastore[\s\S]*METAFLOW_DEFAULT_DATASTORE=s3/,
    );
    fails(
      await sfn(["create", "plain.ts"], "alice", { METAFLOW_SFN_IAM_ROLE: "" }),
      /METAFLOW_SFN_IAM_ROLE is not set/,
    );
    fails(
      await sfn(["create", "proj.ts"], "alice", { METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE: "" }),
      /ProjFlow has a @schedule, which needs METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE/,
    );
    fails(await sfn(["create", "badschedule.ts"]), /@schedule .*expected 5 fields/);
    assert.equal(setup.aws.stateMachines.size, before);
    fails(
      await sfn(["trigger", "plain.ts"]),
      /PlainFlow is not deployed[\s\S]*step-functions create plain\.ts/,
    );
    ok(await sfn(["create", "plain.ts"]));
    const executions = setup.aws.executions.size;
    fails(
      await sfn(["trigger", "plain.ts", "--alpha", "abc"]),
      /Parameter 'alpha' expects a number, got "abc"/,
    );
    fails(await sfn(["trigger", "plain.ts", "--nope", "1"]), /The flow has no parameter 'nope'/);
    fails(
      await sfn(["trigger", "plain.ts", "--alpha=abc"]),
      /Parameter 'alpha' expects a number, got "abc"/,
    );
    fails(await sfn(["trigger", "plain.ts", "--alpha"]), /parameter --alpha needs a value/, 2);
    fails(
      await sfn(["trigger", "plain.ts", "alpha=1"]),
      /expected --name value \(or --name=value\) after the flow file, got "alpha=1"/,
      2,
    );
    assert.equal(setup.aws.executions.size, executions);
    fails(await work.cli(["task"], { env: setup.env() }), /metaflow task: --plan is required/, 2);
    fails(
      await work.cli(
        ["task", "--plan", "p", "--run-id", "1", "--step", "s", "--task-id", "t", "--attempt", "x"],
        { env: setup.env() },
      ),
      /--attempt must be a whole number from 0 to 1000, got "x"/,
      2,
    );
    fails(
      await work.cli(
        ["task", "--plan", "deadbeef", "--run-id", "1", "--step", "start", "--task-id", "1"],
        { env: setup.env() },
      ),
      /Cannot read the run plan deadbeef/,
    );
  });
});

void describe("metaflow run with a @batch step", { skip }, () => {
  void it("sends the step's tasks to AWS Batch as metaflow task jobs; the others run here", async () => {
    const submitted = setup.aws.submitted.length;
    const env = { ...setup.env(), MODE: "not-forwarded" };
    const r = await work.cli(
      [
        "run",
        "batchstep.ts",
        "--with",
        'environment:vars={"MODE":"batch"}',
        "--run-id-file",
        "batch-id.txt",
      ],
      { env },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\/train\/\d+ \(batch job job-\d+\)\] Task is starting/);
    // The task's own output, stored by the job, is shown when the job ends.
    assert.match(r.stdout, /\/train\/\d+ \(batch job job-\d+\)\] training on batch/);
    if (process.env.SHOW_OUTPUT) console.log(r.stdout);
    const jobs = setup.aws.submitted.slice(submitted);
    assert.equal(jobs.length, 1, JSON.stringify(jobs));
    const job = jobs[0]!;
    assert.equal(job.queue, "local-queue");
    assert.deepEqual(job.resources, [
      { Type: "VCPU", Value: "2" },
      { Type: "MEMORY", Value: "8192" },
    ]);
    assert.deepEqual(job.command.slice(0, 3), ["metaflow", "task", "--plan"]);
    const id = (await import("node:fs")).readFileSync(`${work.dir}/batch-id.txt`, "utf8");
    const run = await new Flow("BatchStepFlow").run(id);
    assert.ok(run.successful);
    const train = await (await run.step("train")).task();
    assert.deepEqual(((await train.data("where" as never)) as string[]).slice(1), ["batch"]);
    assert.match(await train.stdout(), /training on batch/);
  });

  void it("a foreach's tasks share one job definition: Batch is asked for it once", async () => {
    const calls = (op: string) => setup.aws.batchCalls.get(op) ?? 0;
    const [described, registered, submitted] = [
      calls("describejobdefinitions"),
      calls("registerjobdefinition"),
      calls("submitjob"),
    ];
    const r = await work.cli(["run", "batchforeach.ts", "--run-id-file", "foreach-id.txt"], {
      env: setup.env(),
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(calls("submitjob") - submitted, 4);
    assert.equal(calls("describejobdefinitions") - described, 1);
    assert.equal(calls("registerjobdefinition") - registered, 1);
    const id = (await import("node:fs")).readFileSync(`${work.dir}/foreach-id.txt`, "utf8");
    const run = await new Flow("BatchForeachFlow").run(id);
    assert.deepEqual(await run.data("squares" as never), [1, 4, 9, 16]);
  });

  void it("shows a task's logs while its job runs, not only when it ends", async () => {
    // The step waits until the test has seen its first line on the console: only a launcher that
    // follows the stored logs while the job runs lets it finish.
    const seen = `${work.dir}/tail-seen`;
    work.write(
      "batchtail.ts",
      `import { batch, FlowSpec, step } from "metaflow-ts";
import * as fs from "node:fs";
export default class BatchTailFlow extends FlowSpec {
  @step start() { this.next(this.train); }
  @batch({ cpu: 1 })
  @step async train() {
    console.log("waiting for the console");
    const t0 = Date.now();
    while (!fs.existsSync(${JSON.stringify(seen)})) {
      if (Date.now() - t0 > 30_000) throw new Error("the console never showed the line");
      await new Promise((r) => setTimeout(r, 200));
    }
    this.next(this.end);
  }
  @step end() {}
}
`,
    );
    const child = work.spawn(["run", "batchtail.ts"], setup.env());
    let stdout = "";
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr += t));
    child.stdout.setEncoding("utf8").on("data", (t: string) => {
      stdout += t;
      if (/\(batch job job-\d+\)\] waiting for the console/.test(stdout))
        work.write("tail-seen", "");
    });
    const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
    assert.equal(code, 0, stdout + stderr);
  });

  void it("a job that dies before its task records the end ends as a failed attempt in the metadata", async () => {
    const r = await work.cli(["run", "killed.ts", "--run-id-file", "killed-id.txt"], {
      env: setup.env(),
    });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      /AWS Batch job job-\d+ ended FAILED \(killed by SIGKILL\) before the task recorded how it ended/,
    );
    const id = (await import("node:fs")).readFileSync(`${work.dir}/killed-id.txt`, "utf8");
    const run = await new Flow("KilledBatchFlow").run(id);
    assert.equal(run.status, "failed");
    const train = await (await run.step("train")).task();
    assert.equal(train.successful, false);
    assert.equal(train.finished, true);
    assert.deepEqual(
      train.attempts.map((a) => a.attempt),
      [0],
    );
    assert.equal(train.exception?.name, "BatchJobError");
    assert.match(train.exception?.message ?? "", /killed by SIGKILL/);
  });

  void it("refuses a local datastore before any run is recorded, saying what a Batch job needs", async () => {
    const local = new Project({ prefix: "mf-batch-local-" });
    try {
      // Its own class name, so "no run" is read from the metadata service the other tests share.
      local.write("batchstep.ts", BATCH_FLOW.replace("BatchStepFlow", "LocalBatchFlow"));
      const submitted = setup.aws.submitted.length;
      const r = await local.cli(["run", "batchstep.ts"], {
        env: { ...setup.env(), METAFLOW_DEFAULT_DATASTORE: "local" },
      });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /@batch steps need the S3 datastore/);
      assert.match(
        r.stderr,
        /step 'train' has @batch, and a Batch job reaches only the S3 datastore and the metadata service/,
      );
      assert.match(r.stderr, /Set METAFLOW_DEFAULT_DATASTORE=s3 and METAFLOW_DATASTORE_SYSROOT_S3/);
      assert.doesNotMatch(r.stdout, /Workflow starting/);
      assert.equal(setup.aws.submitted.length, submitted);
      await assert.rejects(new Flow("LocalBatchFlow").latestRun(), /LocalBatchFlow/);
      // Local metadata is refused the same way, naming the setting.
      const md = await local.cli(["run", "batchstep.ts"], {
        env: { ...setup.env(), METAFLOW_DEFAULT_METADATA: "local" },
      });
      assert.equal(md.code, 1, md.stdout + md.stderr);
      assert.match(
        md.stderr,
        /@batch steps need the metadata service[\s\S]*METAFLOW_DEFAULT_METADATA=service/,
      );
      assert.doesNotMatch(md.stdout, /Workflow starting/);
    } finally {
      local.cleanup();
    }
  });

  void it("refuses a @batch step with no queue before any run is recorded", async () => {
    const r = await work.cli(["run", "batchstep.ts"], {
      env: { ...setup.env(), METAFLOW_BATCH_JOB_QUEUE: "" },
    });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      /METAFLOW_BATCH_JOB_QUEUE is not set[\s\S]*step 'train' has @batch[\s\S]*or give the step @batch\(\{ queue \}\)/,
    );
    assert.doesNotMatch(r.stdout, /Workflow starting/);
  });
});
