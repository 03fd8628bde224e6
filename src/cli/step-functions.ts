/**
 * `metaflow step-functions create | trigger | list-runs | delete FLOW`: deploy a flow to AWS Step
 * Functions + AWS Batch. Thin: parse, call src/deploy/step-functions/operations.ts, print.
 */
import { Command, Option } from "commander";
import * as library from "../index.js";
import { listExecutions, deleteDeployment } from "../deploy/step-functions/aws.js";
import {
  createDeployment,
  deploymentJson,
  findDeployed,
  triggerDeployment,
} from "../deploy/step-functions/operations.js";
import type { DeploymentRequest } from "../deploy/step-functions/deploy.js";
import { loadFlow, type LoadedFlow } from "../runtime/load-flow.js";

const collect = (v: string, acc: string[]): string[] => [...acc, v];

/** A count as typed; whether it is allowed (≥ 1) is checked where the deployment is prepared. */
function toCount(flag: string, v: string): number {
  if (!/^\s*\d+\s*$/.test(v))
    throw new library.UsageError(`${flag} expects a whole number ≥ 1, got ${JSON.stringify(v)}`);
  return Number(v);
}

function branchOptions(cmd: Command): Command {
  return cmd
    .argument("<flow>", "the flow file")
    .option("--branch <name>", "the test branch test.<name> of the @project")
    .option("--production", "the prod branch of the @project");
}

function branchOf(opts: Record<string, unknown>): { branch?: string; production?: boolean } {
  return {
    ...(opts.branch !== undefined ? { branch: String(opts.branch) } : {}),
    ...(opts.production ? { production: true } : {}),
  };
}

const load = (file: string): Promise<LoadedFlow> =>
  loadFlow(file, library as unknown as Record<string, unknown>);

async function create(file: string, opts: Record<string, unknown>): Promise<void> {
  if (opts.newToken && opts.authorize !== undefined)
    throw new library.UsageError("Give --new-token or --authorize TOKEN, not both");
  const flow = await load(file);
  const request: DeploymentRequest = {
    ...branchOf(opts),
    with: opts.with as string[],
    maxWorkers: toCount("--max-workers", opts.maxWorkers as string),
    maxNumSplits: toCount("--max-num-splits", opts.maxNumSplits as string),
    ...(opts.authorize !== undefined ? { authorize: String(opts.authorize) } : {}),
    ...(opts.newToken ? { newToken: true } : {}),
  };
  if (opts.onlyJson) {
    process.stdout.write(`${deploymentJson(flow, request)}\n`);
    return;
  }
  const d = await createDeployment(flow, request);
  process.stdout.write(
    `Deployed ${flow.className} as ${d.name} (${d.arn}).\n` +
      `Its runs are in the namespace ${d.namespace}${d.newToken ? " (a new production token)" : ""}.\n` +
      (d.schedule ? `Schedule: ${d.schedule.expression} ${d.schedule.timezone}.\n` : "") +
      `To let someone else deploy over it, give them the token: step-functions create --authorize ${d.productionToken}\n`,
  );
}

/** `--name value` or `--name=value` after the flow file, as `metaflow run` takes parameters. */
function parameterArgs(args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") continue;
    const eq = arg.indexOf("=");
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    if (!flag.startsWith("--") || flag.length < 3)
      throw new library.UsageError(
        `trigger: expected --name value (or --name=value) after the flow file, got ${JSON.stringify(arg)}`,
      );
    if (eq >= 0) {
      out[flag.slice(2)] = arg.slice(eq + 1);
      continue;
    }
    const value = args[i + 1];
    if (value === undefined || value.startsWith("--"))
      throw new library.UsageError(
        `trigger: parameter ${flag} needs a value (${flag} VALUE or ${flag}=VALUE)`,
      );
    out[flag.slice(2)] = value;
    i++;
  }
  return out;
}

/** The `step-functions` command group. */
export function stepFunctionsCommand(): Command {
  const group = new Command("step-functions").description(
    "deploy flows to AWS Step Functions, with tasks on AWS Batch (see docs/production.md)",
  );
  group.addCommand(
    branchOptions(new Command("create"))
      .description(
        "compile the flow to a state machine and create (or update) it, with its schedule",
      )
      .option("--only-json", "print the state machine, job definitions and schedule; call nothing")
      .option("--max-workers <n>", "most foreach tasks running at once", "100")
      .option("--max-num-splits <n>", "most tasks one foreach may create", "100")
      .option(
        "--with <decorator>",
        "add a decorator to every step, e.g. retry or batch:queue=gpu (repeatable)",
        collect,
        [],
      )
      .option("--authorize <token>", "the production token of a deployment someone else made")
      .addOption(new Option("--new-token", "start a new production namespace"))
      .action((file: string, opts: Record<string, unknown>) => create(file, opts)),
  );
  group.addCommand(
    branchOptions(new Command("trigger"))
      .description("start a run of the deployed flow: trigger FLOW [--name value]...")
      .allowUnknownOption()
      .allowExcessArguments()
      .action(async (file: string, opts: Record<string, unknown>, cmd: Command) => {
        const flow = await load(file);
        const t = await triggerDeployment(flow, branchOf(opts), parameterArgs(cmd.args.slice(1)));
        process.stdout.write(
          `Started ${t.executionArn}\n${t.namespace ? `Its run will be in the namespace ${t.namespace}.\n` : ""}`,
        );
      }),
  );
  group.addCommand(
    branchOptions(new Command("list-runs"))
      .description("the deployed flow's executions, newest first")
      .action(async (file: string, opts: Record<string, unknown>) => {
        const { arn, name } = await findDeployed(await load(file), branchOf(opts));
        const executions = await listExecutions(arn);
        if (executions.length === 0) process.stdout.write(`${name} has no executions yet.\n`);
        for (const e of executions) {
          process.stdout.write(
            `${e.name}  ${e.status}  ${e.startDate?.toISOString() ?? ""}  ${e.stopDate?.toISOString() ?? ""}\n`,
          );
        }
      }),
  );
  group.addCommand(
    branchOptions(new Command("delete"))
      .description("delete the deployed state machine and its schedule (stored runs stay)")
      .action(async (file: string, opts: Record<string, unknown>) => {
        const { name } = await findDeployed(await load(file), branchOf(opts));
        await deleteDeployment(name);
        process.stdout.write(`Deleted ${name}; its runs stay readable in the client.\n`);
      }),
  );
  for (const sub of group.commands)
    sub.exitOverride().configureOutput({ outputError: () => undefined });
  return group;
}
