/**
 * Compiles a flow to an Amazon States Language state machine whose task states run each task as
 * an AWS Batch job (`metaflow task ...`). How it works is described in docs/production.md
 * ("How the state machine works"); in short, the state data carries the run id, the foreach
 * index path (`ix`) and the last task (`task`), so every task id is computed, never looked up.
 */
import type { StepNode } from "../../graph/index.js";
import { DeployError } from "../errors.js";
import type { AslMachine, AslState } from "./asl.js";
import {
  resourceRequirements,
  type JobDefinitionSpec,
} from "../../launchers/batch-jobs.js";
import { MAX_TASK_ID_LENGTH, TASK_ID_PREFIX } from "../../task/task-ids.js";
import { runFailedCommandExpression } from "./command.js";
import type { StepRunSettings } from "./settings.js";
import { stepOf, type FlowStructure } from "./structure.js";
import { format, stateName, TaskStates, type CompileOptions } from "./task-states.js";

export type { CompileOptions } from "./task-states.js";

/** What `step-functions create` deploys (and `--only-json` prints). */
export interface CompiledStateMachine {
  readonly name: string;
  readonly definition: AslMachine;
  readonly jobDefinitions: readonly JobDefinitionSpec[];
}

/** Longest state name Step Functions accepts. */
const MAX_STATE_NAME = 80;
/** Longest suffix added to a step name to name one of its states. */
const SUFFIXES = [
  "task",
  "caught",
  "output",
  "run id",
  "map",
  "parallel",
  "choice",
  "again",
  "done",
  "no case",
  "loop",
];
const LONGEST_SUFFIX = Math.max(...SUFFIXES.map((s) => s.length + 1));

const name = stateName;

/**
 * Compiles `structure` with each step's run settings into a state machine and the Batch job
 * definitions it uses; throws a DeployError naming what cannot be deployed and how to fix it.
 * @example
 * const sm = compileStateMachine(analyseFlow(graph), settings, { deployment: "TrainFlow", ... });
 * console.log(JSON.stringify(sm.definition, null, 2));
 */
export function compileStateMachine(
  structure: FlowStructure,
  settings: ReadonlyMap<string, StepRunSettings>,
  options: CompileOptions,
): CompiledStateMachine {
  return new Compiler(structure, settings, options).compile();
}

class Compiler {
  private readonly maxNumSplits: number;
  private readonly tasks: TaskStates;

  constructor(
    private readonly structure: FlowStructure,
    private readonly settings: ReadonlyMap<string, StepRunSettings>,
    private readonly options: CompileOptions,
  ) {
    const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(options.datastoreRoot);
    if (!m) {
      throw new DeployError(
        `The datastore root ${options.datastoreRoot} is not on S3`,
        `Deployed tasks need the S3 datastore, but the datastore root is ${JSON.stringify(options.datastoreRoot)}; set METAFLOW_DEFAULT_DATASTORE=s3 and METAFLOW_DATASTORE_SYSROOT_S3=s3://bucket/prefix`,
      );
    }
    this.maxNumSplits = options.maxNumSplits ?? 100;
    const prefix = m[2]!.replace(/\/+$/, "");
    this.tasks = new TaskStates(structure, settings, options, m[1]!, prefix);
    this.check();
  }

  compile(): CompiledStateMachine {
    const failed = this.tasks.batchState(
      "run-failed",
      {
        "Command.$": runFailedCommandExpression(
          {
            plan: this.options.plan,
            executionId: { expr: "$$.Execution.Id" },
            error: { expr: "$.error.Error" },
          },
          this.options.entrypoint,
        ),
        ResourceRequirements: resourceRequirements({ cpu: 1, memory: 2048, gpu: 0 }),
      },
      this.tasks.jobFor("start"),
      3600,
      null,
    );
    const flow = this.scope("start", undefined, {
      Init: {
        Type: "Pass",
        Parameters: { "Parameters.$": "$.Parameters", ix: "" },
        Next: this.entry("start"),
      },
    });
    const definition: AslMachine = {
      Comment: `Metaflow.ts flow ${this.structure.graph.className}, deployed as ${this.options.deployment}`,
      StartAt: "Parameters given?",
      States: {
        "Parameters given?": {
          Type: "Choice",
          Choices: [{ Variable: "$.Parameters", IsPresent: true, Next: "Run" }],
          Default: "No parameters",
        },
        "No parameters": { Type: "Pass", Result: {}, ResultPath: "$.Parameters", Next: "Run" },
        Run: {
          Type: "Parallel",
          Branches: [{ StartAt: "Init", States: flow }],
          ResultPath: null,
          Catch: [{ ErrorEquals: ["States.ALL"], ResultPath: "$.error", Next: "Record failure" }],
          Next: "Succeeded",
        },
        Succeeded: { Type: "Succeed" },
        "Record failure": { ...failed, ResultPath: null, Next: "Failed" },
        Failed: {
          Type: "Fail",
          Error: "MetaflowRunFailed",
          Cause: "A task failed; see the run's logs with metaflow logs",
        },
      },
    };
    return {
      name: this.options.deployment,
      definition,
      jobDefinitions: [...this.tasks.jobDefinitions.values()],
    };
  }

