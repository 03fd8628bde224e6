/**
 * What the deployment tests run against: s3rver + PostgreSQL + the metadata service (remote.ts),
 * the local AWS stand-in (local-aws.ts), and the environment of a deployer's shell.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalAws } from "./local-aws.js";
import { remoteAvailability, startRemoteStack, type RemoteStack } from "./remote.js";
import { S3RVER_CREDENTIALS } from "./s3server.js";

/** Why the deployment tests cannot run here (undefined when they can); throws in CI. */
export function deployAvailability(): string | undefined {
  const a = remoteAvailability();
  return a.s3 ?? a.postgres;
}

/** A running setup. */
export interface DeployStack {
  readonly stack: RemoteStack;
  readonly aws: LocalAws;
  /** A temp directory removed by `stop()`. */
  readonly scratch: string;
  /** Everything a deployer's shell has: S3 + the service, the deploy settings, the AWS endpoints; a home per user. */
  env(user?: string): Record<string, string>;
  stop(): Promise<void>;
}

/** Starts the services and the AWS stand-in. */
export async function startDeployStack(): Promise<DeployStack> {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "mf-deploy-"));
  const stack = await startRemoteStack();
  let aws: LocalAws;
  try {
    aws = await LocalAws.start({
      jobEnv: {
        // What the job's IAM role gives a container: access to the bucket.
        AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
        METAFLOW_S3_CACHE_DIR: path.join(scratch, "job-cache"),
      },
      s3: { endpoint: stack.s3.endpoint, ...S3RVER_CREDENTIALS },
    });
  } catch (err) {
    await stack.stop();
    throw err;
  }
  return {
    stack,
    aws,
    scratch,
    env(user = "alice") {
      const home = path.join(scratch, `home-${user}`);
      fs.mkdirSync(home, { recursive: true });
      return {
        ...stack.env({
          prefix: "sfn",
          cacheDir: path.join(scratch, `cache-${user}`),
          metadata: "service",
        }),
        ...aws.env(),
        METAFLOW_BATCH_JOB_QUEUE: "local-queue",
        METAFLOW_BATCH_CONTAINER_IMAGE: "local/metaflow-ts:test",
        METAFLOW_SFN_IAM_ROLE: "arn:aws:iam::123456789012:role/sfn",
        METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE: "arn:aws:iam::123456789012:role/scheduler",
        METAFLOW_USER: user,
        METAFLOW_HOME: home,
      };
    },
    async stop() {
      await aws.close();
      await stack.stop();
      fs.rmSync(scratch, { recursive: true, force: true });
    },
  };
}
