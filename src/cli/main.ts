/** The `metaflow` command line: parse, call the library, print. */
import { Command, CommanderError } from "commander";
import { VERSION } from "../config.js";
import { UsageError } from "../errors.js";
import { EXIT_USAGE, printWarnings, reportError } from "./output.js";

/** A command's builder; `flowArg` is the flow file given after `run`/`resume` (for their parameter flags). */
type Builder = (flowArg: string | undefined) => Promise<Command>;

/**
 * Every command, in help order. Each is loaded only when it is the one asked for (or for the full
 * help), so a command pays for its own dependencies only.
 */
const COMMANDS: ReadonlyArray<readonly [string, Builder]> = [
  ["run", async (f) => (await import("./run.js")).runCommand(f)],
  ["resume", async (f) => (await import("./run.js")).resumeCommand(f)],
  ["show", async () => (await import("./show.js")).showCommand()],
  ["check", async () => (await import("./check.js")).checkCommand()],
  ["logs", async () => (await import("./logs.js")).logsCommand()],
  ["dump", async () => (await import("./dump.js")).dumpCommand()],
  ["tag", async () => (await import("./tag.js")).tagCommand()],
  ["runs", async () => (await import("./runs.js")).runsCommand()],
  ["service", async () => (await import("./service.js")).serviceCommand()],
  ["configure", async () => (await import("./configure.js")).configureCommand()],
  ["task", async () => (await import("./task.js")).taskCommand()],
  ["step-functions", async () => (await import("./step-functions.js")).stepFunctionsCommand()],
  ["card", async () => (await import("./card.js")).cardCommand()],
  ["ui", async () => (await import("./ui.js")).uiCommand()],
  ["slurm", async () => (await import("./slurm.js")).slurmCommand()],
];

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
    const asked = COMMANDS.find(([name]) => name === command);
    // `--version` needs no command; anything else unknown (or the help) shows them all.
    const versionOnly = command === "--version" || command === "-V";
    for (const [name, build] of asked ? [asked] : versionOnly ? [] : COMMANDS) {
      program.addCommand(await build(name === command ? flowArg : undefined));
    }
    for (const c of program.commands) c.exitOverride().configureOutput({ outputError: () => undefined });
    if (argv.length === 0) {
      program.outputHelp();
      return 0;
    }
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      const known = COMMANDS.some(([name]) => name === command);
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help") return 0;
      return reportError(new UsageError(`${err.message.replace(/^error: /, "")} (see ${known ? `metaflow ${command}` : "metaflow"} --help)`));
    }
    return reportError(err);
  }
}

/** Stops a worker process `run` started ahead of time when no run took it (the command failed early). */
async function discardPrewarmed(): Promise<void> {
  if (command === "run" || command === "resume") (await import("../launchers/worker-host.js")).discardWarmHost();
}

const command = process.argv[2];
main(process.argv.slice(2)).then(
  async (code) => {
    await discardPrewarmed();
    process.exitCode = code;
  },
  async (err: unknown) => {
    await discardPrewarmed();
    process.exitCode = reportError(err);
  },
);
export { EXIT_USAGE };
