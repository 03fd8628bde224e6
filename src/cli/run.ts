/** `metaflow run FLOW [--param v]...`: runs a flow locally. */
import { Command, Option } from "commander";
import * as library from "../index.js";
import type { ParameterSpec } from "../flow/parameter.js";
import { loadFlow } from "../runtime/load-flow.js";
import { parameterEnvVar } from "../runtime/parameters.js";
import { prewarmLaunchers } from "../launchers/builtins.js";
import { runFlow } from "../runtime/run.js";
import { formatTaskError } from "../task/stack.js";
import { EXIT_FAILURE, EXIT_INTERRUPTED } from "./output.js";

const collect = (v: string, acc: string[]): string[] => [...acc, v];

/** Adds the options every run-like command shares. */
export function addRunOptions(cmd: Command): Command {
  return cmd
    .option("--tag <tag>", "add a user tag to the run (repeatable)", collect, [])
    .option("--max-workers <n>", "most tasks running at once", "16")
    .option("--max-num-splits <n>", "most tasks one foreach may create", "100")
    .option("--with <decorator>", "add a decorator to every step, e.g. retry or timeout:seconds=60 (repeatable)", collect, [])
    .option("--run-id-file <file>", "write the run id to this file as soon as it is known")
    .option("--branch <name>", "a @project flow: run on the test branch test.<name>")
    .option("--production", "a @project flow: run on the prod branch")
    .addOption(new Option("--isolation <mode>", "context: a fresh context per task in shared hosts; process: a process per task").choices(["context", "process"]).default("context"));
}

function parameterOption(p: ParameterSpec): Option {
  const help = [p.help ?? "", p.required ? "(required)" : "", p.default !== undefined ? `(default: ${JSON.stringify(p.default)})` : "", `[env ${parameterEnvVar(p.name)}]`]
    .filter(Boolean)
    .join(" ");
  const o = new Option(p.type === "boolean" ? `--${p.name} [value]` : `--${p.name} <value>`, help);
  return o;
}

/** A parameter's option, unless its flag or its attribute is taken by an option of the command. */
function checkClash(cmd: Command, option: Option, name: string, flowFile: string): Option {
  const taken = cmd.options.find((o) => o.long === option.long || o.attributeName() === option.attributeName());
  if (taken) {
    throw new library.FlowLoadError(`Parameter name '${name}' clashes with the 'metaflow ${cmd.name()}' option ${taken.long}: rename the parameter`, flowFile);
  }
  return option;
}

function toInt(flag: string, v: string): number {
  const n = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(n)) {
    throw new library.UsageError(`${flag} expects a whole number, got ${JSON.stringify(v)}`);
  }
  return n;
}

/** Builds the `run` command for `flowFile`, with one option per parameter of the flow. */
export function runCommand(flowFile: string | undefined): Promise<Command> {
  const cmd = addRunOptions(new Command("run").argument("<flow>", "the flow file, e.g. examples/helloworld.ts").description("run a flow locally"));
  return withFlow(cmd, flowFile, undefined);
}

/** Builds `resume FLOW [STEP] [--origin-run-id ID]`: a new run that clones what already finished. */
export function resumeCommand(flowFile: string | undefined): Promise<Command> {
  const cmd = addRunOptions(
    new Command("resume")
      .argument("<flow>", "the flow file")
      .argument("[step]", "rerun from this step (default: from the steps that did not finish)")
      .option("--origin-run-id <id>", "the run to resume (default: your latest run of this flow)")
      .option("--force", "resume even if the run is still running (its tasks may then run twice at once)")
      .description("resume a run: clone its finished tasks, rerun the rest with the current code"),
  );
  return withFlow(cmd, flowFile, "resume");
}

async function withFlow(cmd: Command, flowFile: string | undefined, mode: "resume" | undefined): Promise<Command> {
  if (!flowFile) return cmd;
  // Start a worker host while the flow is bundled and checked.
  prewarmLaunchers();
  const flow = await loadFlow(flowFile, library as unknown as Record<string, unknown>);
  for (const p of flow.parameters) cmd.addOption(checkClash(cmd, parameterOption(p), p.name, flowFile));
  cmd.action(async (_file: string, ...rest: unknown[]) => {
    const opts = (mode === "resume" ? rest[1] : rest[0]) as Record<string, unknown>;
    const resumeStep = mode === "resume" ? (rest[0] as string | undefined) : undefined;
    const parameters: Record<string, unknown> = {};
    for (const p of flow.parameters) {
      const key = new Option(`--${p.name} <v>`).attributeName();
      const v = opts[key];
      if (v !== undefined) parameters[p.name] = v === true ? "true" : v;
    }
    const controller = new AbortController();
    let signals = 0;
    const onSignal = () => {
      signals += 1;
      if (signals > 1) process.exit(EXIT_INTERRUPTED);
      controller.abort();
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    const summary = await runFlow(
      {
        flowFile,
        parameters,
        tags: opts.tag as string[],
        maxWorkers: toInt("--max-workers", opts.maxWorkers as string),
        maxNumSplits: toInt("--max-num-splits", opts.maxNumSplits as string),
        with: opts.with as string[],
        isolation: opts.isolation as "context" | "process",
        ...(opts.runIdFile ? { runIdFile: opts.runIdFile as string } : {}),
        ...(opts.branch !== undefined ? { branch: opts.branch as string } : {}),
        ...(opts.production ? { production: true } : {}),
        signal: controller.signal,
        ...(mode === "resume"
          ? {
              resume: {
                ...(opts.originRunId ? { originRunId: opts.originRunId as string } : {}),
                ...(resumeStep ? { step: resumeStep } : {}),
                ...(opts.force ? { force: true } : {}),
              },
            }
          : {}),
      },
      library as unknown as Record<string, unknown>,
      flow,
    );
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    if (summary.status === "completed") return;
    const resumeHint = `To resume it: npx metaflow resume ${flowFile} --origin-run-id ${summary.runId}\n`;
    if (summary.metadataError) {
      // The metadata could not be written: no task failed, the bookkeeping did.
      process.stderr.write(`Run ${summary.pathspec} stopped: ${summary.metadataError.message}\n`);
      if (!summary.endRecorded) process.stderr.write(`Its end could not be recorded either: it reads as failed once its heartbeat times out.\n`);
      process.stderr.write(resumeHint);
      process.exitCode = EXIT_FAILURE;
      return;
    }
    if (summary.interrupted) {
      process.stderr.write(`Run ${summary.pathspec} was interrupted and marked failed.\n${resumeHint}`);
      process.exitCode = EXIT_INTERRUPTED;
      return;
    }
    const e = summary.error;
    process.stderr.write(`Step '${summary.failedStep}' failed (task ${summary.pathspec}/${summary.failedStep}/${summary.failedTask}): ${e ? `${e.name}: ${e.message}` : "unknown error"}\n`);
    if (e) for (const line of formatTaskError(e).slice(1, 4)) process.stderr.write(`${line}\n`);
    process.stderr.write(resumeHint);
    process.exitCode = EXIT_FAILURE;
  });
  return cmd;
}
