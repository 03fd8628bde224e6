/**
 * `metaflow task` (internal): runs one attempt of one task from the datastore — what every remote
 * backend launches (a Slurm job, an AWS Batch job of a Step Functions execution). Its flags are
 * the table in src/task/command.ts.
 */
import { Command, Option } from "commander";
import * as library from "../index.js";
import {
  isRunFailed,
  runFailedFromFlags,
  TASK_FLAGS,
  taskCommandFromFlags,
  type FlagSource,
} from "../task/command.js";
import { runFailedCommand, runTaskCommand } from "../task/entrypoint.js";
import { EXIT_FAILURE } from "./output.js";

const collect = (v: string, acc: string[]): string[] => [...acc, v];

/** Commander's options as the flag table reads them. */
function flagSource(cmd: Command): FlagSource {
  const opts = cmd.opts<Record<string, unknown>>();
  const key = (flag: string) => new Option(flag).attributeName();
  return {
    value: (flag) => {
      const v = opts[key(flag)];
      return typeof v === "string" ? v : undefined;
    },
    list: (flag) => (Array.isArray(opts[key(flag)]) ? (opts[key(flag)] as string[]) : []),
    has: (flag) => opts[key(flag)] !== undefined,
  };
}

/** Builds the `task` command. */
export function taskCommand(): Command {
  const cmd = new Command("task").description(
    "(internal) run one attempt of one task from the datastore, as remote backends do",
  );
  for (const f of TASK_FLAGS) {
    if (f.kind === "boolean") cmd.option(f.flag, f.help);
    else if (f.kind === "list")
      cmd.option(`${f.flag} <${f.arg ?? "value"}>`, `${f.help} (repeatable)`, collect, []);
    else cmd.option(`${f.flag} <${f.arg ?? "value"}>`, f.help);
  }
  return cmd.action(async (_opts: unknown, self: Command) => {
    const flags = flagSource(self);
    if (isRunFailed(flags)) {
      process.stdout.write(`${await runFailedCommand(runFailedFromFlags(flags))}\n`);
      return;
    }
    const result = await runTaskCommand(
      taskCommandFromFlags(flags),
      library as unknown as Record<string, unknown>,
    );
    if (!result.ok) process.exitCode = EXIT_FAILURE;
    // A socket or handle the step left open must not keep a cluster job alive once it is recorded.
    setTimeout(() => process.exit(), 2000).unref();
  });
}
