/** Configuration: `loadConfig()` and the types of its settings. */
export { loadConfig, describeConfig, emitConfigWarnings, parseS3Url, CONFIG_FILE_KEYS } from "./load.js";
export type { MetaflowConfig, Setting, SettingSource, S3Credentials } from "./load.js";
export type { DeploySettings as DeployConfig } from "./deploy.js";
export type { SlurmSettings, SlurmTime, Parsed } from "./slurm.js";
export {
  parseSlurmTime,
  parseSlurmName,
  parseSlurmPartition,
  parseSlurmConstraint,
  parseSbatchArgs,
} from "./slurm.js";
export {
  parseSlurmOptions,
  withSlurmDefaults,
  SLURM_OPTION_FIELDS,
  type SlurmOptions,
  type ParsedSlurmOptions,
  type ResolvedSlurmOptions,
} from "./slurm-options.js";
export { ConfigError, SlurmOptionError } from "./errors.js";
export { Secret, maskSecret, redactUrl } from "./secret.js";
