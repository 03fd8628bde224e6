/**
 * Settings: `METAFLOW_*` environment variables over a JSON config file over defaults. Every setting
 * records where its value came from, so `metaflow configure show` can explain the effective config.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DEPLOY_SETTING_KEYS, resolveDeploySettings, type DeploySettings } from "./deploy.js";
import { ConfigError } from "./errors.js";
import { Secret, hasUrlCredentials, redactUrl } from "./secret.js";
import type { Setting, SettingSource } from "./setting.js";
import { resolveSlurmSettings, SLURM_SETTING_KEYS, type SlurmSettings } from "./slurm.js";

export type { Setting, SettingSource } from "./setting.js";

/** How the S3 client authenticates. */
export type S3Credentials =
  | {
      /** Static keys from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`). */
      readonly kind: "env";
      readonly accessKeyId: string;
      readonly secretAccessKey: Secret;
      readonly sessionToken?: Secret;
    }
  | {
      /** A named profile of `~/.aws/credentials` / `~/.aws/config`. */
      readonly kind: "profile";
      readonly profile: string;
    }
  | {
      /** The AWS SDK's default provider chain (instance roles, SSO, web identity, ...). */
      readonly kind: "chain";
    };

/** The effective configuration; each field is a `Setting` so its source is known. */
export interface MetaflowConfig {
  /** `METAFLOW_PROFILE`: which config file was read (`config_<profile>.json`), or undefined for `config.json`. */
  readonly profile: string | undefined;
  /** The config file that was looked for. */
  readonly configFile: string;
  /** `METAFLOW_BATCH_*`, `METAFLOW_SFN_*` and IAM roles: where `step-functions create` deploys. */
  readonly deploy: DeploySettings;
  /** Whether that file exists (a missing default file is fine; a missing named profile is an error). */
  readonly configFileFound: boolean;
  /** `METAFLOW_DEFAULT_DATASTORE`: `local` or `s3`. @default "local" */
  readonly datastore: Setting<"local" | "s3">;
  /** `METAFLOW_DATASTORE_SYSROOT_LOCAL`: the local datastore directory. @default the nearest `.metaflow` directory */
  readonly localRoot: Setting<string | undefined>;
  /** `METAFLOW_DATASTORE_SYSROOT_S3`: `s3://bucket/prefix` holding artifacts, logs and code. */
  readonly s3Root: Setting<string | undefined>;
  /** `METAFLOW_DATATOOLS_S3ROOT`: where `new S3({ run })` keeps user data. @default `<METAFLOW_DATASTORE_SYSROOT_S3>/datatools` */
  readonly datatoolsS3Root: Setting<string | undefined>;
  /** `METAFLOW_S3_ENDPOINT_URL`: an S3-compatible server (MinIO, s3rver, ...); unset means AWS. */
  readonly s3Endpoint: Setting<string | undefined>;
  /** `METAFLOW_S3_REGION`, else `AWS_REGION` / `AWS_DEFAULT_REGION`. @default "us-east-1" */
  readonly s3Region: Setting<string>;
  /** Credentials for S3: `METAFLOW_AWS_PROFILE`, else `AWS_ACCESS_KEY_ID`+`AWS_SECRET_ACCESS_KEY`, else `AWS_PROFILE`, else the SDK chain. */
  readonly s3Credentials: Setting<S3Credentials>;
  /** `METAFLOW_S3_RETRY_COUNT`: attempts per S3 operation on throttling, 5xx and dropped connections. @default 7 */
  readonly s3RetryCount: Setting<number>;
  /** `METAFLOW_S3_WORKER_COUNT`: S3 requests in flight at once per process. @default 64 */
  readonly s3WorkerCount: Setting<number>;
  /** `METAFLOW_S3_CACHE_DIR`: local read-through cache of S3 artifact blobs. @default `<tmpdir>/metaflow-ts-s3cache-<user>` */
  readonly s3CacheDir: Setting<string>;
  /** `METAFLOW_DEFAULT_METADATA`: `local` or `service`. @default "local" */
  readonly metadata: Setting<"local" | "service">;
  /** `METAFLOW_SERVICE_URL`: the metadata service's base URL. */
  readonly serviceUrl: Setting<string | undefined>;
  /** `METAFLOW_SERVICE_AUTH_TOKEN` (or Metaflow's `METAFLOW_SERVICE_AUTH_KEY`): the service token, masked when printed. */
  readonly serviceToken: Setting<Secret | undefined>;
  /** `METAFLOW_USER`, else `USER` / `USERNAME`, else the OS account name. */
  readonly user: Setting<string>;
  /** `METAFLOW_HEARTBEAT_TIMEOUT`: seconds after which a local run with no end and no heartbeat shows as failed. @default 60 */
  readonly heartbeatTimeout: Setting<number>;
  /** `METAFLOW_SERVICE_RETRY_TIMEOUT`: seconds one metadata-service call is retried (service down, 5xx) before the run stops. @default 60 */
  readonly serviceRetryTimeout: Setting<number>;
  /** `METAFLOW_SLURM_*`: defaults for `@slurm` steps and how their jobs are followed. */
  readonly slurm: SlurmSettings;
  /** `METAFLOW_SERVICE_DATABASE_URL`: the PostgreSQL URL `metaflow service` uses (shown with its password masked). */
  readonly serviceDatabaseUrl: Setting<string | undefined>;
  /** Problems worth telling the user that do not stop anything, e.g. a token in a file others can read. */
  readonly warnings: readonly string[];
}

