/**
 * Submitting one step's attempts: a job array per `MaxArraySize` elements (one `sbatch` for each),
 * a job of its own for an attempt that came alone, every job carrying the step's `@slurm` options
 * and `@resources`, the run's datastore settings and `metaflow task` with the attempt's arguments.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Backends } from "../../backends.js";
import {
  parseSlurmOptions,
  withSlurmDefaults,
  type ResolvedSlurmOptions,
  type SlurmSettings,
} from "../../config/index.js";
import type { TaskPlan } from "../../decorators/contract.js";
import { LocalStorage } from "../../datastore/local.js";
import type { PlainError } from "../../errors.js";
import type { TaskSpec } from "../../task/protocol.js";
import type { SlurmCli } from "./cli.js";
import { plainError } from "./outcome-record.js";
import { expandedWord, outputFile, type JobSpec } from "./script.js";
import { submitArray, submitJob } from "./submit.js";
import { remoteTaskArgs } from "../remote-task.js";
import { nodeCommand } from "./task-command.js";

/** What submitting needs from the launcher. */
export interface SubmitContext {
  readonly cli: SlurmCli;
  readonly settings: SlurmSettings;
  readonly backends: Backends;
  /** The job environment (`jobEnvironment`). */
  readonly env: Readonly<Record<string, string>>;
  /** `--max-workers`: the `%` limit of each array. */
  readonly maxWorkers: number;
  readonly say: (stream: "stdout" | "stderr", line: string) => void;
}

/** One attempt's submission: its job (or array element) id, or why it could not be submitted. */
export type Submitted =
  | {
      readonly id: string;
      readonly jobId: string;
      readonly array: boolean;
      readonly outputFile: string | undefined;
    }
  | { readonly error: PlainError };

/** sbatch calls in flight at once: a burst of single jobs must not flood the controller. */
const SBATCH_AT_ONCE = 8;

/**
 * Submits attempts of one step (the same plan) and tells `submitted(i, result)` about each, by
 * position, as soon as its job exists.
 */
export async function submitStep(
  ctx: SubmitContext,
  attempts: ReadonlyArray<{ readonly spec: TaskSpec; readonly plan: TaskPlan }>,
  submitted: (index: number, result: Submitted) => void,
): Promise<void> {
  let options: ResolvedSlurmOptions;
  let chunkSize: number;
  try {
    options = withSlurmDefaults(
      parseSlurmOptions(attempts[0]!.plan.launcher.options, "code"),
      ctx.settings,
    );
    const info = await ctx.cli.check();
    chunkSize = ctx.settings.arrays.value ? Math.max(1, info.maxArraySize) : 1;
  } catch (err) {
    attempts.forEach((_, i) => submitted(i, { error: plainError(err) }));
    return;
  }
  const chunks: number[][] = [];
  for (let i = 0; i < attempts.length; i += chunkSize) {
    chunks.push(Array.from({ length: Math.min(chunkSize, attempts.length - i) }, (_, k) => i + k));
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let chunk = chunks[next++]; chunk; chunk = chunks[next++]) {
      const group = chunk.map((i) => attempts[i]!);
      const results = await (group.length === 1
        ? submitOne(ctx, group[0]!, options)
        : submitMany(ctx, group, options));
      results.forEach((r, k) => submitted(chunk[k]!, r));
    }
  };
  await Promise.all(Array.from({ length: Math.min(SBATCH_AT_ONCE, chunks.length) }, worker));
}

async function submitOne(
  ctx: SubmitContext,
  a: { spec: TaskSpec; plan: TaskPlan },
  options: ResolvedSlurmOptions,
): Promise<Submitted[]> {
  const { spec } = a;
  const output = outputPattern(ctx, spec, false);
  try {
    const { jobId } = await submitJob(ctx.cli, {
      ...common(ctx, a.plan, options, output),
      labels: {
        flow: spec.flowName,
        runId: spec.runId,
        step: spec.step,
        taskId: spec.taskId,
        attempt: spec.attempt,
      },
      command: [
        ...nodeCommand(ctx.settings),
        "task",
        "--label",
        expandedWord("slurm job ${SLURM_JOB_ID}"),
        ...remoteTaskArgs(spec),
      ],
    });
    return [
      {
        id: jobId,
        jobId,
        array: false,
        outputFile: output ? outputFile(output, jobId) : undefined,
      },
    ];
  } catch (err) {
    return [{ error: plainError(err) }];
  }
}

async function submitMany(
  ctx: SubmitContext,
  group: ReadonlyArray<{ spec: TaskSpec; plan: TaskPlan }>,
  options: ResolvedSlurmOptions,
): Promise<Submitted[]> {
  const { spec } = group[0]!;
  const output = outputPattern(ctx, spec, true);
  try {
    const { jobId, elements } = await submitArray(ctx.cli, {
      ...common(ctx, group[0]!.plan, options, output),
      labels: {
        flow: spec.flowName,
        runId: spec.runId,
        step: spec.step,
        taskIds: group.map((a) => a.spec.taskId),
      },
      command: [
        ...nodeCommand(ctx.settings),
        "task",
        "--label",
        expandedWord("slurm job ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"),
      ],
      size: group.length,
      maxConcurrent: ctx.maxWorkers,
      elementArgs: group.map((a) => remoteTaskArgs(a.spec)),
    });
    const tasks = `${spec.taskId}..${group[group.length - 1]!.spec.taskId}`;
    ctx.say(
      "stdout",
      `[${spec.runId}/${spec.step}] ${group.length} tasks (${tasks}) submitted as Slurm job array ${jobId}, at most ${ctx.maxWorkers} running at once.`,
    );
    return elements.map((id) => ({
      id,
      jobId,
      array: true,
      outputFile: output ? outputFile(output, id) : undefined,
    }));
  } catch (err) {
    return group.map(() => ({ error: plainError(err) }));
  }
}

/** What every job of the step shares: environment, resources, options, output files. */
function common(
  ctx: SubmitContext,
  plan: TaskPlan,
  options: ResolvedSlurmOptions,
  output: string | undefined,
): Omit<JobSpec, "command" | "labels"> {
  const r = plan.resources;
  return {
    env: ctx.env,
    resources: {
      ...(r.cpu !== undefined ? { cpu: r.cpu } : {}),
      ...(r.memoryMb !== undefined ? { memoryMb: r.memoryMb } : {}),
      ...(r.gpu !== undefined ? { gpu: r.gpu } : {}),
    },
    options,
    ...(output ? { stdout: output, stderr: output } : {}),
  };
}

/**
 * Where the jobs' raw output goes, with Slurm's `%` patterns: `METAFLOW_SLURM_OUTPUT_DIR`, else
 * `tmp/slurm/` of a local datastore (shared with the nodes by necessity); undefined: nowhere.
 */
function outputPattern(ctx: SubmitContext, spec: TaskSpec, array: boolean): string | undefined {
  const base =
    ctx.settings.outputDir.value ??
    (ctx.backends.storage instanceof LocalStorage
      ? path.join(ctx.backends.localDir, "slurm")
      : undefined);
  if (base === undefined) return undefined;
  const dir = path.join(base, spec.flowName, spec.runId);
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch {
    return undefined;
  }
  return `${dir.replace(/%/g, "%%")}/${spec.step}-${array ? "%A_%a" : "%j"}.log`;
}
