/**
 * What `metaflow step-functions create | trigger | list-runs | delete` and the `Deployer` do, as
 * library calls over a loaded flow: the CLI prints their results, the Deployer returns them.
 */
import { openBackends } from "../../backends.js";
import type { LoadedFlow } from "../../runtime/load-flow.js";
import { ParameterError } from "../../errors.js";
import { resolveParameters } from "../../task/parameters.js";
import { DeployError } from "../errors.js";
import type { ProjectInfo } from "../project.js";
import type { ScheduleSpec } from "../../decorators/schedule.js";
import * as aws from "./aws.js";
import {
  checkDeploymentRequest,
  deploymentNames,
  deploySettings,
  flowSchedule,
  prepareDeployment,
  rememberToken,
  storeDeploymentPlan,
  type DeploymentRequest,
  type PreparedDeployment,
} from "./deploy.js";
import type { BranchChoice } from "../project.js";

type Env = Readonly<Record<string, string | undefined>>;

/** Where a deployment operation reads its settings and sends its AWS calls. */
export interface DeployContext {
  /** Settings (`METAFLOW_*`) and `METAFLOW_RUN_*` defaults. @default process.env */
  readonly env?: Env;
  /** The AWS clients' region, endpoints and credentials. @default the SDK's */
  readonly aws?: aws.AwsTarget;
}

/** A created (or updated) deployment. */
export interface CreatedDeployment {
  /** The state machine's name, e.g. `recsys.prod.TrainFlow`. */
  readonly name: string;
  readonly arn: string;
  /** `production:<token>`: where the deployed runs are. */
  readonly namespace: string;
  readonly productionToken: string;
  /** Whether this create generated a new token (a new namespace). */
  readonly newToken: boolean;
  readonly project?: ProjectInfo;
  readonly schedule?: ScheduleSpec;
  /** Hash of the run plan the tasks run. */
  readonly plan: string;
}

/** `--only-json`: everything that would be deployed, as one JSON document; calls nothing. */
export function deploymentJson(
  flow: LoadedFlow,
  request: DeploymentRequest,
  env: Env = process.env,
): string {
  const prepared: PreparedDeployment = prepareDeployment(
    flow,
    request,
    deploySettings(env, { placeholders: true }),
    "<run plan hash>",
    undefined,
  );
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

/** Stores the code and run plan, then creates or updates the state machine, its job definitions and its schedule. */
export async function createDeployment(
  flow: LoadedFlow,
  request: DeploymentRequest,
  ctx: DeployContext = {},
): Promise<CreatedDeployment> {
  const env = ctx.env ?? process.env;
  const settings = deploySettings(env);
  if (!settings.sfnRole) {
    throw new DeployError(
      "METAFLOW_SFN_IAM_ROLE is not set",
      "step-functions create needs METAFLOW_SFN_IAM_ROLE: the IAM role Step Functions runs the state machine as (see docs/production.md)",
    );
  }
  const schedule = flowSchedule(flow);
  if (schedule && !settings.schedulerRole) {
    throw new DeployError(
      "METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE is not set",
      `${flow.className} has a @schedule, which needs METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE: the IAM role EventBridge Scheduler starts executions as`,
    );
  }
  // Names, the branch flags and the counts are checked before anything is stored.
  checkDeploymentRequest(request);
  const { name } = deploymentNames(flow, settings.user, request);
  const backends = openBackends({ env });
  let plan: string;
  try {
    plan = await storeDeploymentPlan(flow, request, backends, env);
  } finally {
    backends.close();
  }
  const existing = await aws.findDeployment(name, ctx.aws);
  const prepared = prepareDeployment(flow, request, settings, plan, existing?.record);
  const arn = await aws.createOrUpdate(prepared.stateMachine, {
    ...ctx.aws,
    roleArn: settings.sfnRole,
    record: prepared.token.record,
    ...(prepared.schedule ? { schedule: prepared.schedule } : {}),
    ...(settings.schedulerRole ? { schedulerRoleArn: settings.schedulerRole } : {}),
  });
  rememberToken(settings, prepared);
  return {
    name: prepared.name,
    arn,
    namespace: prepared.namespace,
    productionToken: prepared.token.token,
    newToken: prepared.token.generated,
    ...(prepared.project ? { project: prepared.project } : {}),
    ...(prepared.schedule ? { schedule: prepared.schedule } : {}),
    plan,
  };
}

/** The deployment of `flow` on the chosen branch, or a DeployError saying how to create it. */
export async function findDeployed(
  flow: LoadedFlow,
  choice: BranchChoice,
  ctx: DeployContext = {},
): Promise<{ name: string; arn: string; namespace?: string }> {
  const env = ctx.env ?? process.env;
  const { name } = deploymentNames(flow, deploySettings(env, { placeholders: true }).user, choice);
  const found = await aws.findDeployment(name, ctx.aws);
  if (!found) {
    throw new DeployError(
      `${name} is not deployed`,
      `There is no state machine named ${name}; deploy it with 'metaflow step-functions create ${flow.displayFile}${choice.production ? " --production" : choice.branch !== undefined ? ` --branch ${choice.branch}` : ""}'`,
    );
  }
  return {
    name,
    arn: found.arn,
    ...(found.record ? { namespace: `production:${found.record.token}` } : {}),
  };
}

/**
 * Starts a run of the deployment with `parameters` (checked here first, as `metaflow run` checks
 * them, so a bad value fails before anything starts); returns the execution ARN.
 */
export async function triggerDeployment(
  flow: LoadedFlow,
  choice: BranchChoice,
  parameters: Readonly<Record<string, unknown>>,
  ctx: DeployContext = {},
): Promise<{ executionArn: string; name: string; namespace?: string }> {
  for (const p of flow.parameters) {
    if (p.kind === "include-file" && parameters[p.name] !== undefined) {
      throw new ParameterError(
        p.name,
        `IncludeFile '${p.name}' is read when the flow is deployed, so a triggered run cannot be given another file; deploy again with the new file as its default`,
      );
    }
  }
  resolveParameters(
    flow.parameters.filter((p) => p.kind !== "include-file"),
    parameters,
    ctx.env ?? process.env,
  );
  const deployed = await findDeployed(flow, choice, ctx);
  const executionArn = await aws.startExecution(deployed.arn, parameters, ctx.aws);
  return {
    executionArn,
    name: deployed.name,
    ...(deployed.namespace ? { namespace: deployed.namespace } : {}),
  };
}