/** Names of the settings a config file may hold; anything else in the file is rejected. */
export const CONFIG_FILE_KEYS: readonly string[] = [
  ...DEPLOY_SETTING_KEYS,
  "METAFLOW_DEFAULT_DATASTORE",
  "METAFLOW_DATASTORE_SYSROOT_LOCAL",
  "METAFLOW_DATASTORE_SYSROOT_S3",
  "METAFLOW_DATATOOLS_S3ROOT",
  "METAFLOW_S3_ENDPOINT_URL",
  "METAFLOW_S3_REGION",
  "METAFLOW_AWS_PROFILE",
  "METAFLOW_S3_RETRY_COUNT",
  "METAFLOW_S3_WORKER_COUNT",
  "METAFLOW_S3_CACHE_DIR",
  "METAFLOW_DEFAULT_METADATA",
  "METAFLOW_SERVICE_URL",
  "METAFLOW_SERVICE_AUTH_TOKEN",
  "METAFLOW_SERVICE_AUTH_KEY",
  "METAFLOW_USER",
  "METAFLOW_HEARTBEAT_TIMEOUT",
  "METAFLOW_SERVICE_RETRY_TIMEOUT",
  ...SLURM_SETTING_KEYS,
  "METAFLOW_SERVICE_DATABASE_URL",
];

type Env = Readonly<Record<string, string | undefined>>;

/** Where a raw value was found, for precedence and for error messages. */
interface Raw {
  readonly key: string;
  readonly value: string;
  readonly source: "file" | "env";
  readonly origin: string;
}

/** Parses a raw string; throws a plain message (without the key, which the caller adds). */
type Parse<T> = (raw: string) => T;

/**
 * Reads the effective configuration: environment variables win over the config file
 * (`$METAFLOW_HOME` or `<home>/.metaflowconfig`, `config.json` or `config_<METAFLOW_PROFILE>.json`),
 * which wins over defaults; throws a `ConfigError` naming the key and file for anything unknown or malformed.
 * @example
 * const config = loadConfig();
 * if (config.datastore.value === "s3") console.log(`artifacts in ${config.s3Root.value}`);
 */
