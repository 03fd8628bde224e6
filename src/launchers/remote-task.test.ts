/**
 * What a remote task is told: the same settings for a Slurm node and a Batch container, except what
 * belongs to this machine (credentials, the S3 cache directory), which a container does not get.
 */
import assert from "node:assert/strict";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { loadConfig } from "../config/index.js";
import { containerSettings } from "./batch-jobs.js";
import { remoteTaskEnvironment } from "./remote-task.js";

const ENV = {
  METAFLOW_HOME: path.join(os.tmpdir(), "mf-remote-task-none"),
  METAFLOW_USER: "ann",
  METAFLOW_DEFAULT_DATASTORE: "s3",
  METAFLOW_DATASTORE_SYSROOT_S3: "s3://bucket/mf",
  METAFLOW_DATATOOLS_S3ROOT: "s3://bucket/data",
  METAFLOW_S3_RETRY_COUNT: "9",
  METAFLOW_S3_WORKER_COUNT: "16",
  METAFLOW_S3_CACHE_DIR: "/home/ann/.s3cache",
  METAFLOW_AWS_PROFILE: "dev",
  METAFLOW_DEFAULT_METADATA: "service",
  METAFLOW_SERVICE_URL: "http://md.example:8080",
  METAFLOW_SERVICE_AUTH_TOKEN: "tok-123456789",
};

void describe("the environment of a remote task", () => {
  const config = loadConfig(ENV as NodeJS.ProcessEnv);

  void it("gives a Batch container the S3 settings a Slurm job gets, but not this machine's profile or cache", () => {
    const { environment, secrets } = containerSettings(config, {
      datastoreRoot: "s3://bucket/mf",
      serviceUrl: "http://md.example:8080",
    });
    assert.deepEqual(environment, {
      METAFLOW_DEFAULT_DATASTORE: "s3",
      METAFLOW_DATASTORE_SYSROOT_S3: "s3://bucket/mf",
      METAFLOW_DATATOOLS_S3ROOT: "s3://bucket/data",
      METAFLOW_S3_RETRY_COUNT: "9",
      METAFLOW_S3_WORKER_COUNT: "16",
      METAFLOW_DEFAULT_METADATA: "service",
      METAFLOW_SERVICE_URL: "http://md.example:8080",
      METAFLOW_SERVICE_AUTH_TOKEN: "tok-123456789",
      METAFLOW_USER: "ann",
    });
    assert.deepEqual(secrets, {});
  });

  void it("swaps the token for its secret when one is configured, and masks it for printing", () => {
    const arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mf-token";
    const withArn = loadConfig({
      ...ENV,
      METAFLOW_BATCH_SERVICE_TOKEN_ARN: arn,
    } as NodeJS.ProcessEnv);
    const values = { datastoreRoot: "s3://bucket/mf", serviceUrl: "http://md.example:8080" };
    const secret = containerSettings(withArn, values);
    assert.equal(secret.environment.METAFLOW_SERVICE_AUTH_TOKEN, undefined);
    assert.deepEqual(secret.secrets, { METAFLOW_SERVICE_AUTH_TOKEN: arn });
    const masked = containerSettings(config, { ...values, maskToken: true });
    assert.doesNotMatch(masked.environment.METAFLOW_SERVICE_AUTH_TOKEN ?? "", /tok-123456789/);
  });

  void it("gives a job on a shared machine the same settings, with the profile and the cache", () => {
    const shared = remoteTaskEnvironment(config, {
      kind: "shared",
      storage: { root: "s3://bucket/mf" } as never,
    });
    const container = remoteTaskEnvironment(config, {
      kind: "container",
      datastoreRoot: "s3://bucket/mf",
      serviceUrl: "http://md.example:8080",
      token: "reveal",
    });
    assert.deepEqual(shared, {
      ...container,
      METAFLOW_S3_CACHE_DIR: "/home/ann/.s3cache",
      METAFLOW_AWS_PROFILE: "dev",
    });
  });
});
