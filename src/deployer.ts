/**
 * The `Deployer`: deploys a flow to AWS Step Functions from code and follows its runs, through the
 * same library calls as `metaflow step-functions create | trigger | list-runs | delete`.
 */
import * as api from "./api.js";
import { openBackends } from "./backends.js";
import { Run } from "./client/objects.js";
import type { AwsTarget } from "./deploy/step-functions/aws.js";
import type { ProjectInfo } from "./decorators/project.js";
import type { ScheduleSpec } from "./decorators/schedule.js";
import { MetaflowError, UsageError } from "./errors.js";
import type { TaskOutputDocument } from "./task/command.js";
import { startOutputKey } from "./task/task-ids.js";

type Env = Readonly<Record<string, string | undefined>>;

/** Options of a `Deployer`. */
export interface DeployerOptions {
  /** The `@project` test branch `test.<branch>`. @default the user's branch */
  readonly branch?: string;
  /** The `@project` prod branch. @default false */
  readonly production?: boolean;
  /** Settings (`METAFLOW_*`) for deploying and triggering; the client reads runs with the process's. @default process.env */
  readonly env?: Env;
  /** The AWS clients' region, endpoints and credentials. @default the SDK's (environment, profile) */
  readonly aws?: AwsTarget;
}

/** Options of `Deployer.stepFunctions()`: those of `step-functions create`. */
export interface StepFunctionsOptions {
  /** Foreach tasks running at once. @default 100 */
  readonly maxWorkers?: number;
  /** Most tasks one foreach may create. @default 100 */
  readonly maxNumSplits?: number;
  /** Decorators added to every step, as `--with`. @default [] */
  readonly with?: readonly string[];
  /** The production token of a deployment someone else made. */
  readonly authorize?: string;
  /** Start a new production namespace. @default false */
  readonly newToken?: boolean;
}

/** A deployment failed to start a run, or a run failed; `executionArn` names the execution. */
export class DeployedRunError extends MetaflowError {
  constructor(
    readonly executionArn: string,
    message: string,
  ) {
    super(
      "deployed-run",
      `Execution ${executionArn.split(":").at(-1)} did not give a run`,
      message,
    );
  }
}

/**
 * Deploys a flow file.
 * @example
 * const deployed = await new Deployer<TrainFlow>("flows/train.ts").stepFunctions().create();
 * const triggered = await deployed.trigger({ alpha: 0.1 });
 * const run = await triggered.run();        // the client Run, as soon as the execution created it
 * const finished = await triggered.wait();  // the same Run once the execution has ended
 */
export class Deployer<F = unknown> {
  /** Prepares to deploy `flowFile` (no I/O until a method is awaited). */
  constructor(
    readonly flowFile: string,
    readonly options: DeployerOptions = {},
  ) {
    if (options.branch !== undefined && options.production)
      throw new UsageError("Deployer: give branch or production, not both");
  }

  /** The flow on AWS Step Functions, with tasks on AWS Batch. */
  stepFunctions(options: StepFunctionsOptions = {}): StepFunctionsDeployer<F> {
    return new StepFunctionsDeployer<F>(this.flowFile, this.options, options);
  }
}

/** Creates a Step Functions deployment, or finds the one that exists. */
export class StepFunctionsDeployer<F = unknown> {
  /** Made by `Deployer.stepFunctions()`. */
  constructor(
    readonly flowFile: string,
    private readonly options: DeployerOptions,
    private readonly sfn: StepFunctionsOptions,
  ) {}

  /** Compiles and deploys the flow (or updates its deployment), as `step-functions create`. */
  async create(): Promise<DeployedFlow<F>> {
    const { flow, ops } = await this.load();
    const d = await ops.createDeployment(flow, { ...this.branch(), ...this.sfn }, this.context());
    return new DeployedFlow<F>(
      this.flowFile,
      d.name,
      d.arn,
      this.options,
      d.namespace,
      d.project,
      d.schedule,
    );
  }

  /** The deployment that exists already (for triggering from another process). */
  async deployed(): Promise<DeployedFlow<F>> {
    const { flow, ops } = await this.load();
    const d = await ops.findDeployed(flow, this.branch(), this.context());
    return new DeployedFlow<F>(this.flowFile, d.name, d.arn, this.options, d.namespace);
  }

  private branch(): { branch?: string; production?: boolean } {
    return {
      ...(this.options.branch !== undefined ? { branch: this.options.branch } : {}),
      ...(this.options.production ? { production: true } : {}),
    };
  }

  private context() {
    return {
      ...(this.options.env ? { env: this.options.env } : {}),
      ...(this.options.aws ? { aws: this.options.aws } : {}),
    };
  }

  private async load() {
    // Loaded on demand: the bundler, the parser and the AWS SDK stay out of processes that only read results.
    const [{ loadFlow }, ops] = await Promise.all([
      import("./runtime/load-flow.js"),
      import("./deploy/step-functions/operations.js"),
    ]);
    return { flow: await loadFlow(this.flowFile, api as unknown as Record<string, unknown>), ops };
  }
}