export function loadConfig(env: Env = process.env, home: string = os.homedir()): MetaflowConfig {
  const profile = nonEmpty(env.METAFLOW_PROFILE);
  const dir = nonEmpty(env.METAFLOW_HOME) ?? path.join(home, ".metaflowconfig");
  const configFile = path.join(dir, profile ? `config_${profile}.json` : "config.json");
  const file = readConfigFile(configFile, profile);

  // Aliases are other names for the same setting; the environment beats the file whichever name is used.
  const lookup = (key: string, aliases: readonly string[] = []): Raw | undefined => {
    const names = [key, ...aliases];
    for (const name of names) {
      const value = nonEmpty(env[name]);
      if (value !== undefined) return { key: name, value, source: "env", origin: `env ${name}` };
    }
    for (const name of names) {
      const value = file.values.get(name);
      if (value !== undefined) return { key: name, value, source: "file", origin: configFile };
    }
    return undefined;
  };

  const resolve = <T>(
    key: string,
    parse: Parse<T>,
    fallback: T,
    aliases?: readonly string[],
  ): Setting<T> => {
    const raw = lookup(key, aliases);
    if (!raw) return { key, value: fallback, source: "default", origin: "default" };
    return {
      key: raw.key,
      value: parseOrThrow(raw, parse),
      source: raw.source,
      origin: raw.origin,
    };
  };

  const s3Root = resolve<string | undefined>(
    "METAFLOW_DATASTORE_SYSROOT_S3",
    parseS3Url,
    undefined,
  );
  const datatools = resolve<string | undefined>(
    "METAFLOW_DATATOOLS_S3ROOT",
    parseS3Url,
    s3Root.value === undefined ? undefined : `${s3Root.value}/datatools`,
  );
  const user = resolveUser(lookup("METAFLOW_USER"), env);
  const token = lookup("METAFLOW_SERVICE_AUTH_TOKEN", ["METAFLOW_SERVICE_AUTH_KEY"]);
  const databaseUrl = resolve<string | undefined>("METAFLOW_SERVICE_DATABASE_URL", parsePostgresUrl, undefined);
  const secretsFromFile = [
    ...(token?.source === "file" ? [token.key] : []),
    ...(databaseUrl.source === "file" && hasUrlCredentials(databaseUrl.value ?? "") ? [databaseUrl.key] : []),
  ];

  return {
    profile,
    deploy: resolveDeploySettings(resolve),
    configFile,
    configFileFound: file.found,
    datastore: resolve("METAFLOW_DEFAULT_DATASTORE", oneOf(["local", "s3"] as const), "local"),
    localRoot: resolve<string | undefined>(
      "METAFLOW_DATASTORE_SYSROOT_LOCAL",
      parsePath,
      undefined,
    ),
    s3Root,
    datatoolsS3Root: datatools,
    s3Endpoint: resolve<string | undefined>("METAFLOW_S3_ENDPOINT_URL", parseHttpUrl, undefined),
    s3Region: resolve("METAFLOW_S3_REGION", parseRegion, "us-east-1", [
      "AWS_REGION",
      "AWS_DEFAULT_REGION",
    ]),
    s3Credentials: resolveCredentials(lookup("METAFLOW_AWS_PROFILE"), env),
    s3RetryCount: resolve("METAFLOW_S3_RETRY_COUNT", intBetween(1, 100), 7),
    s3WorkerCount: resolve("METAFLOW_S3_WORKER_COUNT", intBetween(1, 1024), 64),
    s3CacheDir: resolve(
      "METAFLOW_S3_CACHE_DIR",
      parsePath,
      path.join(os.tmpdir(), `metaflow-ts-s3cache-${safeName(user.value)}`),
    ),
    metadata: resolve("METAFLOW_DEFAULT_METADATA", oneOf(["local", "service"] as const), "local"),
    serviceUrl: resolve<string | undefined>("METAFLOW_SERVICE_URL", parseHttpUrl, undefined),
    serviceToken: token
      ? {
          key: token.key,
          value: new Secret(token.value),
          source: token.source,
          origin: token.origin,
        }
      : {
          key: "METAFLOW_SERVICE_AUTH_TOKEN",
          value: undefined,
          source: "default",
          origin: "default",
        },
    user,
    heartbeatTimeout: resolve("METAFLOW_HEARTBEAT_TIMEOUT", intBetween(1, 86_400), 60),
    serviceRetryTimeout: resolve("METAFLOW_SERVICE_RETRY_TIMEOUT", intBetween(1, 3600), 60),
    slurm: resolveSlurmSettings(resolve),
    serviceDatabaseUrl: databaseUrl,
    warnings: secretsFromFile.length > 0 ? readableByOthers(configFile, secretsFromFile) : [],
  };
}

