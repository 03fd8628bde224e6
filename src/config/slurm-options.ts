/**
 * The `@slurm` options: validated once (from code or from `--with slurm:k=v`), then completed with
 * the `METAFLOW_SLURM_*` defaults. Pure functions: no Slurm command runs here, so the `@slurm`
 * decorator (in decorators/) and the Slurm launcher share them.
 */
import { SlurmOptionError } from "./errors.js";
import {
  parseSbatchArgs,
  parseSlurmConstraint,
  parseSlurmName,
  parseSlurmPartition,
  parseSlurmTime,
  type Parsed,
  type SlurmSettings,
  type SlurmTime,
} from "./slurm.js";

/** Options of `@slurm`, as a user writes them. */
export interface SlurmOptions {
  /** Partition, or comma-separated partitions, to submit to. @default METAFLOW_SLURM_PARTITION, else the cluster's default */
  partition?: string;
  /** Account charged for the job. @default METAFLOW_SLURM_ACCOUNT, else the user's default account */
  account?: string;
  /** Quality of service. @default METAFLOW_SLURM_QOS, else the account's default */
  qos?: string;
  /** Time limit in Slurm's format: `"90"` (minutes), `"02:00:00"`, `"1-12:00:00"`, `"UNLIMITED"`. @default METAFLOW_SLURM_TIME, else the partition's default */
  time?: string;
  /** Node features the job needs (`--constraint`), e.g. `"intel&avx2"`. @default METAFLOW_SLURM_CONSTRAINT */
  constraint?: string;
  /** More `sbatch` flags, e.g. `["--exclusive", "--nice=10"]`, added after METAFLOW_SLURM_EXTRA_ARGS. @default [] */
  extraArgs?: string[];
}

/** The options given on one step, validated; absent fields fall back to the settings. */
export interface ParsedSlurmOptions {
  readonly partition?: string;
  readonly account?: string;
  readonly qos?: string;
  readonly time?: SlurmTime;
  readonly constraint?: string;
  readonly extraArgs: readonly string[];
}

/** The options a job is submitted with: the step's, completed from the settings. */
export interface ResolvedSlurmOptions {
  readonly partition: string | undefined;
  readonly account: string | undefined;
  readonly qos: string | undefined;
  readonly time: SlurmTime | undefined;
  readonly constraint: string | undefined;
  readonly extraArgs: readonly string[];
  /** Shell commands run in the job before the task (from METAFLOW_SLURM_SETUP). */
  readonly setup: string | undefined;
}

/** The option names of `@slurm`. */
export const SLURM_OPTION_FIELDS = [
  "partition",
  "account",
  "qos",
  "time",
  "constraint",
  "extraArgs",
] as const;

/**
 * Validates `@slurm` options given in code (typed values) or on the command line (strings; `extraArgs`
 * as a JSON list or space-separated flags); throws a `SlurmOptionError` naming the field.
 * @example
 * parseSlurmOptions({ partition: "gpu", time: "02:00:00" }, "code");
 * parseSlurmOptions({ partition: "gpu", extraArgs: "--exclusive --nice=10" }, "cli");
 */
export function parseSlurmOptions(
  raw: Readonly<Record<string, unknown>>,
  source: "code" | "cli",
): ParsedSlurmOptions {
  for (const key of Object.keys(raw)) {
    if (!(SLURM_OPTION_FIELDS as readonly string[]).includes(key)) {
      throw new SlurmOptionError(
        key,
        `@slurm has no option '${key}'; its options are: ${SLURM_OPTION_FIELDS.join(", ")}.`,
      );
    }
  }
  const field = <T>(name: string, parse: (v: unknown) => Parsed<T>): T | undefined => {
    const v = raw[name];
    if (v === undefined) return undefined;
    const r = parse(v);
    if (!r.ok) throw new SlurmOptionError(name, `@slurm.${name} ${r.problem}.`);
    return r.value;
  };
  const extra = field("extraArgs", (v) =>
    parseSbatchArgs(source === "cli" && typeof v === "string" ? splitCliList(v) : v),
  );
  const options = {
    partition: field("partition", parseSlurmPartition),
    account: field("account", parseSlurmName),
    qos: field("qos", parseSlurmName),
    time: field("time", parseSlurmTime),
    constraint: field("constraint", parseSlurmConstraint),
    extraArgs: extra ?? [],
  };
  // Drop absent fields so a parsed value prints and compares as what the user wrote.
  return Object.fromEntries(
    Object.entries(options).filter(([, v]) => v !== undefined),
  ) as unknown as ParsedSlurmOptions;
}

/** Completes a step's options with the `METAFLOW_SLURM_*` settings: the step's value wins, extra flags add up. */
export function withSlurmDefaults(
  options: ParsedSlurmOptions,
  settings: SlurmSettings,
): ResolvedSlurmOptions {
  let time = options.time;
  if (time === undefined && settings.time.value !== undefined) {
    const parsed = parseSlurmTime(settings.time.value);
    if (parsed.ok) time = parsed.value;
  }
  return {
    partition: options.partition ?? settings.partition.value,
    account: options.account ?? settings.account.value,
    qos: options.qos ?? settings.qos.value,
    time,
    constraint: options.constraint ?? settings.constraint.value,
    extraArgs: [...settings.extraArgs.value, ...options.extraArgs],
    setup: settings.setup.value,
  };
}

/** `--with slurm:extraArgs=...` takes a JSON list (`["--exclusive"]`) or flags separated by spaces. */
function splitCliList(v: string): unknown {
  const text = v.trim();
  if (text.startsWith("[")) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return text === "" ? [] : text.split(/\s+/);
}
