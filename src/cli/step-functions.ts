/**
 * `metaflow step-functions create | trigger | list-runs | delete FLOW`: deploy a flow to AWS Step
 * Functions + AWS Batch. Thin: parse, call src/deploy/step-functions, print. Not registered in
 * main.ts yet: it needs the flow decorators (`@project`, `@schedule`) and `metaflow task`.
 */
import { Command, Option } from "commander";
import * as library from "../index.js";
import { DeployError } from "../deploy/errors.js";
import type { ProjectOptions } from "../deploy/project.js";
import type { ScheduleOptions } from "../deploy/schedule.js";
import * as aws from "../deploy/step-functions/aws.js";
import {
  deploySettings,
  prepareDeployment,
  rememberToken,
  type DeploySettings,
  type PreparedDeployment,
} from "../deploy/step-functions/deploy.js";
import { storeCodePackage } from "../datastore/code-package.js";
import { openBackends } from "../backends.js";
import { loadFlow, type LoadedFlow } from "../runtime/load-flow.js";
import { resolveParameters } from "../runtime/parameters.js";

const collect = (v: string, acc: string[]): string[] => [...acc, v];

/** `@project` and `@schedule` of a flow. TODO(#11): read them from the flow-decorator contract. */
function flowDeployOptions(_flow: LoadedFlow): {
  project?: ProjectOptions;
  schedule?: ScheduleOptions;
} {
  return {};
}

/** Placeholders `--only-json` prints where a deploy setting is not configured. */
const ONLY_JSON_ENV = {
  METAFLOW_DATASTORE_SYSROOT_S3: "s3://<METAFLOW_DATASTORE_SYSROOT_S3>",
  METAFLOW_SERVICE_URL: "<METAFLOW_SERVICE_URL>",
  METAFLOW_BATCH_JOB_QUEUE: "<METAFLOW_BATCH_JOB_QUEUE>",
  METAFLOW_BATCH_CONTAINER_IMAGE: "<METAFLOW_BATCH_CONTAINER_IMAGE>",
};

function toCount(flag: string, v: string): number {
  if (!/^\s*\d+\s*$/.test(v) || Number(v) < 1)
    throw new library.UsageError(`${flag} expects a whole number ≥ 1, got ${JSON.stringify(v)}`);
  return Number(v);
}

function branchOptions(cmd: Command): Command {
  return cmd
    .option("--branch <name>", "deploy the test branch test.<name> of the @project")
    .option("--production", "deploy the prod branch of the @project");
}

/** What `create --only-json` prints: everything that would be deployed, as one JSON document. */
export function deploymentJson(prepared: PreparedDeployment): string {
  return JSON.stringify(
    {
      name: prepared.name,
      namespace: prepared.namespace,
      stateMachine: prepared.stateMachine.definition,
      jobDefinitions: prepared.stateMachine.jobDefinitions,
      schedule: prepared.schedule ?? null,
    },
    null,
    2,
  );
}

async function create(file: string, opts: Record<string, any>): Promise<void> {
  const flow = await loadFlow(file, library as unknown as Record<string, unknown>);
  const request = {
    ...flowDeployOptions(flow),
    ...(opts.branch !== undefined ? { branch: String(opts.branch) } : {}),
    ...(opts.production ? { production: true } : {}),
    with: opts.with as string[],
    maxWorkers: toCount("--max-workers", opts.maxWorkers),
    maxNumSplits: toCount("--max-num-splits", opts.maxNumSplits),
    ...(opts.authorize !== undefined ? { authorize: String(opts.authorize) } : {}),
    ...(opts.newToken ? { newToken: true } : {}),
  };
  if (opts.onlyJson) {
    const settings = deploySettings({ ...ONLY_JSON_ENV, ...process.env });
    process.stdout.write(
      `${deploymentJson(prepareDeployment(flow, request, settings, "<code package hash>", undefined))}\n`,
    );
    return;
  }
  const settings = deploySettings();
  const roleArn = requireEnv(
    "METAFLOW_SFN_IAM_ROLE",
    "the IAM role Step Functions runs the state machine as",
  );
  const codePackage = await storeCode(flow, settings);
  const name = prepareDeployment(flow, request, settings, codePackage, undefined).name;
  const existing = await aws.findDeployment(name);
  const prepared = prepareDeployment(flow, request, settings, codePackage, existing?.record);
  const arn = await aws.createOrUpdate(prepared.stateMachine, {
    roleArn,
    record: prepared.token.record,
    ...(prepared.schedule ? { schedule: prepared.schedule } : {}),
    ...(process.env.METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE
      ? { schedulerRoleArn: process.env.METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE }
      : {}),
  });
  rememberToken(settings, prepared);
  process.stdout.write(
    `Deployed ${flow.className} as ${prepared.name} (${arn}).\n` +
      `Its runs are in the namespace ${prepared.namespace}${prepared.token.generated ? " (a new production token)" : ""}.\n` +
      (prepared.schedule
        ? `Schedule: ${prepared.schedule.expression} ${prepared.schedule.timezone}.\n`
        : "") +
      `To let someone else deploy over it, give them the token: step-functions create --authorize ${prepared.token.token}\n`,
  );
}

