/**
 * Deployment settings (`METAFLOW_BATCH_*`, `METAFLOW_SFN_*` and the IAM roles), named as Metaflow
 * names them: where `step-functions create` puts the tasks (AWS Batch queue and image), the roles
 * the tasks, the state machine and the schedules act as, and how tasks get the service token.
 */
import type { Resolve, Setting } from "./setting.js";

/** The effective deployment settings; every one is optional until a command needs it. */
export interface DeploySettings {
  /** `METAFLOW_BATCH_JOB_QUEUE`: the AWS Batch job queue (name or ARN) tasks run in. */
  readonly batchQueue: Setting<string | undefined>;
  /** `METAFLOW_BATCH_CONTAINER_IMAGE`: an image with Node.js 20 and metaflow-ts, `metaflow` on the PATH. */
  readonly batchImage: Setting<string | undefined>;
  /** `METAFLOW_ECS_S3_ACCESS_IAM_ROLE`: the role the tasks' containers run as (S3 read/write). */
  readonly batchJobRole: Setting<string | undefined>;
  /** `METAFLOW_ECS_FARGATE_EXECUTION_ROLE`: the ECS execution role (private images, Fargate, secrets). */
  readonly batchExecutionRole: Setting<string | undefined>;
  /**
   * `METAFLOW_BATCH_SERVICE_TOKEN_ARN`: ARN of a Secrets Manager secret (or SSM parameter) holding
   * the metadata service token; tasks then get it as a Batch secret instead of a plain variable.
   */
  readonly batchServiceTokenArn: Setting<string | undefined>;
  /** `METAFLOW_SFN_IAM_ROLE`: the role Step Functions runs state machines as. */
  readonly sfnRole: Setting<string | undefined>;
  /** `METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE`: the role EventBridge Scheduler starts executions as. */
  readonly schedulerRole: Setting<string | undefined>;
}

/** Names of the deployment settings, for the config file's list of known keys. */
export const DEPLOY_SETTING_KEYS: readonly string[] = [
  "METAFLOW_BATCH_JOB_QUEUE",
  "METAFLOW_BATCH_CONTAINER_IMAGE",
  "METAFLOW_ECS_S3_ACCESS_IAM_ROLE",
  "METAFLOW_ECS_FARGATE_EXECUTION_ROLE",
  "METAFLOW_BATCH_SERVICE_TOKEN_ARN",
  "METAFLOW_SFN_IAM_ROLE",
  "METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE",
];

/** How `loadConfig` resolves one setting: environment over file over `fallback`, parsed by `parse`. */

/** Resolves every deployment setting with `loadConfig`'s precedence rules. */
export function resolveDeploySettings(resolve: Resolve): DeploySettings {
  const opt = (key: string, parse: (raw: string) => string) =>
    resolve<string | undefined>(key, parse, undefined);
  return {
    batchQueue: opt("METAFLOW_BATCH_JOB_QUEUE", plainText),
    batchImage: opt("METAFLOW_BATCH_CONTAINER_IMAGE", plainText),
    batchJobRole: opt("METAFLOW_ECS_S3_ACCESS_IAM_ROLE", arn("iam")),
    batchExecutionRole: opt("METAFLOW_ECS_FARGATE_EXECUTION_ROLE", arn("iam")),
    batchServiceTokenArn: opt("METAFLOW_BATCH_SERVICE_TOKEN_ARN", arn("secretsmanager or ssm")),
    sfnRole: opt("METAFLOW_SFN_IAM_ROLE", arn("iam")),
    schedulerRole: opt("METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE", arn("iam")),
  };
}

function plainText(raw: string): string {
  const v = raw.trim();
  if (v === "" || /\s/.test(v))
    throw new Error(`must be a name without spaces, got ${JSON.stringify(raw)}.`);
  return v;
}

/** An ARN of one of the named services (`iam`, ...): `arn:<partition>:<service>:...`. */
function arn(services: string): (raw: string) => string {
  return (raw) => {
    const v = raw.trim();
    const service = /^arn:aws[a-z-]*:([a-z0-9-]+):/.exec(v)?.[1];
    if (!service || !services.split(" or ").includes(service)) {
      throw new Error(
        `must be an ${services} ARN such as arn:aws:${services.split(" ")[0]}::123456789012:..., got ${JSON.stringify(raw)}.`,
      );
    }
    return v;
  };
}
