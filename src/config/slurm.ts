/**
 * `METAFLOW_SLURM_*` settings: the defaults every `@slurm` step starts from, and how the runtime
 * follows jobs. Also the syntax of the Slurm values they hold (time limits, names), shared with the
 * `@slurm` options so a value means the same wherever it is written.
 */
import type { Resolve, Setting } from "./setting.js";

/** The effective `METAFLOW_SLURM_*` settings. */
export interface SlurmSettings {
  /** `METAFLOW_SLURM_PARTITION`: partition (or comma-separated list) for jobs without `@slurm({ partition })`. @default the cluster's default partition */
  readonly partition: Setting<string | undefined>;
  /** `METAFLOW_SLURM_ACCOUNT`: account jobs are charged to. @default the user's default account */
  readonly account: Setting<string | undefined>;
  /** `METAFLOW_SLURM_QOS`: quality of service. @default the account's default QOS */
  readonly qos: Setting<string | undefined>;
  /** `METAFLOW_SLURM_TIME`: time limit in Slurm's format (`90`, `02:00:00`, `1-12:00:00`). @default the partition's default time */
  readonly time: Setting<string | undefined>;
  /** `METAFLOW_SLURM_CONSTRAINT`: node features the job needs (`--constraint`). @default none */
  readonly constraint: Setting<string | undefined>;
  /** `METAFLOW_SLURM_EXTRA_ARGS`: more `sbatch` flags, separated by spaces (`--exclusive --nice=10`). @default none */
  readonly extraArgs: Setting<readonly string[]>;
  /** `METAFLOW_SLURM_SETUP`: shell commands the job runs before the task, e.g. `module load nodejs/20`. @default none */
  readonly setup: Setting<string | undefined>;
  /** `METAFLOW_SLURM_POLL_INTERVAL`: seconds between two `squeue` queries that follow a run's jobs. @default 2 */
  readonly pollIntervalSeconds: Setting<number>;
  /** `METAFLOW_SLURM_STUCK_TIMEOUT`: seconds a job may stay PENDING for a reason only an admin or a new request can fix (a down partition, a request no node can meet) before it fails. @default 60 */
  readonly stuckTimeoutSeconds: Setting<number>;
  /** `METAFLOW_SLURM_COMMAND`: how a compute node starts metaflow-ts, the words before `task` (no quoting: paths without spaces). @default `node <this package>/bin/metaflow.js` */
  readonly command: Setting<readonly string[] | undefined>;
  /** `METAFLOW_SLURM_OUTPUT_DIR`: a directory shared with the compute nodes for each job's raw output (what the task printed, slurmstepd's verdicts). @default `slurm/` in a local datastore's `tmp/`; none with S3 */
  readonly outputDir: Setting<string | undefined>;
  /** `METAFLOW_SLURM_DATASTORE_CHECK`: `auto` checks that the compute nodes can reach the datastore unless every node is this machine, `strict` checks always, `off` trusts the set-up. @default "auto" */
  readonly datastoreCheck: Setting<"auto" | "strict" | "off">;
  /** `METAFLOW_SLURM_ARRAYS`: `false` submits each task of a foreach as a job of its own instead of one job array. @default true */
  readonly arrays: Setting<boolean>;
}

/** Names of the Slurm settings, for the config file's list of known keys. */
export const SLURM_SETTING_KEYS: readonly string[] = [
  "METAFLOW_SLURM_PARTITION",
  "METAFLOW_SLURM_ACCOUNT",
  "METAFLOW_SLURM_QOS",
  "METAFLOW_SLURM_TIME",
  "METAFLOW_SLURM_CONSTRAINT",
  "METAFLOW_SLURM_EXTRA_ARGS",
  "METAFLOW_SLURM_SETUP",
  "METAFLOW_SLURM_POLL_INTERVAL",
  "METAFLOW_SLURM_STUCK_TIMEOUT",
  "METAFLOW_SLURM_COMMAND",
  "METAFLOW_SLURM_OUTPUT_DIR",
  "METAFLOW_SLURM_DATASTORE_CHECK",
  "METAFLOW_SLURM_ARRAYS",
];

