/**
 * What one `sbatch` call sends: the job script (environment, setup, the command) and the flags
 * (labels that mark the run, resources, the `@slurm` options). Pure functions.
 */
import type { ResolvedSlurmOptions } from "../../config/slurm-options.js";

/** Stands, in a job array's command, for the element's index (`$SLURM_ARRAY_TASK_ID`). */
export const ARRAY_INDEX = Object.freeze({ slurmArrayIndex: true as const });

/** A word the job's shell expands: `$SLURM_*` variables in fixed text, e.g. `slurm job ${SLURM_JOB_ID}`. */
export interface ExpandedWord {
  readonly expand: string;
}

/** A command word the job's shell expands (only `${NAME}` variables; everything else is literal). */
export function expandedWord(text: string): ExpandedWord {
  if (!/^(?:[A-Za-z0-9 _.:/-]|\$\{[A-Za-z_][A-Za-z0-9_]*\})*$/.test(text))
    throw new Error(
      `an expanded job word may hold letters, digits, ' _.:/-' and \${NAME} variables, got ${JSON.stringify(text)}`,
    );
  return { expand: text };
}

/** One word of a job's command: a literal string, the array element's index, or an expanded word. */
export type CommandWord = string | typeof ARRAY_INDEX | ExpandedWord;

/** What marks a job as Metaflow.ts's, so it can be found and killed later by run id. */
export interface JobLabels {
  /** The flow's class name. */
  readonly flow: string;
  readonly runId: string;
  readonly step: string;
  /** The task id, for a single job. */
  readonly taskId?: string;
  /** The attempt number, for a single job. */
  readonly attempt?: number;
  /** The task id of each element, by index, for a job array. */
  readonly taskIds?: readonly string[];
}

/** The resources one task asks for (from `@resources`). */
export interface JobResources {
  /** CPU cores (`--cpus-per-task`, rounded up). */
  readonly cpu?: number;
  /** Memory in MiB (`--mem`). */
  readonly memoryMb?: number;
  /** GPUs (`--gres=gpu:N`); 0 asks for none. */
  readonly gpu?: number;
}

/** One job to submit. */
export interface JobSpec {
  readonly labels: JobLabels;
  /** The command the job runs; in an array, `ARRAY_INDEX` becomes each element's index. */
  readonly command: readonly CommandWord[];
  /** Environment variables the job exports before its command. @default {} */
  readonly env?: Readonly<Record<string, string>>;
  /** Working directory of the job on the compute node (`--chdir`). @default the directory sbatch runs in */
  readonly workdir?: string;
  readonly resources?: JobResources;
  /** Partition, account, QOS, time, constraint, extra flags and setup. @default none of them */
  readonly options?: Partial<ResolvedSlurmOptions>;
  /** Files for the job's raw stdout and stderr, with Slurm's `%j`, `%A`, `%a` patterns. @default /dev/null */
  readonly stdout?: string;
  /** @default /dev/null */
  readonly stderr?: string;
}

/** A job array: `size` elements of the same job, indexed 0..size-1, at most `maxConcurrent` at once. */
export interface ArraySpec extends JobSpec {
  readonly size: number;
  /** @default no limit beyond the cluster's */
  readonly maxConcurrent?: number;
  /** Words added to the command of each element, by index (one list per element). @default none */
  readonly elementArgs?: ReadonlyArray<readonly string[]>;
}

/** The prefix of every Metaflow.ts job name. */
export const JOB_NAME_PREFIX = "metaflow-ts.";

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const RUN_ID = /^[A-Za-z0-9_-]+$/;

/** The job name: `metaflow-ts.<flow>.<run id>.<step>` (all three without dots, so it splits back). */
export function jobName(labels: JobLabels): string {
  if (
    !IDENTIFIER.test(labels.flow) ||
    !IDENTIFIER.test(labels.step) ||
    !RUN_ID.test(labels.runId)
  ) {
    throw new Error(
      `Slurm job labels must be a flow and step name and a run id of letters, digits, '_' or '-', got ${JSON.stringify(labels)}`,
    );
  }
  return `${JOB_NAME_PREFIX}${labels.flow}.${labels.runId}.${labels.step}`;
}