/** A deployed flow: `trigger` runs, `list` them, `delete` the deployment. */
export class DeployedFlow<F = unknown> {
  /** Made by `create()` or `deployed()`. */
  constructor(
    readonly flowFile: string,
    /** The state machine's name, e.g. `recsys.prod.TrainFlow`. */
    readonly name: string,
    readonly arn: string,
    private readonly options: DeployerOptions,
    /** `production:<token>`: where the deployed runs are. */
    readonly namespace: string | undefined,
    readonly project?: ProjectInfo,
    readonly schedule?: ScheduleSpec,
  ) {}

  /** Starts a run with `parameters` (checked first, as `metaflow run` checks them). */
  async trigger(parameters: Readonly<Record<string, unknown>> = {}): Promise<TriggeredRun<F>> {
    const [{ loadFlow }, ops] = await Promise.all([
      import("./runtime/load-flow.js"),
      import("./deploy/step-functions/operations.js"),
    ]);
    const flow = await loadFlow(this.flowFile, api as unknown as Record<string, unknown>);
    const choice = {
      ...(this.options.branch !== undefined ? { branch: this.options.branch } : {}),
      ...(this.options.production ? { production: true } : {}),
    };
    const t = await ops.triggerDeployment(flow, choice, parameters, {
      ...(this.options.env ? { env: this.options.env } : {}),
      ...(this.options.aws ? { aws: this.options.aws } : {}),
    });
    return new TriggeredRun<F>(t.executionArn, this.options);
  }

  /** The deployment's executions (triggered or scheduled), newest first, as `list-runs` shows them. */
  async list(): Promise<TriggeredRun<F>[]> {
    const aws = await import("./deploy/step-functions/aws.js");
    return (await aws.listExecutions(this.arn, this.options.aws)).map(
      (e) => new TriggeredRun<F>(e.arn, this.options),
    );
  }

  /** Deletes the state machine and its schedule; the runs stay readable. Resolves false when it was gone. */
  async delete(): Promise<boolean> {
    const aws = await import("./deploy/step-functions/aws.js");
    return aws.deleteDeployment(this.name, this.options.aws);
  }
}

/** One execution of a deployed flow. */
export class TriggeredRun<F = unknown> {
  /** Made by `trigger()` or `list()`. */
  constructor(
    readonly executionArn: string,
    private readonly options: DeployerOptions,
  ) {}

  /** The execution's status: `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`. */
  async status(): Promise<string> {
    const aws = await import("./deploy/step-functions/aws.js");
    return (await aws.describeExecution(this.executionArn, this.options.aws)).status;
  }

  /** The client `Run`, as soon as the execution's start task has created it. */
  async run(options: { timeoutMs?: number; pollMs?: number } = {}): Promise<Run<F>> {
    const timeoutMs = options.timeoutMs ?? 3_600_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const runId = await this.runId();
      if (runId !== undefined) return Run.loadOwn<F>(`${this.flowName()}/${runId}`);
      const aws = await import("./deploy/step-functions/aws.js");
      const e = await aws.describeExecution(this.executionArn, this.options.aws);
      if (e.status !== "RUNNING" && (await this.runId()) === undefined) {
        throw new DeployedRunError(
          this.executionArn,
          `The execution ended (${e.status}${e.error ? `: ${e.error}` : ""}) before its start task created a run${e.cause ? `: ${e.cause.slice(0, 500)}` : ""}`,
        );
      }
      if (Date.now() > deadline)
        throw new DeployedRunError(
          this.executionArn,
          `No run after ${timeoutMs} ms; the start task's Batch job may still be waiting in its queue`,
        );
      await new Promise((r) => setTimeout(r, options.pollMs ?? 1000));
    }
  }

  /** Waits for the execution to end and resolves to its `Run` (successful or not). */
  async wait(options: { timeoutMs?: number; pollMs?: number } = {}): Promise<Run<F>> {
    const aws = await import("./deploy/step-functions/aws.js");
    const timeoutMs = options.timeoutMs ?? 24 * 3_600_000;
    const deadline = Date.now() + timeoutMs;
    while (
      (await aws.describeExecution(this.executionArn, this.options.aws)).status === "RUNNING"
    ) {
      if (Date.now() > deadline)
        throw new DeployedRunError(
          this.executionArn,
          `The execution is still running after ${timeoutMs} ms`,
        );
      await new Promise((r) => setTimeout(r, options.pollMs ?? 1000));
    }
    return this.run({ timeoutMs: 0 });
  }

  /** The flow's class name: the last part of the state machine's name. */
  private flowName(): string {
    const machine = this.executionArn.split(":").at(-2) ?? "";
    return machine.split(".").at(-1) ?? machine;
  }

  /** The run id the start task wrote in its output document, or undefined while there is none. */
  private async runId(): Promise<string | undefined> {
    const key = startOutputKey(this.executionArn);
    if (key === undefined)
      throw new UsageError(`${this.executionArn} is not a Step Functions execution ARN`);
    const backends = openBackends({ env: this.options.env ?? process.env });
    try {
      const doc = await backends.storage.get(key);
      if (!doc) return undefined;
      try {
        return (JSON.parse(doc.toString("utf8")) as TaskOutputDocument).runId;
      } catch {
        // A store that shows a put while it is being written (s3rver does; S3 does not) can
        // hand back a partial document: read it as not there yet and poll again.
        return undefined;
      }
    } finally {
      backends.close();
    }
  }
}