const emitted = new Set<string>();

/**
 * Emits each of `config.warnings` once per process as a `MetaflowWarning` (the CLI prints it as
 * `Warning: ...`); called where settings are put to use, not by every reader of the config.
 */
export function emitConfigWarnings(config: MetaflowConfig): void {
  for (const w of config.warnings) {
    if (emitted.has(w)) continue;
    emitted.add(w);
    process.emitWarning(w, { type: "MetaflowWarning", code: "METAFLOW_CONFIG" });
  }
}

/** A warning when `file`, which holds the secrets `keys`, can be read by other local users. */
function readableByOthers(file: string, keys: readonly string[]): string[] {
  let mode: number;
  try {
    mode = fs.statSync(file).mode & 0o777;
  } catch {
    return [];
  }
  // Windows has no POSIX modes to judge.
  if (process.platform === "win32" || (mode & 0o044) === 0) return [];
  return [
    `${file} holds ${keys.join(" and ")} but is readable by other users (mode ${mode.toString(8).padStart(4, "0")}); anyone on this machine can use it. Make it private: chmod 600 ${file}`,
  ];
}

/** The settings in display order, each with its value rendered for people (secrets masked). */
export function describeConfig(
  config: MetaflowConfig,
): { key: string; value: string; source: SettingSource; origin: string }[] {
  const settings: Setting<unknown>[] = [
    config.datastore,
    config.localRoot,
    config.s3Root,
    config.datatoolsS3Root,
    config.s3Endpoint,
    config.s3Region,
    config.s3Credentials,
    config.s3RetryCount,
    config.s3WorkerCount,
    config.s3CacheDir,
    ...Object.values(config.deploy),
    config.metadata,
    config.serviceUrl,
    config.serviceToken,
    config.serviceDatabaseUrl,
    config.user,
    config.heartbeatTimeout,
    config.serviceRetryTimeout,
    ...Object.values(config.slurm),
  ];
  return settings.map((s) => ({
    key: s.key,
    value: renderValue(s),
    source: s.source,
    origin: s.origin,
  }));
}

function renderValue(setting: Setting<unknown>): string {
  const v = setting.value;
  if (v === undefined) {
    if (setting.key === "METAFLOW_DATASTORE_SYSROOT_LOCAL") return "(nearest .metaflow directory)";
    return "(not set)";
  }
  if (v instanceof Secret) return v.masked;
  if (Array.isArray(v)) return v.length === 0 ? "(not set)" : v.join(" ");
  // URLs may carry credentials (`user:password@`, `?password=`).
  if (typeof v === "string" && setting.key.endsWith("_URL")) return redactUrl(v);
  if (typeof v === "object" && v !== null && "kind" in v) {
    const c = v as S3Credentials;
    if (c.kind === "env") return `access key ${c.accessKeyId.slice(0, 4)}**** from the environment`;
    if (c.kind === "profile") return `AWS profile ${c.profile}`;
    return "AWS default credential chain";
  }
  return String(v);
}

interface ConfigFile {
  readonly found: boolean;
  readonly values: ReadonlyMap<string, string>;
}