/** The job comment: the same labels as `key=value` words, with the task and attempt when known. */
export function jobComment(labels: JobLabels): string {
  const words = [
    `metaflow-ts`,
    `flow=${labels.flow}`,
    `run=${labels.runId}`,
    `step=${labels.step}`,
  ];
  if (labels.taskId !== undefined) words.push(`task=${labels.taskId}`);
  if (labels.attempt !== undefined) words.push(`attempt=${labels.attempt}`);
  if (labels.taskIds !== undefined) words.push(`tasks=${compressIds(labels.taskIds)}`);
  return words.join(" ");
}

/** `2,3,4,5,9` as `2-5,9`: an array's task ids are mostly consecutive. */
function compressIds(ids: readonly string[]): string {
  const parts: string[] = [];
  for (let i = 0; i < ids.length;) {
    let j = i;
    while (j + 1 < ids.length && /^\d+$/.test(ids[j]!) && Number(ids[j + 1]) === Number(ids[j]) + 1)
      j++;
    parts.push(j > i ? `${ids[i]}-${ids[j]}` : ids[i]!);
    i = j + 1;
  }
  return parts.join(",");
}

/** The ids `compressIds` wrote; undefined when the text is not such a list. */
function expandIds(text: string): string[] | undefined {
  const ids: string[] = [];
  for (const part of text.split(",")) {
    const m = /^(\d+)-(\d+)$/.exec(part);
    if (m && Number(m[2]) >= Number(m[1]) && Number(m[2]) - Number(m[1]) < 100_000) {
      for (let n = Number(m[1]); n <= Number(m[2]); n++) ids.push(String(n));
    } else if (/^[A-Za-z0-9_-]+$/.test(part)) ids.push(part);
    else return undefined;
  }
  return ids;
}

/** Reads labels back from a job name (and its comment, for the task and attempt); undefined when not Metaflow.ts's. */
export function parseLabels(name: string, comment: string | undefined): JobLabels | undefined {
  if (!name.startsWith(JOB_NAME_PREFIX)) return undefined;
  const parts = name.slice(JOB_NAME_PREFIX.length).split(".");
  if (parts.length !== 3) return undefined;
  const [flow, runId, step] = parts as [string, string, string];
  const fromComment = (key: string) => new RegExp(`(?:^| )${key}=(\\S+)`).exec(comment ?? "")?.[1];
  const taskId = fromComment("task");
  const attempt = fromComment("attempt");
  const taskIds = expandIds(fromComment("tasks") ?? "");
  return {
    flow,
    runId,
    step,
    ...(taskId === undefined ? {} : { taskId }),
    ...(attempt === undefined ? {} : { attempt: Number(attempt) }),
    ...(taskIds === undefined || taskIds.length === 0 ? {} : { taskIds }),
  };
}

/** The `sbatch` flags for a job or an array (the script comes on stdin). */
export function sbatchArgs(spec: JobSpec | ArraySpec): string[] {
  const args = [
    "--parsable",
    `--job-name=${jobName(spec.labels)}`,
    `--comment=${jobComment(spec.labels)}`,
  ];
  if ("size" in spec) {
    if (!Number.isInteger(spec.size) || spec.size < 1)
      throw new Error(`a Slurm job array needs a whole number of elements ≥ 1, got ${spec.size}`);
    const limit = spec.maxConcurrent;
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1))
      throw new Error(
        `a Slurm job array's concurrency limit must be a whole number ≥ 1, got ${limit}`,
      );
    args.push(`--array=0-${spec.size - 1}${limit === undefined ? "" : `%${limit}`}`);
  }
  args.push(`--output=${spec.stdout ?? "/dev/null"}`, `--error=${spec.stderr ?? "/dev/null"}`);
  if (spec.workdir !== undefined) args.push(`--chdir=${spec.workdir}`);
  const r = spec.resources ?? {};
  if (r.cpu !== undefined) args.push(`--cpus-per-task=${Math.max(1, Math.ceil(r.cpu))}`);
  if (r.memoryMb !== undefined) args.push(`--mem=${Math.ceil(r.memoryMb)}M`);
  if (r.gpu !== undefined && r.gpu > 0) args.push(`--gres=gpu:${r.gpu}`);
  const o = spec.options ?? {};
  if (o.partition !== undefined) args.push(`--partition=${o.partition}`);
  if (o.account !== undefined) args.push(`--account=${o.account}`);
  if (o.qos !== undefined) args.push(`--qos=${o.qos}`);
  if (o.time !== undefined) args.push(`--time=${o.time.text}`);
  if (o.constraint !== undefined) args.push(`--constraint=${o.constraint}`);
  args.push(...(o.extraArgs ?? []));
  return args;
}

