/**
 * The deployed state machine actually runs: each fixture flow is deployed with the `Deployer` to a
 * local AWS stand-in (Step Functions executed by aws-local-stepfunctions, each Batch job a real
 * `metaflow task` process with the job definition's environment) against s3rver and the metadata
 * service, and its run, read through the client, must equal a local run of the same flow.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { Deployer, Flow, namespace, Runner, type Run } from "../src/index.js";
import { LocalAws } from "./helpers/local-aws.js";
import { remoteAvailability, startRemoteStack, type RemoteStack } from "./helpers/remote.js";
import { S3RVER_CREDENTIALS } from "./helpers/s3server.js";

const skip = (() => {
  const a = remoteAvailability();
  return a.s3 ?? a.postgres;
})();

let stack: RemoteStack;
let aws: LocalAws;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "mf-sfn-test-"));
const saved = { ...process.env };

/** Everything a deployer's shell would have: S3 + the service, the deploy settings, AWS endpoints. */
export function deployEnv(user = "alice", home = path.join(scratch, `home-${user}`)): Record<string, string> {
  fs.mkdirSync(home, { recursive: true });
  return {
    ...stack.env({ prefix: "sfn", cacheDir: path.join(scratch, `cache-${user}`), metadata: "service" }),
    ...aws.env(),
    METAFLOW_BATCH_JOB_QUEUE: "local-queue",
    METAFLOW_BATCH_CONTAINER_IMAGE: "local/metaflow-ts:test",
    METAFLOW_SFN_IAM_ROLE: "arn:aws:iam::123456789012:role/sfn",
    METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE: "arn:aws:iam::123456789012:role/scheduler",
    METAFLOW_USER: user,
    METAFLOW_HOME: home,
  };
}

before(async () => {
  if (skip) return;
  stack = await startRemoteStack();
  aws = await LocalAws.start({
    jobEnv: {
      // What the job's IAM role gives a container: access to the bucket.
      AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      METAFLOW_S3_CACHE_DIR: path.join(scratch, "job-cache"),
    },
    s3: { endpoint: stack.s3.endpoint, ...S3RVER_CREDENTIALS },
  });
  Object.assign(process.env, deployEnv());
  namespace(null);
});

after(async () => {
  process.env = saved;
  await aws?.close();
  await stack?.stop();
  fs.rmSync(scratch, { recursive: true, force: true });
});

/** A task's artifacts as comparable text: values, with the parts of an error that name files dropped. */
async function snapshot(run: Run): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for await (const step of run.steps()) {
    const rows: string[] = [];
    for await (const task of step.tasks()) {
      const values: Record<string, unknown> = {};
      for (const a of await task.artifacts()) values[a.name] = await task.data(a.name as never);
      rows.push(JSON.stringify(values, (k, v: unknown) => (k === "stack" || k === "location" ? undefined : v), 0));
    }
    out[step.name] = rows.sort();
  }
  return out;
}

const FIXTURES: ReadonlyArray<{ file: string; parameters?: Record<string, unknown>; check?: (run: Run) => Promise<void> }> = [
  { file: "linear", parameters: { alpha: 0.25 }, check: async (r) => assert.equal(await r.data("y" as never), 1.5) },
  { file: "branch", check: async (r) => assert.equal(await r.data("total" as never), 11 + 36) },
  { file: "foreach", parameters: { size: 4 }, check: async (r) => assert.deepEqual(await r.data("squares" as never), [1, 4, 9, 16]) },
  { file: "nested", check: async (r) => assert.deepEqual(await r.data("all" as never), ["a1@0.0", "a2@0.1", "a3@0.2", "b1@1.0"]) },
  { file: "switch", parameters: { level: "high" }, check: async (r) => assert.deepEqual([await r.data("path" as never), await r.data("rounds" as never)], ["high", 3]) },
  { file: "catch", check: async (r) => assert.equal(await r.data("verdict" as never), "caught RangeError") },
  {
    file: "retry",
    check: async (r) => {
      assert.equal(await r.data("attempts" as never), 2);
      const flaky = await (await r.step("flaky")).task();
      assert.equal(flaky.retryCount, 1);
    },
  },
];

void describe("deployed flows run on the local Step Functions and Batch", { skip, concurrency: true }, () => {
  for (const fixture of FIXTURES) {
    void it(`${fixture.file}: the deployed run's artifacts equal a local run's`, async () => {
      const file = `test/fixtures/deployed/${fixture.file}.ts`;
      const local = new Runner(file).run(fixture.parameters ?? {});
      const deployed = await new Deployer(file, { aws: aws.target }).stepFunctions().create();
      assert.match(deployed.namespace ?? "", /^production:/);
      const triggered = await deployed.trigger(fixture.parameters ?? {});
      const run = await triggered.wait({ pollMs: 200 });
      assert.equal(await triggered.status(), "SUCCEEDED");
      assert.ok(run.successful, `${run.pathspec} ${run.status}: ${JSON.stringify(run.exception)}`);
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
});