/** Reads and validates the file's shape and keys; values are validated when their setting is resolved. */
function readConfigFile(file: string, profile: string | undefined): ConfigFile {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && profile === undefined) return { found: false, values: new Map() };
    if (code === "ENOENT") {
      throw new ConfigError(
        "METAFLOW_PROFILE",
        "env METAFLOW_PROFILE",
        `METAFLOW_PROFILE=${profile} selects the config file ${file}, which does not exist. Create it, or unset METAFLOW_PROFILE to use config.json.`,
      );
    }
    throw new ConfigError(
      file,
      file,
      `Cannot read the config file ${file}: ${(err as Error).message}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(
      file,
      file,
      `The config file ${file} is not valid JSON (${(err as Error).message}). It must be one JSON object such as {"METAFLOW_DEFAULT_DATASTORE": "s3"}.`,
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(
      file,
      file,
      `The config file ${file} must hold one JSON object of "METAFLOW_*": value pairs.`,
    );
  }
  const values = new Map<string, string>();
  for (const [key, value] of Object.entries(parsed)) {
    if (!CONFIG_FILE_KEYS.includes(key)) throw unknownKey(key, file);
    if (value === null) continue; // an explicit null means "not set", as Metaflow's config files allow
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
      values.set(key, String(value));
    } else {
      throw new ConfigError(
        key,
        file,
        `${key} in ${file} must be a string, got ${JSON.stringify(value)}.`,
      );
    }
  }
  return { found: true, values };
}

function unknownKey(key: string, file: string): ConfigError {
  if (key.startsWith("METAFLOW_RUN_")) {
    return new ConfigError(
      key,
      file,
      `${key} in ${file} is not a setting: parameter defaults come from the environment variable ${key} only. Remove it from the file.`,
    );
  }
  const suggestion = closest(key, CONFIG_FILE_KEYS);
  return new ConfigError(
    key,
    file,
    `Unknown setting ${key} in ${file}.${suggestion ? ` Did you mean ${suggestion}?` : ""} Known settings: ${CONFIG_FILE_KEYS.join(", ")}.`,
  );
}

function parseOrThrow<T>(raw: Raw, parse: Parse<T>): T {
  try {
    return parse(raw.value);
  } catch (err) {
    const where = raw.source === "file" ? raw.origin : `environment variable ${raw.key}`;
    throw new ConfigError(raw.key, where, `${raw.key} (from ${where}) ${(err as Error).message}`);
  }
}

function resolveUser(raw: Raw | undefined, env: Env): Setting<string> {
  const key = "METAFLOW_USER";
  if (raw)
    return { key, value: parseOrThrow(raw, parseName), source: raw.source, origin: raw.origin };
  for (const name of ["USER", "USERNAME"]) {
    const value = nonEmpty(env[name]);
    if (value !== undefined) return { key, value, source: "env", origin: `env ${name}` };
  }
  let value = "unknown";
  try {
    value = os.userInfo().username;
  } catch {
    // No passwd entry (some containers): keep "unknown" rather than fail every command.
  }
  return { key, value, source: "default", origin: "default (OS account)" };
}

function resolveCredentials(profileRaw: Raw | undefined, env: Env): Setting<S3Credentials> {
  const key = "METAFLOW_AWS_PROFILE";
  // An explicitly configured profile wins over ambient keys: the user asked for it by name.
  if (profileRaw) {
    const profile = parseOrThrow(profileRaw, parseName);
    return {
      key,
      value: { kind: "profile", profile },
      source: profileRaw.source,
      origin: profileRaw.origin,
    };
  }
  const id = nonEmpty(env.AWS_ACCESS_KEY_ID);
  const secret = nonEmpty(env.AWS_SECRET_ACCESS_KEY);
  if (id !== undefined && secret !== undefined) {
    const session = nonEmpty(env.AWS_SESSION_TOKEN);
    return {
      key,
      value: {
        kind: "env",
        accessKeyId: id,
        secretAccessKey: new Secret(secret),
        ...(session === undefined ? {} : { sessionToken: new Secret(session) }),
      },
      source: "env",
      origin: "env AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY",
    };
  }
  const awsProfile = nonEmpty(env.AWS_PROFILE);
  if (awsProfile !== undefined) {
    return {
      key,
      value: { kind: "profile", profile: awsProfile },
      source: "env",
      origin: "env AWS_PROFILE",
    };
  }
  return { key, value: { kind: "chain" }, source: "default", origin: "default" };
}

function oneOf<const T extends string>(choices: readonly T[]): Parse<T> {
  return (raw) => {
    const v = raw.trim().toLowerCase();
    if ((choices as readonly string[]).includes(v)) return v as T;
    throw new Error(
      `must be one of ${choices.map((c) => `'${c}'`).join(", ")}, got ${JSON.stringify(raw)}.`,
    );
  };
}

function intBetween(min: number, max: number): Parse<number> {
  return (raw) => {
    const n = Number(raw.trim());
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new Error(`must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}.`);
    }
    return n;
  };
}

function parseHttpUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new Error(`must be an http:// or https:// URL, got ${JSON.stringify(raw)}.`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`must be an http:// or https:// URL, got ${JSON.stringify(raw)}.`);
  }
  return raw.trim().replace(/\/+$/, "");
}