  /** Refuses what cannot be deployed, before anything is built. */
  private check(): void {
    const { structure } = this;
    for (const step of structure.graph.steps) {
      if (step.name.length + LONGEST_SUFFIX > MAX_STATE_NAME) {
        throw new DeployError(
          `Step name '${step.name}' is too long for Step Functions`,
          `Step '${step.name}' has ${step.name.length} characters; state names are limited to ${MAX_STATE_NAME}, so step names may have at most ${MAX_STATE_NAME - LONGEST_SUFFIX}. Rename the step.`,
        );
      }
    }
    if (structure.repeating.has("start")) {
      throw new DeployError(
        "The start step cannot repeat itself on Step Functions",
        "The start step's switch names start itself; on Step Functions the start task creates the run, so it runs once. Move the repeating work into a step after start.",
      );
    }
    const depth = Math.max(0, ...structure.foreachDepth.values());
    const longest = TASK_ID_PREFIX.length + depth * (1 + String(this.maxNumSplits - 1).length) + 8;
    if (longest > MAX_TASK_ID_LENGTH) {
      throw new DeployError(
        "Foreach nesting too deep for Step Functions task ids",
        `With ${depth} nested foreach levels and --max-num-splits ${this.maxNumSplits}, task ids could reach ${longest} characters (the limit is ${MAX_TASK_ID_LENGTH}); lower --max-num-splits or nest fewer foreach levels.`,
      );
    }
  }

  /** The states of the part of the flow from `entryStep` up to (not including) `stop`. */
  private scope(
    entryStep: string,
    stop: string | undefined,
    states: Record<string, AslState> = {},
  ): Record<string, AslState> {
    const pending = [entryStep];
    const seen = new Set<string>();
    while (pending.length > 0) {
      const step = pending.pop()!;
      if (step === stop || seen.has(step)) continue;
      seen.add(step);
      Object.assign(states, this.stepStates(stepOf(this.structure, step), stop));
      const next = stepOf(this.structure, step).next;
      if (next.kind === "linear") pending.push(next.to);
      else if (next.kind === "switch") pending.push(...Object.values(next.cases));
      else if (next.kind === "branch" || next.kind === "foreach") pending.push(this.joinOf(step));
    }
    return states;
  }

  private joinOf(step: string): string {
    const join = this.structure.joinOf.get(step);
    if (!join) throw new Error(`internal: split '${step}' has no join`);
    return join;
  }

  /** The first state of a step: a repeating step starts its iteration counter first. */
  private entry(step: string): string {
    return this.structure.repeating.has(step) ? name(step, "loop") : step;
  }

  /** `Next` (or the end of the scope) towards `step`. */
  private goTo(step: string, stop: string | undefined): Partial<AslState> {
    return step === stop ? { End: true, OutputPath: "$.task" } : { Next: this.entry(step) };
  }

  /** Every state of one step: id, task, caught task, output read, and the transition states. */
  private stepStates(node: StepNode, stop: string | undefined): Record<string, AslState> {
    const s = node.name;
    const settings = this.tasks.setting(s);
    const needsOutput =
      s === "start" || node.next.kind === "foreach" || node.next.kind === "switch";
    const transition = this.transitionStates(node, stop);
    const afterOutput: Partial<AslState> =
      s === "start" ? { Next: name(s, "run id") } : transition.next;
    const afterTask: Partial<AslState> = needsOutput ? { Next: name(s, "output") } : afterOutput;
    const states: Record<string, AslState> = {};
    if (this.structure.repeating.has(s)) {
      states[name(s, "loop")] = { Type: "Pass", Result: { n: 0 }, ResultPath: "$.loop", Next: s };
    }
    states[s] = {
      Type: "Pass",
      Parameters: this.taskInfo(node),
      ResultPath: "$.task",
      Next: name(s, "task"),
    };
    states[name(s, "task")] = {
      ...this.tasks.taskState(node, settings, false, needsOutput),
      ...(settings.retries > 0
        ? {
            Retry: [
              {
                ErrorEquals: ["States.ALL"],
                IntervalSeconds: settings.retryIntervalSeconds,
                MaxAttempts: settings.retries,
                BackoffRate: 1,
              },
            ],
          }
        : {}),
      ...(settings.catchError
        ? {
            Catch: [
              { ErrorEquals: ["States.ALL"], ResultPath: "$.caught", Next: name(s, "caught") },
            ],
          }
        : {}),
      ...afterTask,
    } as AslState;
    if (settings.catchError)
      states[name(s, "caught")] = {
        ...this.tasks.taskState(node, settings, true, needsOutput),
        ...afterTask,
      } as AslState;
    if (needsOutput)
      states[name(s, "output")] = { ...this.tasks.outputState(s), ...afterOutput } as AslState;
    if (s === "start") {
      states[name(s, "run id")] = {
        Type: "Pass",
        InputPath: "$.out.doc.runId",
        ResultPath: "$.runId",
        ...transition.next,
      } as AslState;
    }
    return { ...states, ...transition.states };
  }

