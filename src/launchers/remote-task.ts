/**
 * What every remote launcher (a Slurm job, an AWS Batch job) gives the `metaflow task` it starts:
 * the environment that points the task at the run's datastore and metadata, and the task's command
 * line, built with `task/command.ts`'s formatter from the attempt the scheduler planned.
 */
import type { MetaflowConfig } from "../config/index.js";
import { findDatastoreRoot, LocalStorage } from "../datastore/local.js";
import type { StorageBackend } from "../datastore/types.js";
import { formatTaskCommand, type TaskCommand } from "../task/command.js";
import type { TaskSpec } from "../task/protocol.js";

/** Where a remote task runs, as far as its environment is concerned. */
export type RemoteTaskHost =
  | {
      /**
       * A machine that shares this one's filesystem and user (a Slurm compute node): a local
       * datastore's root, the S3 credentials and the S3 cache directory go along.
       */
      readonly kind: "shared";
      /** The run's datastore as this process opened it. */
      readonly storage: StorageBackend;
    }
  | {
      /**
       * A container with its own IAM role and disk (an AWS Batch job): the S3 datastore and the
       * metadata service only; no credentials or paths of this machine.
       */
      readonly kind: "container";
      readonly datastoreRoot: string;
      readonly serviceUrl: string;
      /**
       * The metadata service token: as a variable, masked (a definition that is only printed), or
       * left out (the container reads it from a secret).
       */
      readonly token: "reveal" | "mask" | "omit";
    };

/**
 * The settings a remote task needs to open the run's datastore and metadata, as environment
 * variables: the effective values (from the environment or the config file) — settings left at
 * their defaults are not passed, so the task's own defaults apply — with a local datastore's root
 * made explicit, so a job finds it whatever its working directory, `HOME` or `--export` policy.
 */
export function remoteTaskEnvironment(
  config: MetaflowConfig,
  host: RemoteTaskHost,
): Record<string, string> {
  const c = config;
  const container = host.kind === "container";
  const env: Record<string, string> = {
    METAFLOW_DEFAULT_DATASTORE: container ? "s3" : c.datastore.value,
    METAFLOW_DEFAULT_METADATA: container ? "service" : c.metadata.value,
    METAFLOW_USER: c.user.value,
  };
  const set = (key: string, v: { toString(): string } | undefined, source: string) => {
    if (v !== undefined && source !== "default") env[key] = v.toString();
  };
  let local: string | undefined;
  if (host.kind === "shared") {
    local = host.storage instanceof LocalStorage ? host.storage.root : undefined;
    if (local) env.METAFLOW_DATASTORE_SYSROOT_LOCAL = local;
    // Local metadata with data on S3 lives in the nearest .metaflow of this machine.
    else if (c.metadata.value === "local")
      env.METAFLOW_DATASTORE_SYSROOT_LOCAL = c.localRoot.value ?? findDatastoreRoot(process.cwd());
  }
  if (!local) {
    if (host.kind === "container") env.METAFLOW_DATASTORE_SYSROOT_S3 = host.datastoreRoot;
    else set("METAFLOW_DATASTORE_SYSROOT_S3", c.s3Root.value, c.s3Root.source);
    set("METAFLOW_DATATOOLS_S3ROOT", c.datatoolsS3Root.value, c.datatoolsS3Root.source);
    set("METAFLOW_S3_ENDPOINT_URL", c.s3Endpoint.value, c.s3Endpoint.source);
    set("METAFLOW_S3_REGION", c.s3Region.value, c.s3Region.source);
    set("METAFLOW_S3_RETRY_COUNT", c.s3RetryCount.value, c.s3RetryCount.source);
    set("METAFLOW_S3_WORKER_COUNT", c.s3WorkerCount.value, c.s3WorkerCount.source);
    if (!container) {
      // A container has its own disk and its role's credentials: this machine's would be wrong there
      // (a profile it has no file for, keys that would be stored in the job definition).
      set("METAFLOW_S3_CACHE_DIR", c.s3CacheDir.value, c.s3CacheDir.source);
      const creds = c.s3Credentials.value;
      if (creds.kind === "profile") env.METAFLOW_AWS_PROFILE = creds.profile;
      if (creds.kind === "env") {
        env.AWS_ACCESS_KEY_ID = creds.accessKeyId;
        env.AWS_SECRET_ACCESS_KEY = creds.secretAccessKey.reveal();
        if (creds.sessionToken) env.AWS_SESSION_TOKEN = creds.sessionToken.reveal();
      }
    }
  }
  if (container || c.metadata.value === "service") {
    if (host.kind === "container") env.METAFLOW_SERVICE_URL = host.serviceUrl;
    else set("METAFLOW_SERVICE_URL", c.serviceUrl.value, c.serviceUrl.source);
    const token = c.serviceToken.value;
    const how = host.kind === "container" ? host.token : "reveal";
    if (token && how !== "omit")
      env.METAFLOW_SERVICE_AUTH_TOKEN = how === "mask" ? token.masked : token.reveal();
  }
  return env;
}

/** How a launcher's attempts are told they store a caught error. */
export interface RemoteTaskCommandOptions {
  /**
   * Give the recovered error's name as `--caught`: what the task stores when no failed attempt
   * recorded an error (a container that was killed). Without it, `--recover`. @default false
   */
  readonly caught?: boolean;
}

/** The `metaflow task` command of an attempt the scheduler planned. */
export function remoteTaskCommand(
  spec: TaskSpec,
  options: RemoteTaskCommandOptions = {},
): TaskCommand {
  if (!spec.runPlan)
    throw new Error(`internal: task ${spec.step}/${spec.taskId} has no run plan to run it from`);
  const parents = spec.parents
    .filter((p) => p.step !== "_parameters")
    .map((p) => ({ step: p.step, taskId: p.taskId }));
  // A task that a foreach fanned out from its parent says which element it is; a step further
  // inside the foreach, or its join, does not.
  const last = spec.frames.at(-1);
  const first = parents[0];
  const entersForeach =
    !spec.isJoin &&
    last?.kind === "foreach" &&
    parents.length === 1 &&
    first!.step === last.step &&
    first!.taskId === last.taskId;
  return {
    plan: spec.runPlan,
    step: spec.step,
    taskId: spec.taskId,
    attempt: spec.attempt,
    nextFreeAttempt: false,
    run: { kind: "existing", runId: spec.runId },
    parents,
    ...(entersForeach ? { splitIndex: last.index } : {}),
    recover: spec.recover !== undefined,
    ...(spec.recover && options.caught ? { caught: spec.recover.error.name } : {}),
    finishRun: false,
  };
}

/** The `metaflow task` options of an attempt (after `task`), as `task/command.ts` formats them. */
export function remoteTaskArgs(spec: TaskSpec, options: RemoteTaskCommandOptions = {}): string[] {
  return formatTaskCommand(remoteTaskCommand(spec, options)).slice(1);
}