/** Validates `s3://bucket[/prefix]` and returns it normalized without a trailing slash. */
export function parseS3Url(raw: string): string {
  const m = /^s3:\/\/([^/]+)(\/.*)?$/.exec(raw.trim());
  const bucket = m?.[1];
  if (!m || bucket === undefined) {
    throw new Error(`must be an S3 URL like s3://bucket/prefix, got ${JSON.stringify(raw)}.`);
  }
  // S3 bucket naming rules (3-63 chars, lowercase letters, digits, dots and hyphens).
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new Error(
      `names the bucket ${JSON.stringify(bucket)}, which is not a valid S3 bucket name (3-63 lowercase letters, digits, '.' or '-').`,
    );
  }
  const prefix = (m[2] ?? "").replace(/^\/+|\/+$/g, "");
  if (prefix.split("/").some((s) => s === "." || s === "..") || prefix.includes("//")) {
    throw new Error(`has an empty, '.' or '..' path segment: ${JSON.stringify(raw)}.`);
  }
  return prefix === "" ? `s3://${bucket}` : `s3://${bucket}/${prefix}`;
}

function parsePath(raw: string): string {
  const v = raw.trim();
  if (v.includes("\0")) throw new Error("must be a file system path.");
  return path.resolve(v.startsWith("~/") ? path.join(os.homedir(), v.slice(2)) : v);
}

function parsePostgresUrl(raw: string): string {
  const v = raw.trim();
  let url: URL | undefined;
  try {
    url = new URL(v);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "postgres:" && url.protocol !== "postgresql:")) {
    throw new Error(`must be a postgres:// URL, e.g. postgres://metaflow@db.internal:5432/metaflow, got ${JSON.stringify(redactUrl(v))}.`);
  }
  return v;
}

function parseRegion(raw: string): string {
  const v = raw.trim();
  if (!/^[a-z0-9-]+$/.test(v))
    throw new Error(`must be an AWS region name like us-east-1, got ${JSON.stringify(raw)}.`);
  return v;
}

function parseName(raw: string): string {
  const v = raw.trim();
  if (v === "" || /[\s/\\:]/.test(v)) {
    throw new Error(
      `must be a plain name without spaces, '/', '\\' or ':', got ${JSON.stringify(raw)}.`,
    );
  }
  return v;
}

function nonEmpty(value: string | undefined): string | undefined {
  // An empty variable (`METAFLOW_X=`) means "unset", as in shells and Metaflow.
  return value === undefined || value === "" ? undefined : value;
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, "_");
}

/** The known key closest to a misspelled one (edit distance at most 3), for "did you mean" hints. */
function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 4;
  for (const candidate of known) {
    const d = editDistance(key.toUpperCase(), candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}
