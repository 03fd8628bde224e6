import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import validator from "asl-validator";
import * as library from "../../index.js";
import { loadFlow } from "../../runtime/load-flow.js";
import { DeployError } from "../errors.js";
import { readKnownToken } from "../project.js";
import { deploySettings, prepareDeployment, rememberToken } from "./deploy.js";

const env = (home: string): Record<string, string> => ({
  METAFLOW_DEFAULT_DATASTORE: "s3",
  METAFLOW_DATASTORE_SYSROOT_S3: "s3://team-bucket/metaflow",
  METAFLOW_DEFAULT_METADATA: "service",
  METAFLOW_SERVICE_URL: "https://metaflow.example.com",
  METAFLOW_SERVICE_AUTH_TOKEN: "s3cret-token",
  METAFLOW_BATCH_JOB_QUEUE: "jobs",
  METAFLOW_BATCH_CONTAINER_IMAGE: "example/metaflow-ts:1",
  METAFLOW_USER: "alice",
  METAFLOW_HOME: home,
});

const lib = library as unknown as Record<string, unknown>;
const temp: string[] = [];
const tempDir = (prefix: string): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  temp.push(dir);
  return dir;
};
after(() => {
  for (const d of temp) fs.rmSync(d, { recursive: true, force: true });
});

void describe("preparing a deployment from a flow file", () => {
  void it("takes each step's plan from every decorator's plan hook: a user decorator's retries reach the state machine", async () => {
    const dir = tempDir("mf-deploy-user-deco-");
    const file = path.join(dir, "flaky.ts");
    fs.writeFileSync(
      file,
      `import { FlowSpec, step, stepDecorator } from "metaflow-ts";
export const flaky = stepDecorator<{ times?: number }>({ name: "flaky", plan(o, plan) { plan.retries = Number(o.times ?? 2); plan.retryDelayMs = 5000; } });
export default class FlakyDeploy extends FlowSpec {
  @flaky({ times: 4 }) @step start() { this.next(this.end); }
  @step end() {}
}`,
    );
    const flow = await loadFlow(file, lib);
    const prepared = prepareDeployment(flow, {}, deploySettings(env(tempDir("mf-deploy-"))), "hash2", undefined);
    const text = JSON.stringify(prepared.stateMachine.definition);
    assert.match(text, /"IntervalSeconds":5,"MaxAttempts":4/);
  });

  void it("compiles the examples (foreach, branch, switch with recursion) to valid state machines", async () => {
    const settings = deploySettings(env(tempDir("mf-deploy-")));
    for (const file of [
      "examples/foreach.ts",
      "examples/branch.ts",
      "examples/switch.ts",
      "examples/movies.ts",
    ]) {
      const flow = await loadFlow(file, lib);
      const prepared = prepareDeployment(flow, { with: ["retry"] }, settings, "hash1", undefined);
      assert.equal(prepared.name, flow.className);
      const result = validator(prepared.stateMachine.definition as never);
      assert.deepEqual(result.errors, [], file);
      assert.match(
        prepared.namespace,
        new RegExp(`^production:${flow.className.toLowerCase()}-[a-z0-9]{12}$`),
      );
      // --with retry reached every task state: Metaflow's default of 3 retries, 2 minutes apart.
      const text = JSON.stringify(prepared.stateMachine.definition);
      assert.match(text, /"IntervalSeconds":120,"MaxAttempts":3/);
      assert.match(text, /'--plan', 'hash1'/);
      const job = prepared.stateMachine.jobDefinitions[0]!;
      assert.equal(job.image, "example/metaflow-ts:1");
      assert.deepEqual(job.environment, {
        METAFLOW_DEFAULT_DATASTORE: "s3",
        METAFLOW_DATASTORE_SYSROOT_S3: "s3://team-bucket/metaflow",
        METAFLOW_DEFAULT_METADATA: "service",
        METAFLOW_SERVICE_AUTH_TOKEN: "s3cret-token",
        METAFLOW_SERVICE_URL: "https://metaflow.example.com",
        METAFLOW_USER: "alice",
      });
    }
  });

  void it("keeps the production token across creates; @project and @schedule come from the flow decorators", async () => {
    const home = tempDir("mf-deploy-");
    const settings = deploySettings(env(home));
    const flow = await loadFlow("examples/foreach.ts", lib);
    const first = prepareDeployment(flow, {}, settings, "h", undefined);
    rememberToken(settings, first);
    assert.equal(readKnownToken(home, "ForeachFlow"), first.token.token);
    const second = prepareDeployment(flow, {}, settings, "h", first.token.record);
    assert.equal(second.namespace, first.namespace);
    assert.equal(second.token.generated, false);
    const bob = deploySettings({ ...env(tempDir("mf-bob-")), METAFLOW_USER: "bob" });
    assert.throws(
      () => prepareDeployment(flow, {}, bob, "h", first.token.record),
      /deployed by alice/,
    );
    assert.throws(
      () => prepareDeployment(flow, { branch: "x" }, settings, "h", undefined),
      /--branch x needs a flow decorator that names branches, such as @project/,
    );

    const dir = tempDir("mf-project-");
    const file = path.join(dir, "demo.ts");
    fs.writeFileSync(
      file,
      `import { FlowSpec, step, project, schedule } from "metaflow-ts";
@project({ name: "demo" })
@schedule({ cron: "0 3 * * 1-5", timezone: "Europe/Amsterdam" })
export default class DemoFlow extends FlowSpec {
  @step start() { this.next(this.end); }
  @step end() {}
}
`,
    );
    const demo = await loadFlow(file, lib);
    const prod = prepareDeployment(demo, { production: true }, settings, "h", undefined);
    assert.equal(prod.name, "demo.prod.DemoFlow");
    assert.deepEqual(prod.schedule, {
      expression: "cron(0 3 ? * 2-6 *)",
      timezone: "Europe/Amsterdam",
    });
    assert.match(
      JSON.stringify(prod.stateMachine.definition),
      /'--sys-tag', 'project:demo', '--sys-tag', 'project_branch:prod'/,
    );
    assert.equal(
      prepareDeployment(demo, { branch: "new_model" }, settings, "h", undefined).name,
      "demo.test.new_model.DemoFlow",
    );
    assert.equal(
      prepareDeployment(demo, {}, settings, "h", undefined).name,
      "demo.user.alice.DemoFlow",
    );
    assert.throws(
      () => prepareDeployment(demo, { branch: "a b" }, settings, "h", undefined),
      /--branch must be letters, digits, _ or -/,
    );
  });

  void it("names the missing setting, and refuses a local datastore or local metadata", () => {
    const home = tempDir("mf-deploy-");
    assert.throws(
      () => deploySettings({ METAFLOW_HOME: home }),
      (e: unknown) =>
        e instanceof DeployError &&
        /METAFLOW_DEFAULT_DATASTORE=s3/.test(e.message) &&
        /local/.test(e.message),
    );
    assert.throws(
      () => deploySettings({ ...env(home), METAFLOW_DEFAULT_METADATA: "local" }),
      /deployed tasks record to the metadata service/,
    );
    assert.throws(
      () => deploySettings({ ...env(home), METAFLOW_BATCH_JOB_QUEUE: "" }),
      /needs METAFLOW_BATCH_JOB_QUEUE: the AWS Batch job queue/,
    );
    assert.throws(
      () => deploySettings({ ...env(home), METAFLOW_SFN_IAM_ROLE: "my-role" }),
      /METAFLOW_SFN_IAM_ROLE .* must be an iam ARN/,
    );
    // --only-json prints placeholders for what is missing, and never the service token.
    const shown = deploySettings(
      { METAFLOW_HOME: home, METAFLOW_SERVICE_AUTH_TOKEN: "s3cret-token" },
      { placeholders: true },
    );
    assert.equal(shown.batch.queue, "<METAFLOW_BATCH_JOB_QUEUE>");
    assert.doesNotMatch(JSON.stringify(shown), /s3cret-token/);
  });

  void it("reads the deploy settings from the config file too", () => {
    const home = tempDir("mf-deploy-");
    fs.writeFileSync(
      path.join(home, "config.json"),
      JSON.stringify({
        METAFLOW_BATCH_JOB_QUEUE: "from-file",
        METAFLOW_SFN_IAM_ROLE: "arn:aws:iam::123456789012:role/sfn",
        METAFLOW_BATCH_SERVICE_TOKEN_ARN:
          "arn:aws:secretsmanager:us-east-1:123456789012:secret:mf-token",
      }),
    );
    const { METAFLOW_BATCH_JOB_QUEUE: _queue, ...rest } = env(home);
    const settings = deploySettings(rest);
    assert.equal(settings.batch.queue, "from-file");
    assert.equal(settings.sfnRole, "arn:aws:iam::123456789012:role/sfn");
    // With a secret, the token reaches tasks as a Batch secret, not as a plain variable.
    assert.equal(settings.environment.METAFLOW_SERVICE_AUTH_TOKEN, undefined);
    assert.deepEqual(settings.secrets, {
      METAFLOW_SERVICE_AUTH_TOKEN: "arn:aws:secretsmanager:us-east-1:123456789012:secret:mf-token",
    });
  });
});
