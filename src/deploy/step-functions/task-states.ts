/**
 * The task states of a compiled state machine: the Batch job that runs `metaflow task` for one
 * attempt of a step (or stores its caught error), and the S3 read of a task's output document.
 */
import type { StepNode } from "../../graph/index.js";
import type { AslState } from "./asl.js";
import {
  batchName,
  jobDefinitionFor,
  resourceRequirements,
  type BatchDefaults,
  type JobDefinitionSpec,
} from "../../launchers/batch-jobs.js";
import type { TaskCommandTemplate } from "../../task/command.js";
import { taskCommandExpression, type Expr } from "./command.js";
import type { StepRunSettings } from "./settings.js";
import type { FlowStructure } from "./structure.js";

/** Deployment-wide inputs of the compiler. */
export interface CompileOptions {
  /** The state machine's name, e.g. `recsys.prod.TrainFlow` (see project.ts). */
  readonly deployment: string;
  /** Hash of the run plan stored in the datastore (code package, steps, parameters). */
  readonly plan: string;
  /** The S3 datastore root, `s3://bucket/prefix`; tasks write their output documents under it. */
  readonly datastoreRoot: string;
  /** System tags every deployed run gets (`production:<token>`, `project:...`). */
  readonly systemTags: readonly string[];
  readonly batch: BatchDefaults;
  /** Environment of every container (datastore, metadata service, user). @default {} */
  readonly environment?: Readonly<Record<string, string>>;
  /** Container variables read from Secrets Manager or SSM (name → ARN). @default {} */
  readonly secrets?: Readonly<Record<string, string>>;
  /** Foreach tasks running at once (the Map states' MaxConcurrency). @default 100 */
  readonly maxWorkers?: number;
  /** Most tasks one foreach may create (as the run plan says; checked against task-id length). @default 100 */
  readonly maxNumSplits?: number;
  /** Run-time limit of a task without `@timeout`, in seconds. @default 432000 (5 days, as Metaflow) */
  readonly defaultTimeoutSeconds?: number;
  /** Time a job may wait in the queue on top of its run-time limit before the state gives up. @default 86400 */
  readonly queueAllowanceSeconds?: number;
  /** The program before `task` in the container. @default ["metaflow"] */
  readonly entrypoint?: readonly string[];
}

/** Batch's smallest run-time limit. */
const MIN_BATCH_TIMEOUT = 60;

/** The name of one of a step's states: the step itself, or `<step> <suffix>`. */
export const stateName = (step: string, suffix?: string): string =>
  suffix ? `${step} ${suffix}` : step;

/** `States.Format` over a template whose literal parts were escaped with {@link lit}. */
export const format = (template: string, ...args: string[]): string =>
  `States.Format(${[`'${template}'`, ...args].join(", ")})`;