/** How `loadConfig` resolves one setting: environment over file over `fallback`, parsed by `parse`. */

/** Resolves every Slurm setting with `loadConfig`'s precedence rules. */
export function resolveSlurmSettings(resolve: Resolve): SlurmSettings {
  const optional = <T>(key: string, parse: (raw: string) => T) =>
    resolve<T | undefined>(key, parse, undefined);
  return {
    partition: optional("METAFLOW_SLURM_PARTITION", (v) => throwing(parseSlurmPartition(v))),
    account: optional("METAFLOW_SLURM_ACCOUNT", (v) => throwing(parseSlurmName(v))),
    qos: optional("METAFLOW_SLURM_QOS", (v) => throwing(parseSlurmName(v))),
    time: optional("METAFLOW_SLURM_TIME", (v) => throwing(parseSlurmTime(v)).text),
    constraint: optional("METAFLOW_SLURM_CONSTRAINT", (v) => throwing(parseSlurmConstraint(v))),
    extraArgs: resolve<readonly string[]>(
      "METAFLOW_SLURM_EXTRA_ARGS",
      (v) => throwing(parseSbatchArgs(v.trim().split(/\s+/))),
      [],
    ),
    setup: optional("METAFLOW_SLURM_SETUP", (v) => v),
    pollIntervalSeconds: resolve("METAFLOW_SLURM_POLL_INTERVAL", secondsBetween(0.1, 600), 2),
    stuckTimeoutSeconds: resolve("METAFLOW_SLURM_STUCK_TIMEOUT", secondsBetween(0, 86_400), 60),
    command: optional("METAFLOW_SLURM_COMMAND", parseCommandWords),
    outputDir: optional("METAFLOW_SLURM_OUTPUT_DIR", parseAbsolutePath),
    datastoreCheck: resolve("METAFLOW_SLURM_DATASTORE_CHECK", parseCheckMode, "auto"),
    arrays: resolve("METAFLOW_SLURM_ARRAYS", parseBoolean, true),
  };
}

/** A parsed value, or the reason it is not valid, phrased to follow the field's name. */
export type Parsed<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

/** A Slurm time limit: the text as `sbatch --time` takes it, and its length. */
export interface SlurmTime {
  /** Normalized text, e.g. `02:00:00` or `UNLIMITED`. */
  readonly text: string;
  /** Seconds, or `Infinity` for `UNLIMITED`. */
  readonly seconds: number;
}

const TIME_HELP =
  'a Slurm time such as "30" (minutes), "30:00" (min:sec), "02:00:00" (h:min:sec), "1-12" (days-hours), "1-12:30:00" or "UNLIMITED"';

/** Parses Slurm's time formats: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`, `UNLIMITED`/`INFINITE`. */
export function parseSlurmTime(raw: unknown): Parsed<SlurmTime> {
  if (typeof raw !== "string") {
    const hint = typeof raw === "number" ? ` (a number; write "${raw}" for ${raw} minutes)` : "";
    return bad(`must be ${TIME_HELP}, got ${show(raw)}${hint}`);
  }
  const text = raw.trim();
  if (/^(unlimited|infinite)$/i.test(text)) return good({ text: "UNLIMITED", seconds: Infinity });
  const m = /^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$/.exec(text);
  if (!m) return bad(`must be ${TIME_HELP}, got ${show(raw)}`);
  const [, d, a, b, c] = m;
  const n = (s: string | undefined) => (s === undefined ? 0 : Number(s));
  let seconds: number;
  if (d !== undefined) {
    // days-hours[:minutes[:seconds]]
    if (n(a) >= 24 || n(b) >= 60 || n(c) >= 60)
      return bad(`has hours ≥ 24, or minutes or seconds ≥ 60: ${show(raw)}; use ${TIME_HELP}`);
    seconds = n(d) * 86_400 + n(a) * 3600 + n(b) * 60 + n(c);
  } else if (c !== undefined) {
    if (n(b) >= 60 || n(c) >= 60)
      return bad(`has minutes or seconds ≥ 60: ${show(raw)}; use ${TIME_HELP}`);
    seconds = n(a) * 3600 + n(b) * 60 + n(c);
  } else if (b !== undefined) {
    if (n(b) >= 60) return bad(`has seconds ≥ 60: ${show(raw)}; use ${TIME_HELP}`);
    seconds = n(a) * 60 + n(b);
  } else {
    seconds = n(a) * 60;
  }
  if (seconds <= 0)
    return bad(
      `must be longer than zero (Slurm reads 0 as no limit; write "UNLIMITED" for that), got ${show(raw)}`,
    );
  return good({ text, seconds });
}

