/**
 * `metaflow task` (internal): runs one attempt of one task from the datastore — what every remote
 * backend launches (a Slurm job, an AWS Batch job of a Step Functions execution).
 */
import { Command } from "commander";
import * as library from "../index.js";
import { UsageError } from "../errors.js";
import { runRemoteTask } from "../task/remote.js";
import { EXIT_FAILURE } from "./output.js";

function whole(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`${flag} expects a whole number ≥ 0, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** Builds the `task` command. */
export function taskCommand(): Command {
  return new Command("task")
    .description("(internal) run one attempt of one task from the datastore, as remote backends do")
    .requiredOption("--plan <hash>", "hash of the run plan stored by the run")
    .requiredOption("--run-id <id>", "the run")
    .requiredOption("--step <name>", "the step")
    .requiredOption("--task-id <id>", "the task id")
    .option("--attempt <n>", "the attempt number, 0 for the first", "0")
    .option("--parents <list>", "parent tasks as step/taskId, comma-separated (none for start)", "")
    .option("--split-index <n>", "this task's element when its parent did a foreach")
    .option("--recover", "every earlier attempt failed: store the error as the step's @catchError says and go on")
    .option("--label <text>", "where the task runs, for the console prefix (e.g. 'slurm job 12_3')")
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      const splitIndex = whole("--split-index", opts.splitIndex as string | undefined);
      const result = await runRemoteTask(
        {
          plan: opts.plan as string,
          runId: opts.runId as string,
          step: opts.step as string,
          taskId: opts.taskId as string,
          attempt: whole("--attempt", opts.attempt as string) ?? 0,
          parents: String(opts.parents ?? "").split(",").map((p) => p.trim()).filter(Boolean),
          ...(splitIndex !== undefined ? { splitIndex } : {}),
          ...(opts.recover ? { recover: true } : {}),
          ...(opts.label ? { label: opts.label as string } : {}),
        },
        library as unknown as Record<string, unknown>,
      );
      if (!result.ok) process.exitCode = EXIT_FAILURE;
      // A socket or handle the step left open must not keep a cluster job alive once it is recorded.
      setTimeout(() => process.exit(), 2000).unref();
    });
}