/** A literal part of a `States.Format` template: braces, quotes and backslashes are escaped. */
export const lit = (s: string): string => s.replace(/[\\'{}]/g, (ch) => `\\${ch}`);

/** Builds the task states of one deployment; collects the job definitions they use. */
export class TaskStates {
  readonly jobDefinitions = new Map<string, JobDefinitionSpec>();

  constructor(
    private readonly structure: FlowStructure,
    private readonly settings: ReadonlyMap<string, StepRunSettings>,
    private readonly options: CompileOptions,
    private readonly bucket: string,
    private readonly prefix: string,
  ) {}

  /** The Batch task state of a step (or, with `caught`, the one that stores the error). */
  taskState(
    node: StepNode,
    settings: StepRunSettings,
    caught: boolean,
    needsOutput: boolean,
  ): AslState {
    const s = node.name;
    const parentOf = format("{}/{}", "$.task.parentStep", "$.task.parentId");
    const entersForeach = [...this.structure.steps.values()].some(
      (n) => n.next.kind === "foreach" && n.next.to === s,
    );
    const template: TaskCommandTemplate<Expr> = {
      plan: this.options.plan,
      step: s,
      taskId: { expr: "$.task.id" },
      // A redriven execution runs a task again from RetryCount 0: the task takes the next free attempt.
      attempt: caught
        ? String(settings.retries + 1)
        : { expr: format("{}", "$$.State.RetryCount") },
      nextFreeAttempt: true,
      run:
        s === "start"
          ? {
              kind: "new",
              executionId: { expr: "$$.Execution.Id" },
              parameters: { expr: "States.JsonToString($.Parameters)" },
              systemTags: this.options.systemTags,
            }
          : { kind: "existing", runId: { expr: "$.runId" } },
      ...(s === "start"
        ? {}
        : node.isJoin
          ? { joinOf: { expr: parentOf } }
          : { parents: { expr: parentOf } }),
      ...(entersForeach ? { splitIndex: { expr: format("{}", "$.index") } } : {}),
      ...(caught ? { caught: { expr: "$.caught.Error" } } : {}),
      ...(needsOutput ? { outputKey: { expr: this.outputKeyExpr(s, false) } } : {}),
      finishRun: node.next.kind === "end",
    };
    const limit = Math.max(
      MIN_BATCH_TIMEOUT,
      Math.ceil(settings.timeoutSeconds ?? this.options.defaultTimeoutSeconds ?? 432_000),
    );
    const overrides: Record<string, unknown> = {
      "Command.$": taskCommandExpression(template, this.options.entrypoint),
      ResourceRequirements: resourceRequirements(settings),
    };
    if (Object.keys(settings.env).length > 0) {
      overrides.Environment = Object.entries(settings.env).map(([Name, Value]) => ({
        Name,
        Value,
      }));
    }
    return this.batchState(caught ? `${s}-caught` : s, overrides, this.jobFor(s), limit);
  }

  batchState(
    jobName: string,
    overrides: Record<string, unknown>,
    job: { queue: string; definition: string },
    limit: number,
    /** What tells the Batch jobs of one state apart (the task id); null for a fixed name. */
    jobSuffix: string | null = "$.task.id",
  ): AslState {
    const base = batchName(`${this.options.deployment}-${jobName}`, 100);
    return {
      Type: "Task",
      Resource: "arn:aws:states:::batch:submitJob.sync",
      Parameters: {
        ...(jobSuffix === null
          ? { JobName: base }
          : { "JobName.$": format(`${lit(base)}-{}`, jobSuffix) }),
        JobQueue: job.queue,
        JobDefinition: job.definition,
        ContainerOverrides: overrides,
        Timeout: { AttemptDurationSeconds: limit },
      },
      ResultPath: null,
      TimeoutSeconds: limit + (this.options.queueAllowanceSeconds ?? 86_400),
    };
  }

  /** Reads the output document a task wrote, into `$.out.doc`. */
  outputState(step: string): AslState {
    return {
      Type: "Task",
      Resource: "arn:aws:states:::aws-sdk:s3:getObject",
      Parameters: { Bucket: this.bucket, "Key.$": this.outputKeyExpr(step, true) },
      ResultSelector: { "doc.$": "States.StringToJson($.Body)" },
      ResultPath: "$.out",
      Retry: [{ ErrorEquals: ["States.ALL"], IntervalSeconds: 2, MaxAttempts: 4, BackoffRate: 2 }],
    };
  }

  /** The key of a task's output document (see ids.ts `outputKey`), relative to the datastore root or as an S3 key. */
  private outputKeyExpr(step: string, s3Key: boolean): string {
    const root = s3Key && this.prefix !== "" ? `${lit(this.prefix)}/` : "";
    return format(
      `${root}sfn/${lit(this.options.deployment)}/{}/${lit(step)}/{}.json`,
      "$$.Execution.Name",
      "$.task.id",
    );
  }

  jobFor(step: string): { queue: string; definition: string } {
    const { queue, definition } = jobDefinitionFor(
      this.options.deployment,
      this.options.batch,
      this.setting(step).batch,
      this.options.environment ?? {},
      this.options.secrets ?? {},
    );
    this.jobDefinitions.set(definition.name, definition);
    return { queue, definition: definition.name };
  }

  setting(step: string): StepRunSettings {
    const s = this.settings.get(step);
    if (!s) throw new Error(`internal: no run settings for step '${step}'`);
    return s;
  }
}