/** The job script: a POSIX shell script that exports the environment, runs the setup, then execs the command. */
export function jobScript(spec: JobSpec): string {
  const lines = ["#!/bin/sh", `# ${jobComment(spec.labels)}`];
  for (const [key, value] of Object.entries(spec.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key))
      throw new Error(
        `environment variable names must be letters, digits and '_', got ${JSON.stringify(key)}`,
      );
    lines.push(`export ${key}=${shellQuote(value)}`);
  }
  const setup = spec.options?.setup;
  if (setup !== undefined && setup.trim() !== "") {
    // A failing setup (a missing module) fails the job with its own exit code, before the task starts.
    lines.push("set -e", setup, "set +e");
  }
  if (spec.command.length === 0) throw new Error("a Slurm job needs a command");
  const perElement = "elementArgs" in spec ? (spec as ArraySpec).elementArgs : undefined;
  if (perElement !== undefined) lines.push(...elementCases(perElement, (spec as ArraySpec).size));
  const words = spec.command.map(renderWord);
  if (perElement !== undefined) words.push('"$@"');
  lines.push(`exec ${words.join(" ")}`);
  return `${lines.join("\n")}\n`;
}

function renderWord(w: CommandWord): string {
  if (typeof w === "string") return shellQuote(w);
  if ("expand" in w) return `"${expandedWord(w.expand).expand}"`;
  return '"$SLURM_ARRAY_TASK_ID"';
}

/** A `case` that sets each element's own arguments as the positional parameters. */
function elementCases(perElement: ReadonlyArray<readonly string[]>, size: number): string[] {
  if (perElement.length !== size)
    throw new Error(
      `a job array of ${size} elements needs ${size} argument lists, got ${perElement.length}`,
    );
  const lines = ['case "$SLURM_ARRAY_TASK_ID" in'];
  perElement.forEach((args, i) => lines.push(`${i}) set -- ${args.map(shellQuote).join(" ")} ;;`));
  lines.push(
    '*) echo "metaflow-ts: this job array has no element $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;',
    "esac",
  );
  return lines;
}

/**
 * The file an output pattern names for one job (`1234`) or array element (`1234_7`), for reading it
 * back: `%A` (array job id), `%a` (index), `%j` (single jobs only) and `%%`; undefined for patterns
 * with other codes (`%N`, `%u`, ...), whose value only Slurm knows.
 */
export function outputFile(pattern: string, id: string): string | undefined {
  const [jobId, index] = id.split("_") as [string, string | undefined];
  let unknown = false;
  const file = pattern.replace(/%(%|[A-Za-z])/g, (all, code: string) => {
    if (code === "%") return "%";
    if (code === "A") return jobId;
    if (code === "a" && index !== undefined) return index;
    if (code === "j" && index === undefined) return jobId;
    unknown = true;
    return all;
  });
  return unknown ? undefined : file;
}

/** Quotes a word for a POSIX shell: inside single quotes nothing is special but the quote itself. */
export function shellQuote(word: string): string {
  if (word.includes("\0"))
    throw new Error("a job's command or environment cannot contain a NUL character");
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