  /** `$.task` of a step: its id, and the task before it (its parent, or for a join the split task). */
  private taskInfo(node: StepNode): Record<string, unknown> {
    const ix = this.structure.repeating.has(node.name)
      ? format(`${TASK_ID_PREFIX}{}-r{}`, "$.ix", "$.loop.n")
      : format(`${TASK_ID_PREFIX}{}`, "$.ix");
    const info: Record<string, unknown> = { step: node.name, "id.$": ix };
    if (node.name !== "start")
      Object.assign(info, { "parentStep.$": "$.task.step", "parentId.$": "$.task.id" });
    return info;
  }

  /** The states after a step's task (and output read): Map, Parallel, Choice, or a plain Next. */
  private transitionStates(
    node: StepNode,
    stop: string | undefined,
  ): { next: Partial<AslState>; states: Record<string, AslState> } {
    const s = node.name;
    const t = node.next;
    switch (t.kind) {
      case "end":
        return { next: { End: true, OutputPath: "$.task" }, states: {} };
      case "linear":
        return { next: this.goTo(t.to, stop), states: {} };
      case "foreach": {
        const join = this.joinOf(s);
        const map: AslState = {
          Type: "Map",
          ItemsPath: "$.out.doc.splits",
          ItemSelector: {
            "runId.$": "$.runId",
            "ix.$": format("{}-{}", "$.ix", "$$.Map.Item.Index"),
            "index.$": "$$.Map.Item.Index",
            "task.$": "$.task",
          },
          MaxConcurrency: this.options.maxWorkers ?? 100,
          ItemProcessor: {
            ProcessorConfig: { Mode: "INLINE" },
            StartAt: this.entry(t.to),
            States: this.scope(t.to, join),
          },
          ResultPath: null,
          Next: this.entry(join),
        };
        return { next: { Next: name(s, "map") }, states: { [name(s, "map")]: map } };
      }
      case "branch": {
        const join = this.joinOf(s);
        const parallel: AslState = {
          Type: "Parallel",
          Branches: t.to.map((to) => ({ StartAt: this.entry(to), States: this.scope(to, join) })),
          ResultPath: null,
          Next: this.entry(join),
        };
        return { next: { Next: name(s, "parallel") }, states: { [name(s, "parallel")]: parallel } };
      }
      case "switch":
        return {
          next: { Next: name(s, "choice") },
          states: this.choiceStates(s, t.cases, t.condition, stop),
        };
    }
  }

  private choiceStates(
    s: string,
    cases: Readonly<Record<string, string>>,
    condition: string,
    stop: string | undefined,
  ): Record<string, AslState> {
    const states: Record<string, AslState> = {};
    const choices = Object.entries(cases).map(([value, to]) => {
      let next: string;
      if (to === s) next = name(s, "again");
      else if (to === stop) next = name(s, "done");
      else next = this.entry(to);
      return { Variable: "$.out.doc.case", StringEquals: value, Next: next };
    });
    states[name(s, "choice")] = { Type: "Choice", Choices: choices, Default: name(s, "no case") };
    states[name(s, "no case")] = {
      Type: "Fail",
      Error: "MetaflowSwitchNoCase",
      Cause: `Step '${s}' picked a case its switch on '${condition}' does not have`,
    };
    if (Object.values(cases).includes(s)) {
      states[name(s, "again")] = {
        Type: "Pass",
        Parameters: { "n.$": "States.MathAdd($.loop.n, 1)" },
        ResultPath: "$.loop",
        Next: s,
      };
    }
    if (stop !== undefined && Object.values(cases).includes(stop)) {
      states[name(s, "done")] = { Type: "Pass", End: true, OutputPath: "$.task" };
    }
    return states;
  }
}
