/**
 * `metaflow task` on its own: what a cluster job (Slurm, AWS Batch) starts for every attempt.
 * `bin/metaflow.js` comes here for `task` so a job does not load the other commands (the flow
 * bundler, the graph parser, the service), which would double each task's start-up cost.
 */
import { Command, CommanderError } from "commander";
import { UsageError } from "../errors.js";
import { reportError } from "./output.js";
import { taskCommand } from "./task.js";

async function main(argv: string[]): Promise<number> {
  const program = new Command("metaflow").exitOverride().configureOutput({ outputError: () => undefined });
  program.addCommand(taskCommand().exitOverride().configureOutput({ outputError: () => undefined }));
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.help") return 0;
      return reportError(new UsageError(`${err.message.replace(/^error: /, "")} (see metaflow task --help)`));
    }
    return reportError(err);
  }
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (err: unknown) => (process.exitCode = reportError(err)),
);