function requireEnv(key: string, what: string): string {
  const v = process.env[key]?.trim();
  if (!v) throw new DeployError(`${key} is not set`, `step-functions create needs ${key}: ${what}`);
  return v;
}

async function storeCode(flow: LoadedFlow, settings: DeploySettings): Promise<string> {
  const backends = openBackends({ env: { ...process.env, ...settings.environment } });
  try {
    const code = await storeCodePackage(
      backends.store,
      flow.bundle,
      flow.displayFile,
      flow.className,
      backends.localDir,
    );
    return code.hash;
  } finally {
    backends.close();
  }
}

/** The deployment name of FLOW with the branch flags, and its state machine on AWS (or an error naming it). */
async function deployed(
  file: string,
  opts: Record<string, any>,
): Promise<{ flow: LoadedFlow; name: string; arn: string }> {
  const flow = await loadFlow(file, library as unknown as Record<string, unknown>);
  const settings = deploySettings({ ...ONLY_JSON_ENV, ...process.env });
  const request = {
    ...flowDeployOptions(flow),
    ...(opts.branch !== undefined ? { branch: String(opts.branch) } : {}),
    ...(opts.production ? { production: true } : {}),
  };
  const { name } = prepareDeployment(flow, request, settings, "-", undefined);
  const found = await aws.findDeployment(name);
  if (!found)
    throw new DeployError(
      `${name} is not deployed`,
      `There is no state machine named ${name}; deploy it with 'metaflow step-functions create ${file}'`,
    );
  return { flow, name, arn: found.arn };
}

/** The `step-functions` command group. */
export function stepFunctionsCommand(): Command {
  const group = new Command("step-functions").description(
    "deploy flows to AWS Step Functions, with tasks on AWS Batch",
  );
  group.addCommand(
    branchOptions(new Command("create").argument("<flow>", "the flow file"))
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
      .action((file: string, opts: Record<string, any>) => create(file, opts)),
  );
  group.addCommand(
    branchOptions(new Command("trigger").argument("<flow>", "the flow file"))
      .description("start a run of the deployed flow; parameters as --name value after --")
      .allowUnknownOption()
      .action(async (file: string, opts: Record<string, any>, cmd: Command) => {
        const { flow, arn } = await deployed(file, opts);
        const given = parameterArgs(cmd.args.slice(1));
        resolveParameters(flow.parameters, given); // a bad value fails here, before anything starts
        const execution = await aws.startExecution(arn, given);
        process.stdout.write(`Started ${execution}\n`);
      }),
  );
  group.addCommand(
    branchOptions(new Command("list-runs").argument("<flow>", "the flow file"))
      .description("the deployed flow's executions, newest first")
      .action(async (file: string, opts: Record<string, any>) => {
        const { arn } = await deployed(file, opts);
        for (const e of await aws.listExecutions(arn)) {
          process.stdout.write(
            `${e.name}  ${e.status}  ${e.startDate?.toISOString() ?? ""}  ${e.stopDate?.toISOString() ?? ""}\n`,
          );
        }
      }),
  );
  group.addCommand(
    branchOptions(new Command("delete").argument("<flow>", "the flow file"))
      .description("delete the deployed state machine and its schedule (stored runs stay)")
      .action(async (file: string, opts: Record<string, any>) => {
        const { name } = await deployed(file, opts);
        await aws.deleteDeployment(name);
        process.stdout.write(`Deleted ${name}.\n`);
      }),
  );
  return group;
}

/** `--name value` pairs after the flow file. */
function parameterArgs(args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]!;
    const value = args[i + 1];
    if (!flag.startsWith("--") || value === undefined)
      throw new library.UsageError(
        `trigger: expected --name value pairs, got ${JSON.stringify(flag)}`,
      );
    out[flag.slice(2)] = value;
    i++;
  }
  return out;
}
