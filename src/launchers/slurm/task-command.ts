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
import { remoteTaskEnvironment } from "../remote-task.js";

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

/**
 * The environment of a job: what every remote task is given (`remoteTaskEnvironment`), for a node
 * that shares this machine's filesystem and user — a local datastore's root, the S3 credentials
 * from the environment or a profile, the S3 cache directory.
 */
export function jobEnvironment(backends: Backends): Record<string, string> {
  return remoteTaskEnvironment(backends.config, { kind: "shared", storage: backends.storage });
}
