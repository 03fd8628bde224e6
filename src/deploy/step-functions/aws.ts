/**
 * The calls to AWS behind `step-functions create | trigger | list-runs | delete`: thin wrappers over
 * the official SDK clients (Step Functions, EventBridge Scheduler, Batch), loaded on first use.
 * Everything they send is built and tested elsewhere (compile.ts, schedule.ts, project.ts); these
 * functions cannot be tested without an AWS account, so they hold no logic worth testing.
 */
import { randomUUID } from "node:crypto";
import { createHash } from "node:crypto";
import type { ScheduleSpec } from "../../decorators/schedule.js";
import { recordFromTags, recordToTags, type DeploymentRecord } from "../project.js";
import { registerJobDefinitionInput } from "../../launchers/batch-jobs.js";
import type { CompiledStateMachine } from "./compile.js";

type Sfn = typeof import("@aws-sdk/client-sfn");
type Scheduler = typeof import("@aws-sdk/client-scheduler");
type Batch = typeof import("@aws-sdk/client-batch");

/**
 * Where the calls go and as whom: the one place the AWS clients are configured, so a test (or a
 * private endpoint) can point them elsewhere.
 */
export interface AwsTarget {
  /** @default the SDK's (AWS_REGION, the profile) */
  readonly region?: string;
  /** Endpoint URLs per service. @default the SDK's (AWS, or `AWS_ENDPOINT_URL_SFN`, ...) */
  readonly endpoints?: {
    readonly sfn?: string;
    readonly scheduler?: string;
    readonly batch?: string;
  };
  /** Static credentials. @default the SDK's provider chain */
  readonly credentials?: {
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
    readonly sessionToken?: string;
  };
}

let sdk: Promise<{ sfn: Sfn; scheduler: Scheduler; batch: Batch }> | undefined;

/** The three SDK modules, loaded once, when a command first needs them. */
function loadSdk(): Promise<{ sfn: Sfn; scheduler: Scheduler; batch: Batch }> {
  sdk ??= Promise.all([
    import("@aws-sdk/client-sfn"),
    import("@aws-sdk/client-scheduler"),
    import("@aws-sdk/client-batch"),
  ]).then(([sfn, scheduler, batch]) => ({ sfn, scheduler, batch }));
  return sdk;
}

async function clients(target: AwsTarget) {
  const m = await loadSdk();
  const config = (endpoint: string | undefined) => ({
    ...(target.region ? { region: target.region } : {}),
    ...(target.credentials ? { credentials: target.credentials } : {}),
    ...(endpoint ? { endpoint } : {}),
  });
  return {
    m,
    sfn: new m.sfn.SFNClient(config(target.endpoints?.sfn)),
    scheduler: new m.scheduler.SchedulerClient(config(target.endpoints?.scheduler)),
    batch: new m.batch.BatchClient(config(target.endpoints?.batch)),
  };
}

/** A deployed state machine: its ARN and the record in its tags. */
export interface FoundDeployment {
  readonly arn: string;
  readonly record: DeploymentRecord | undefined;
}

/** The state machine named `name`, with its deployment record, or undefined. */
export async function findDeployment(
  name: string,
  target: AwsTarget = {},
): Promise<FoundDeployment | undefined> {
  const { m, sfn } = await clients(target);
  let nextToken: string | undefined;
  do {
    const page = await sfn.send(new m.sfn.ListStateMachinesCommand({ nextToken }));
    const hit = page.stateMachines?.find((s) => s.name === name);
    if (hit?.stateMachineArn) {
      const tags = await sfn.send(
        new m.sfn.ListTagsForResourceCommand({ resourceArn: hit.stateMachineArn }),
      );
      return { arn: hit.stateMachineArn, record: recordFromTags(tags.tags ?? []) };
    }
    nextToken = page.nextToken;
  } while (nextToken);
  return undefined;
}

/** What `create` needs besides the compiled state machine. */
export interface CreateOptions extends AwsTarget {
  /** IAM role Step Functions runs as (submit Batch jobs, read S3). METAFLOW_SFN_IAM_ROLE. */
  readonly roleArn: string;
  readonly record: DeploymentRecord;
  readonly schedule?: ScheduleSpec;
  /** IAM role EventBridge Scheduler starts executions as. METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE. */
  readonly schedulerRoleArn?: string;
}

/** Registers the job definitions, creates or updates the state machine, and sets (or removes) its schedule. */
export async function createOrUpdate(
  compiled: CompiledStateMachine,
  options: CreateOptions,
): Promise<string> {
  const { m, sfn, batch } = await clients(options);
  for (const spec of compiled.jobDefinitions) {
    await batch.send(
      new m.batch.RegisterJobDefinitionCommand(
        registerJobDefinitionInput(spec, { "metaflow-ts:deployment": compiled.name }) as never,
      ),
    );
  }
  const definition = JSON.stringify(compiled.definition);
  const tags = recordToTags(options.record);
  const existing = await findDeployment(compiled.name, options);
  let arn: string;
  if (existing) {
    await sfn.send(
      new m.sfn.UpdateStateMachineCommand({
        stateMachineArn: existing.arn,
        definition,
        roleArn: options.roleArn,
      }),
    );
    await sfn.send(new m.sfn.TagResourceCommand({ resourceArn: existing.arn, tags }));
    arn = existing.arn;
  } else {
    const made = await sfn.send(
      new m.sfn.CreateStateMachineCommand({
        name: compiled.name,
        definition,
        roleArn: options.roleArn,
        type: "STANDARD",
        tags,
      }),
    );
    arn = made.stateMachineArn!;
  }
  await setSchedule(compiled.name, arn, options);
  return arn;
}

