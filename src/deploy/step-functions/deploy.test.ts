import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import validator from "asl-validator";
import * as library from "../../index.js";
import { loadFlow } from "../../runtime/load-flow.js";
import { DeployError } from "../errors.js";
import { readKnownToken } from "../project.js";
import { deploySettings, prepareDeployment, rememberToken } from "./deploy.js";

const env = (home: string) => ({
  METAFLOW_DATASTORE_SYSROOT_S3: "s3://team-bucket/metaflow",
  METAFLOW_SERVICE_URL: "https://metaflow.example.com",
  METAFLOW_BATCH_JOB_QUEUE: "jobs",
  METAFLOW_BATCH_CONTAINER_IMAGE: "example/metaflow-ts:1",
  METAFLOW_USER: "alice",
  METAFLOW_HOME: home,
});

void describe("preparing a deployment from a flow file", () => {
  void it("compiles the examples (foreach, branch, switch with recursion) to valid state machines", async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "mf-deploy-"));
    try {
      const settings = deploySettings(env(home));
      for (const file of [
        "examples/foreach.ts",
        "examples/branch.ts",
        "examples/switch.ts",
        "examples/movies.ts",
      ]) {
        const flow = await loadFlow(file, library as unknown as Record<string, unknown>);
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
        const job = prepared.stateMachine.jobDefinitions[0]!;
        assert.equal(job.image, "example/metaflow-ts:1");
        assert.deepEqual(job.environment, {
          METAFLOW_DEFAULT_DATASTORE: "s3",
          METAFLOW_DATASTORE_SYSROOT_S3: "s3://team-bucket/metaflow",
          METAFLOW_DEFAULT_METADATA: "service",
          METAFLOW_SERVICE_URL: "https://metaflow.example.com",
          METAFLOW_USER: "alice",
        });
      }
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  void it("keeps the production token across creates, and needs @project for --branch", async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "mf-deploy-"));
    try {
      const settings = deploySettings(env(home));
      const flow = await loadFlow(
        "examples/foreach.ts",
        library as unknown as Record<string, unknown>,
      );
      const first = prepareDeployment(flow, {}, settings, "h", undefined);
      rememberToken(settings, first);
      assert.equal(readKnownToken(home, "ForeachFlow"), first.token.token);
      const second = prepareDeployment(flow, {}, settings, "h", first.token.record);
      assert.equal(second.namespace, first.namespace);
      assert.equal(second.token.generated, false);
      const bob = deploySettings({
        ...env(fs.mkdtempSync(path.join(os.tmpdir(), "mf-bob-"))),
        METAFLOW_USER: "bob",
      });
      assert.throws(
        () => prepareDeployment(flow, {}, bob, "h", first.token.record),
        /deployed by alice/,
      );
      assert.throws(
        () => prepareDeployment(flow, { branch: "x" }, settings, "h", undefined),
        /--branch and --production need @project/,
      );
      const project = prepareDeployment(
        flow,
        { project: { name: "demo" }, production: true, schedule: { daily: true } },
        settings,
        "h",
        undefined,
      );
      assert.equal(project.name, "demo.prod.ForeachFlow");
      assert.deepEqual(project.schedule, { expression: "cron(0 0 * * ? *)", timezone: "UTC" });
      assert.match(
        JSON.stringify(project.stateMachine.definition),
        /'--project', 'demo', '--branch', 'prod', '--production'/,
      );
      assert.match(
        JSON.stringify(project.stateMachine.definition),
        /'--sys-tag', 'project:demo', '--sys-tag', 'project_branch:prod'/,
      );
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  void it("names the missing setting", () => {
    assert.throws(
      () => deploySettings({}),
      (e: unknown) => e instanceof DeployError && /METAFLOW_DATASTORE_SYSROOT_S3/.test(e.message),
    );
    const partial = { ...env("/tmp"), METAFLOW_BATCH_JOB_QUEUE: "" };
    assert.throws(
      () => deploySettings(partial),
      /needs METAFLOW_BATCH_JOB_QUEUE: the AWS Batch job queue/,
    );
  });
});
