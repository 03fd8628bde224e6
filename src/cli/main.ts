/** The `metaflow` command line: parse, call the library, print. */
import { Command, CommanderError } from "commander";
import { VERSION } from "../config.js";
import { UsageError } from "../errors.js";
import { discardPrewarmed } from "../launchers/builtins.js";
import { cardCommand } from "./card.js";
import { checkCommand } from "./check.js";
import { dumpCommand } from "./dump.js";
import { logsCommand } from "./logs.js";
import { configureCommand } from "./configure.js";
import { EXIT_USAGE, printWarnings, reportError } from "./output.js";
import { resumeCommand, runCommand } from "./run.js";
import { runsCommand } from "./runs.js";
import { serviceCommand } from "./service.js";
import { showCommand } from "./show.js";
import { slurmCommand } from "./slurm.js";
import { stepFunctionsCommand } from "./step-functions.js";
import { tagCommand } from "./tag.js";
import { taskCommand } from "./task.js";
import { uiCommand } from "./ui.js";

/** The first positional argument after the command name: the flow file or pathspec. */
function firstPositional(argv: readonly string[]): string | undefined {
  const takesValue = new Set(["--tag", "--max-workers", "--max-num-splits", "--with", "--run-id-file", "--isolation", "--origin-run-id", "--namespace", "--branch"]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (takesValue.has(a)) i++;
    else if (!a.startsWith("-")) return a;
  }
  return undefined;
}

async function main(argv: string[]): Promise<number> {
  printWarnings();
  const program = new Command("metaflow")
    .description("Metaflow.ts: run flows of steps in TypeScript")
    .version(VERSION)
    // Options after a command name belong to that command (`service token create --database-url X`).
    .enablePositionalOptions()
    .exitOverride()
    // Commander's own error lines are dropped: every error is reported once, by reportError.
    .configureOutput({ outputError: () => undefined })
    .showSuggestionAfterError(true);
  const command = argv[0];
  try {
    // With a flow file, `run`/`resume` know the flow's parameters (also for --help).
    const flowArg = firstPositional(argv.slice(1));
    program.addCommand(await runCommand(command === "run" ? flowArg : undefined));
    program.addCommand(await resumeCommand(command === "resume" ? flowArg : undefined));
    program.addCommand(showCommand());
    program.addCommand(checkCommand());
    program.addCommand(logsCommand());
    program.addCommand(dumpCommand());
    program.addCommand(tagCommand());
    program.addCommand(runsCommand());
    program.addCommand(serviceCommand());
    program.addCommand(configureCommand());
    program.addCommand(taskCommand());
    program.addCommand(stepFunctionsCommand());
    program.addCommand(cardCommand());
    program.addCommand(uiCommand());
    program.addCommand(slurmCommand());
    for (const c of program.commands) c.exitOverride().configureOutput({ outputError: () => undefined });
    if (argv.length === 0) {
      program.outputHelp();
      return 0;
    }
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help") return 0;
      return reportError(new UsageError(`${err.message.replace(/^error: /, "")} (see metaflow ${command ?? ""} --help)`));
    }
    return reportError(err);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    discardPrewarmed();
    process.exitCode = code;
  },
  (err: unknown) => {
    discardPrewarmed();
    process.exitCode = reportError(err);
  },
);
export { EXIT_USAGE };