/** Validates one Slurm account, QOS or partition name. */
export function parseSlurmName(raw: unknown): Parsed<string> {
  if (typeof raw !== "string") return bad(`must be a string (a Slurm name), got ${show(raw)}`);
  const v = raw.trim();
  if (!/^[A-Za-z0-9_.+-]+$/.test(v))
    return bad(`must be a Slurm name (letters, digits, '_', '.', '-', '+'), got ${show(raw)}`);
  return good(v);
}

/** Validates a partition, or a comma-separated list of partitions (Slurm uses the first that can start the job). */
export function parseSlurmPartition(raw: unknown): Parsed<string> {
  if (typeof raw !== "string")
    return bad(`must be a string naming a partition (see \`sinfo\`), got ${show(raw)}`);
  const parts = raw.split(",").map((p) => p.trim());
  for (const p of parts) {
    const r = parseSlurmName(p);
    if (!r.ok)
      return bad(
        `must name partitions (letters, digits, '_', '.', '-', separated by commas), got ${show(raw)}`,
      );
  }
  return good(parts.join(","));
}

/** Validates a `--constraint` expression (node features joined by `&`, `|`, `[...]`, `*N`). */
export function parseSlurmConstraint(raw: unknown): Parsed<string> {
  if (typeof raw !== "string")
    return bad(`must be a string of node features such as "intel&avx2", got ${show(raw)}`);
  const v = raw.trim();
  if (v === "" || /[\s"'`$\\;]/.test(v))
    return bad(
      `must be node features such as "intel&avx2" or "[rack1|rack2]", without spaces or quotes, got ${show(raw)}`,
    );
  return good(v);
}

/** `sbatch` flags that Metaflow.ts sets itself, with what to write instead. */
const RESERVED_FLAGS: ReadonlyMap<string, string> = new Map([
  ["-a", "a foreach over the step submits the array itself"],
  ["--array", "a foreach over the step submits the array itself"],
  ["-J", "the job name marks the run so `metaflow slurm list` finds it"],
  ["--job-name", "the job name marks the run so `metaflow slurm list` finds it"],
  ["--comment", "the comment marks the run so `metaflow slurm list` finds it"],
  ["-o", "job output files are chosen by Metaflow.ts; the task's logs are in `metaflow logs`"],
  [
    "--output",
    "job output files are chosen by Metaflow.ts; the task's logs are in `metaflow logs`",
  ],
  ["-e", "job output files are chosen by Metaflow.ts; the task's logs are in `metaflow logs`"],
  ["--error", "job output files are chosen by Metaflow.ts; the task's logs are in `metaflow logs`"],
  ["--parsable", "Metaflow.ts reads sbatch's answer itself"],
  ["--wrap", "the job script runs the task"],
  ["-W", "Metaflow.ts follows the job itself"],
  ["--wait", "Metaflow.ts follows the job itself"],
  ["-p", "use the partition option"],
  ["--partition", "use the partition option"],
  ["-A", "use the account option"],
  ["--account", "use the account option"],
  ["-q", "use the qos option"],
  ["--qos", "use the qos option"],
  ["-t", "use the time option"],
  ["--time", "use the time option"],
  ["-C", "use the constraint option"],
  ["--constraint", "use the constraint option"],
  ["-c", "use @resources({ cpu })"],
  ["--cpus-per-task", "use @resources({ cpu })"],
  ["--mem", "use @resources({ memory })"],
  ["--mem-per-cpu", "use @resources({ memory })"],
  ["--mem-per-gpu", "use @resources({ memory })"],
  ["--gres", "use @resources({ gpu })"],
  ["-G", "use @resources({ gpu })"],
  ["--gpus", "use @resources({ gpu })"],
]);

/** Validates extra `sbatch` flags: each one a `-x`/`--name[=value]` word, none that Metaflow.ts sets itself. */
export function parseSbatchArgs(raw: unknown): Parsed<readonly string[]> {
  if (!Array.isArray(raw) || raw.some((a) => typeof a !== "string")) {
    return bad(
      `must be a list of sbatch flags such as ["--exclusive", "--nice=10"], got ${show(raw)}`,
    );
  }
  const args = (raw as string[]).map((a) => a.trim()).filter((a) => a !== "");
  for (const arg of args) {
    if (!/^--?[A-Za-z]/.test(arg) || /[\n\r\0]/.test(arg)) {
      return bad(
        `must hold sbatch flags, each starting with '-' and with its value after '=' ("--nice=10"), got ${show(arg)}`,
      );
    }
    const flag = arg.startsWith("--") ? arg.split("=")[0]! : arg.slice(0, 2);
    const instead = RESERVED_FLAGS.get(flag);
    if (instead !== undefined) return bad(`must not set ${flag} (${instead}), got ${show(arg)}`);
  }
  return good(args);
}

function secondsBetween(min: number, max: number): (raw: string) => number {
  return (raw) => {
    const n = Number(raw.trim());
    if (!Number.isFinite(n) || n < min || n > max) {
      throw new Error(
        `must be a number of seconds from ${min} to ${max}, got ${JSON.stringify(raw)}.`,
      );
    }
    return n;
  };
}

function parseCommandWords(raw: string): readonly string[] {
  const words = raw
    .trim()
    .split(/\s+/)
    .filter((w) => w !== "");
  if (words.length === 0 || words.some((w) => /["'`$\\;|&<>]/.test(w)))
    throw new Error(
      `must be the words that start metaflow-ts on a compute node, separated by spaces and without quotes or shell characters, e.g. "node /shared/metaflow-ts/bin/metaflow.js" or "metaflow", got ${JSON.stringify(raw)}.`,
    );
  return words;
}

function parseAbsolutePath(raw: string): string {
  const v = raw.trim();
  if (!v.startsWith("/") || v.includes("\0") || /[%\s]/.test(v))
    throw new Error(
      `must be an absolute directory path without spaces or '%' that the compute nodes share, got ${JSON.stringify(raw)}.`,
    );
  return v.replace(/\/+$/, "") || "/";
}

function parseCheckMode(raw: string): "auto" | "strict" | "off" {
  const v = raw.trim().toLowerCase();
  if (v === "auto" || v === "strict" || v === "off") return v;
  throw new Error(`must be auto, strict or off, got ${JSON.stringify(raw)}.`);
}

function parseBoolean(raw: string): boolean {
  const v = raw.trim().toLowerCase();
  if (["true", "1", "yes", "on"].includes(v)) return true;
  if (["false", "0", "no", "off"].includes(v)) return false;
  throw new Error(`must be true or false, got ${JSON.stringify(raw)}.`);
}

function throwing<T>(p: Parsed<T>): T {
  if (!p.ok) throw new Error(`${p.problem}.`);
  return p.value;
}

function good<T>(value: T): Parsed<T> {
  return { ok: true, value };
}

function bad<T>(problem: string): Parsed<T> {
  return { ok: false, problem };
}

function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
