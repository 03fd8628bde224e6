/**
 * What a Slurm job runs: `metaflow task` for one attempt, started with the command a compute node
 * has (`METAFLOW_SLURM_COMMAND`, by default `node` with this package's absolute `bin/metaflow.js`),
 * and the environment that points it at the run's datastore and metadata.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { Backends } from "../../backends.js";
import type { SlurmSettings } from "../../config/index.js";
import { findDatastoreRoot, LocalStorage } from "../../datastore/local.js";
import type { TaskSpec } from "../../task/protocol.js";

let root: string | undefined;

/** This package's root directory (the one with `bin/metaflow.js`), found from this module's location. */
export function packageRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (
      fs.existsSync(path.join(dir, "package.json")) &&
      fs.existsSync(path.join(dir, "bin", "metaflow.js"))
    ) {
      root = dir;
      return dir;
    }
    const up = path.dirname(dir);
    if (up === dir)
      throw new Error("Cannot find this package's bin/metaflow.js: reinstall metaflow-ts");
    dir = up;
  }
}

/** The words that start metaflow-ts on a compute node, before `task`. */
export function nodeCommand(settings: SlurmSettings): string[] {
  return settings.command.value
    ? [...settings.command.value]
    : ["node", path.join(packageRoot(), "bin", "metaflow.js")];
}

/** The words that start metaflow-ts on this machine (the Node running this process). */
export function localCommand(): string[] {
  return [process.execPath, path.join(packageRoot(), "bin", "metaflow.js")];
}

/** The `metaflow task` options of one attempt (after `task`; without `--label`). */
export function taskArgs(spec: TaskSpec): string[] {
  if (!spec.runPlan)
    throw new Error(`internal: task ${spec.step}/${spec.taskId} has no run plan to run it from`);
  const parents = spec.parents.filter((p) => p.step !== "_parameters");
  const args = [
    "--plan",
    spec.runPlan,
    "--run-id",
    spec.runId,
    "--step",
    spec.step,
    "--task-id",
    spec.taskId,
    "--attempt",
    String(spec.attempt),
  ];
  if (parents.length > 0)
    args.push("--parents", parents.map((p) => `${p.step}/${p.taskId}`).join(","));
  // A task that a foreach fanned out from its parent says which element it is.
  const last = spec.frames[spec.frames.length - 1];
  const first = parents[0];
  if (
    !spec.isJoin &&
    last?.kind === "foreach" &&
    first &&
    last.step === first.step &&
    last.taskId === first.taskId
  ) {
    args.push("--split-index", String(last.index));
  }
  if (spec.recover) args.push("--recover");
  return args;
}

/**
 * The settings a task needs to open the run's datastore and metadata, as environment variables:
 * the effective values (from the environment or the config file), with a local datastore's root
 * made explicit, so a job finds them whatever its working directory, `HOME` or `--export` policy.
 * S3 keys from the environment are passed on too; a profile or an instance role keeps them out.
 */
export function jobEnvironment(backends: Backends): Record<string, string> {
  const c = backends.config;
  const env: Record<string, string> = {
    METAFLOW_DEFAULT_DATASTORE: c.datastore.value,
    METAFLOW_DEFAULT_METADATA: c.metadata.value,
    METAFLOW_USER: c.user.value,
  };
  const local = backends.storage instanceof LocalStorage ? backends.storage.root : undefined;
  if (local) env.METAFLOW_DATASTORE_SYSROOT_LOCAL = local;
  else if (c.metadata.value === "local")
    env.METAFLOW_DATASTORE_SYSROOT_LOCAL = c.localRoot.value ?? findDatastoreRoot(process.cwd());
  const set = (key: string, v: { toString(): string } | undefined, source: string) => {
    if (v !== undefined && source !== "default") env[key] = v.toString();
  };
  if (!local) {
    set("METAFLOW_DATASTORE_SYSROOT_S3", c.s3Root.value, c.s3Root.source);
    set("METAFLOW_DATATOOLS_S3ROOT", c.datatoolsS3Root.value, c.datatoolsS3Root.source);
    set("METAFLOW_S3_ENDPOINT_URL", c.s3Endpoint.value, c.s3Endpoint.source);
    set("METAFLOW_S3_REGION", c.s3Region.value, c.s3Region.source);
    set("METAFLOW_S3_RETRY_COUNT", c.s3RetryCount.value, c.s3RetryCount.source);
    set("METAFLOW_S3_WORKER_COUNT", c.s3WorkerCount.value, c.s3WorkerCount.source);
    set("METAFLOW_S3_CACHE_DIR", c.s3CacheDir.value, c.s3CacheDir.source);
    const creds = c.s3Credentials.value;
    if (creds.kind === "profile") env.METAFLOW_AWS_PROFILE = creds.profile;
    if (creds.kind === "env") {
      env.AWS_ACCESS_KEY_ID = creds.accessKeyId;
      env.AWS_SECRET_ACCESS_KEY = creds.secretAccessKey.reveal();
      if (creds.sessionToken) env.AWS_SESSION_TOKEN = creds.sessionToken.reveal();
    }
  }
  if (c.metadata.value === "service") {
    set("METAFLOW_SERVICE_URL", c.serviceUrl.value, c.serviceUrl.source);
    if (c.serviceToken.value) env.METAFLOW_SERVICE_AUTH_TOKEN = c.serviceToken.value.reveal();
  }
  return env;
}
