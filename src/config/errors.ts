import { MetaflowError } from "../errors.js";

/** A setting in the config file or the environment is unknown or malformed; `key` and `where` name it. */
export class ConfigError extends MetaflowError {
  constructor(
    /** The setting's name, e.g. `METAFLOW_SERVICE_URL`, or the file itself when it cannot be read. */
    readonly key: string,
    /** Where the bad value came from: the config file's path or `environment variable X`. */
    readonly where: string,
    message: string,
  ) {
    super("config", `Bad configuration: ${key} (${where})`, message);
  }
}

/** An `@slurm` option or a `METAFLOW_SLURM_*` value is malformed; `field` names it. */
export class SlurmOptionError extends MetaflowError {
  constructor(
    /** The option, e.g. `partition`. */
    readonly field: string,
    message: string,
  ) {
    super("slurm-option", `Bad @slurm option '${field}'`, message);
  }
}