/** EventBridge Scheduler names allow 64 characters of letters, digits, `-`, `_` and `.`. */
export function scheduleName(deployment: string): string {
  const plain = deployment.replace(/[^A-Za-z0-9._-]/g, "_");
  if (plain.length <= 64) return plain;
  return `${plain.slice(0, 53)}-${createHash("sha256").update(deployment).digest("hex").slice(0, 10)}`;
}

async function setSchedule(deployment: string, arn: string, options: CreateOptions): Promise<void> {
  const { m, scheduler } = await clients(options);
  const Name = scheduleName(deployment);
  if (!options.schedule) {
    await scheduler.send(new m.scheduler.DeleteScheduleCommand({ Name })).catch((err: Error) => {
      if (err.name !== "ResourceNotFoundException") throw err;
    });
    return;
  }
  if (!options.schedulerRoleArn) {
    throw new Error(
      "A @schedule needs METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE: the IAM role EventBridge Scheduler starts executions as",
    );
  }
  const input = {
    Name,
    ScheduleExpression: options.schedule.expression,
    ScheduleExpressionTimezone: options.schedule.timezone,
    FlexibleTimeWindow: { Mode: "OFF" as const },
    Target: {
      Arn: arn,
      RoleArn: options.schedulerRoleArn,
      Input: JSON.stringify({ Parameters: {} }),
    },
  };
  try {
    await scheduler.send(new m.scheduler.UpdateScheduleCommand(input));
  } catch (err) {
    if ((err as Error).name !== "ResourceNotFoundException") throw err;
    await scheduler.send(new m.scheduler.CreateScheduleCommand(input));
  }
}

/**
 * Starts an execution with parameter values (strings from the command line, typed values from
 * code); returns its ARN (`arn:...:execution:<sm>:<name>`).
 */
export async function startExecution(
  arn: string,
  parameters: Readonly<Record<string, unknown>>,
  target: AwsTarget = {},
): Promise<string> {
  const { m, sfn } = await clients(target);
  const out = await sfn.send(
    new m.sfn.StartExecutionCommand({
      stateMachineArn: arn,
      name: randomUUID(),
      input: JSON.stringify({ Parameters: parameters }),
    }),
  );
  return out.executionArn!;
}

/** One execution, as `list-runs` prints it. */
export interface ExecutionSummary {
  readonly arn: string;
  readonly name: string;
  readonly status: string;
  readonly startDate?: Date;
  readonly stopDate?: Date;
}

/** The newest executions of a state machine, newest first. */
export async function listExecutions(
  arn: string,
  target: AwsTarget = {},
  max = 100,
): Promise<ExecutionSummary[]> {
  const { m, sfn } = await clients(target);
  const out = await sfn.send(
    new m.sfn.ListExecutionsCommand({ stateMachineArn: arn, maxResults: max }),
  );
  return (out.executions ?? []).map((e) => ({
    arn: e.executionArn ?? "",
    name: e.name ?? "",
    status: e.status ?? "UNKNOWN",
    ...(e.startDate ? { startDate: e.startDate } : {}),
    ...(e.stopDate ? { stopDate: e.stopDate } : {}),
  }));
}

/** Deletes a deployment's schedule and state machine (job definitions stay registered; runs stay stored). */
export async function deleteDeployment(name: string, target: AwsTarget = {}): Promise<boolean> {
  const { m, sfn, scheduler } = await clients(target);
  await scheduler
    .send(new m.scheduler.DeleteScheduleCommand({ Name: scheduleName(name) }))
    .catch((err: Error) => {
      if (err.name !== "ResourceNotFoundException") throw err;
    });
  const found = await findDeployment(name, target);
  if (!found) return false;
  await sfn.send(new m.sfn.DeleteStateMachineCommand({ stateMachineArn: found.arn }));
  return true;
}

/** One execution's status (`RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`, ...). */
export async function describeExecution(
  executionArn: string,
  target: AwsTarget = {},
): Promise<ExecutionSummary & { readonly error?: string; readonly cause?: string }> {
  const { m, sfn } = await clients(target);
  const e = await sfn.send(new m.sfn.DescribeExecutionCommand({ executionArn }));
  return {
    arn: executionArn,
    name: e.name ?? "",
    status: e.status ?? "UNKNOWN",
    ...(e.startDate ? { startDate: e.startDate } : {}),
    ...(e.stopDate ? { stopDate: e.stopDate } : {}),
    ...(e.error ? { error: e.error } : {}),
    ...(e.cause ? { cause: e.cause } : {}),
  };
}
