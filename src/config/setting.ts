/** One setting's value and where it came from, shared by every group of settings. */

/** Where a setting's value came from, lowest precedence first. */
export type SettingSource = "default" | "file" | "env";

/** One effective setting: its value, and which key in which place supplied it. */
export interface Setting<T> {
  /** The setting's name, as in the environment and the config file, e.g. `METAFLOW_DEFAULT_DATASTORE`. */
  readonly key: string;
  readonly value: T;
  readonly source: SettingSource;
  /** Human-readable origin: `default`, the config file's path, or `env METAFLOW_X` (the variable actually read). */
  readonly origin: string;
}

/** Reads one setting: from the environment, else the config file, else `fallback`; `parse` checks the text. */
export type Resolve = <T>(key: string, parse: (raw: string) => T, fallback: T) => Setting<T>;
