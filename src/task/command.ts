/**
 * The `metaflow task` command line: what every remote backend (a Slurm job, an AWS Batch job of a
 * Step Functions execution) runs to execute one attempt of one task. One table of flags serves the
 * CLI (its options and help), the state machine compiler (which builds command lines, some values
 * evaluated by Step Functions) and the parser, so they cannot drift apart.
 */
import { UsageError } from "../errors.js";
import { outputKeyProblem } from "./task-ids.js";

/** A task's place in the run: `step/taskId`. */
export interface TaskRef {
  readonly step: string;
  readonly taskId: string;
}

/** How the run of a task is found: given, or created (idempotently) by a deployed start task. */
export type RunSelector =
  | { readonly kind: "existing"; readonly runId: string }
  | {
      /** The start task of a deployed run: create the run, once per execution. */
      readonly kind: "new";
      /** The Step Functions execution ARN (`$$.Execution.Id`): the idempotency key of the run. */
      readonly executionId: string;
      /** Parameter values as a JSON object (the execution input); resolved with the flow's defaults. */
      readonly parameters: string;
      /** System tags of the new run besides the usual ones (`production:<token>`, `project:...`). */
      readonly systemTags: readonly string[];
    };

/** Everything `metaflow task` is told when it runs one attempt of one task. */
export interface TaskCommand {
  /** Hash of the stored run plan (steps, code package, parameters, decorators). */
  readonly plan: string;
  readonly step: string;
  readonly taskId: string;
  /** The attempt number (0 for the first). */
  readonly attempt: number;
  /**
   * `--min-attempt`: when `attempt` is already recorded (a redriven execution runs a task again),
   * take the next attempt number not recorded yet. `--attempt` is exact. @default false
   */
  readonly nextFreeAttempt: boolean;
  readonly run: RunSelector;
  /** Parent tasks in the same run (none for start and for a join told `joinOf`). */
  readonly parents: readonly TaskRef[];
  /** A join: the task that opened the split it closes; the task finds its parents from it. */
  readonly joinOf?: TaskRef;
  /** This task's element when its parent did a foreach. */
  readonly splitIndex?: number;
  /** Every earlier attempt failed: store the last one's error (as the step's plan says) and go on. */
  readonly recover: boolean;
  /** With `recover`: the error to store when no failed attempt recorded one (a killed container). */
  readonly caught?: string;
  /** Write the task's output document (run id, transition taken) to this datastore key. */
  readonly outputKey?: string;
  /** The end step: mark the run completed when the task succeeds. */
  readonly finishRun: boolean;
  /** Where the task runs, for the console prefix, e.g. `slurm job 77_3`. */
  readonly label?: string;
}

/**
 * `metaflow task --plan H --run-failed-for EXECUTION --error NAME`: what a state machine runs when
 * its execution fails, to record the run it created as failed.
 */
export interface RunFailedCommand {
  readonly plan: string;
  /** The execution ARN (`$$.Execution.Id`). */
  readonly executionId: string;
  /** The Step Functions error name, e.g. `States.TaskFailed`. */
  readonly error: string;
}

/** How a flag takes its value. */
type FlagKind = "value" | "list" | "boolean";

/** One flag of `metaflow task`. */
export interface TaskFlag {
  readonly flag: string;
  readonly kind: FlagKind;
  readonly help: string;
  /** Placeholder in the help text. */
  readonly arg?: string;
}

/** Every flag, in the order a command line carries them. */
export const TASK_FLAGS: readonly TaskFlag[] = [
  { flag: "--plan", kind: "value", arg: "hash", help: "hash of the stored run plan" },
  { flag: "--run-id", kind: "value", arg: "id", help: "the run (or --new-run-for)" },
  {
    flag: "--new-run-for",
    kind: "value",
    arg: "execution",
    help: "create the run for this Step Functions execution (idempotent); start task only",
  },
  {
    flag: "--parameters",
    kind: "value",
    arg: "json",
    help: "with --new-run-for: parameter values as a JSON object",
  },
  { flag: "--sys-tag", kind: "list", arg: "tag", help: "with --new-run-for: a system tag" },
  { flag: "--step", kind: "value", arg: "name", help: "the step" },
  { flag: "--task-id", kind: "value", arg: "id", help: "the task id" },
  { flag: "--attempt", kind: "value", arg: "n", help: "the attempt number, 0 for the first" },
  {
    flag: "--min-attempt",
    kind: "value",
    arg: "n",
    help: "the attempt number, or the next one not yet recorded (a redriven execution)",
  },
  {
    flag: "--parents",
    kind: "value",
    arg: "list",
    help: "parent tasks as step/taskId, comma-separated (none for start)",
  },
  {
    flag: "--join-of",
    kind: "value",
    arg: "step/task",
    help: "a join: the task that opened its split; the parents are found from it",
  },
  {
    flag: "--split-index",
    kind: "value",
    arg: "n",
    help: "this task's element when its parent did a foreach",
  },
  {
    flag: "--recover",
    kind: "boolean",
    help: "every earlier attempt failed: store the error as the step's @catchError says and go on",
  },
  {
    flag: "--caught",
    kind: "value",
    arg: "error",
    help: "like --recover; this error is stored when no attempt recorded one",
  },
  {
    flag: "--output-key",
    kind: "value",
    arg: "key",
    help: "write the task's output document (run id, transition) to this datastore key",
  },
  { flag: "--finish-run", kind: "boolean", help: "the end step: mark the run completed" },
  {
    flag: "--run-failed-for",
    kind: "value",
    arg: "execution",
    help: "record the run of this Step Functions execution as failed (no task runs)",
  },
  { flag: "--error", kind: "value", arg: "name", help: "with --run-failed-for: the error name" },
  {
    flag: "--label",
    kind: "value",
    arg: "text",
    help: "where the task runs, for the console prefix",
  },
];

/** A command line `metaflow task` cannot run; the message names the flag and the bad value. */
export class TaskCommandError extends UsageError {
  constructor(message: string) {
    super(`metaflow task: ${message}`);
  }
}

/** Reads flags by name: the last value, every value (`list`), or presence (`boolean`). */
export interface FlagSource {
  value(flag: string): string | undefined;
  list(flag: string): readonly string[];
  has(flag: string): boolean;
}

const MAX_ATTEMPT = 1000;

function whole(
  flag: string,
  v: string | undefined,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,15}$/.test(v) || Number(v) > max) {
    throw new TaskCommandError(
      `${flag} must be a whole number from 0 to ${max}, got ${JSON.stringify(v)}`,
    );
  }
  return Number(v);
}

function taskRef(flag: string, v: string): TaskRef {
  const slash = v.indexOf("/");
  if (slash <= 0 || slash === v.length - 1 || v.indexOf("/", slash + 1) >= 0) {
    throw new TaskCommandError(`${flag} takes step/taskId, got ${JSON.stringify(v)}`);
  }
  return { step: v.slice(0, slash), taskId: v.slice(slash + 1) };
}

/** Whether the flags ask to record a failed run rather than to run a task. */
export function isRunFailed(flags: FlagSource): boolean {
  return flags.value("--run-failed-for") !== undefined;
}

/** Reads a task command from its flags; throws a TaskCommandError naming a missing or bad flag. */
export function taskCommandFromFlags(flags: FlagSource): TaskCommand {
  const need = (flag: string): string => {
    const v = flags.value(flag);
    if (v === undefined || v.trim() === "") throw new TaskCommandError(`${flag} is required`);
    return v;
  };
  const plan = need("--plan");
  const step = need("--step");
  const taskId = need("--task-id");
  const execution = flags.value("--new-run-for");
  const runId = flags.value("--run-id");
  if ((execution === undefined) === (runId === undefined)) {
    throw new TaskCommandError("give exactly one of --run-id and --new-run-for");
  }
  if (execution !== undefined && step !== "start") {
    throw new TaskCommandError(
      `--new-run-for creates the run, which only the start task does; step '${step}' takes --run-id`,
    );
  }
  if (
    execution === undefined &&
    (flags.value("--parameters") !== undefined || flags.list("--sys-tag").length > 0)
  ) {
    throw new TaskCommandError(
      "--parameters and --sys-tag go with --new-run-for (the task that creates the run)",
    );
  }
  const exact = flags.value("--attempt");
  const min = flags.value("--min-attempt");
  if (exact !== undefined && min !== undefined)
    throw new TaskCommandError("give --attempt or --min-attempt, not both");
  const joinOf = flags.value("--join-of");
  const parents = (flags.value("--parents") ?? "")
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => taskRef("--parents", p));
  if (joinOf !== undefined && parents.length > 0)
    throw new TaskCommandError("give --parents or --join-of, not both");
  const splitIndex = whole("--split-index", flags.value("--split-index"));
  const caught = flags.value("--caught");
  const outputKey = flags.value("--output-key");
  const keyProblem =
    outputKey === undefined ? undefined : outputKeyProblem(outputKey, step, taskId);
  if (keyProblem !== undefined) throw new TaskCommandError(keyProblem);
  const label = flags.value("--label");
  return {
    plan,
    step,
    taskId,
    attempt: whole(
      min !== undefined ? "--min-attempt" : "--attempt",
      min ?? exact ?? "0",
      MAX_ATTEMPT,
    )!,
    nextFreeAttempt: min !== undefined,
    run:
      execution !== undefined
        ? {
            kind: "new",
            executionId: execution,
            parameters: flags.value("--parameters") ?? "{}",
            systemTags: flags.list("--sys-tag"),
          }
        : { kind: "existing", runId: runId! },
    parents,
    ...(joinOf !== undefined ? { joinOf: taskRef("--join-of", joinOf) } : {}),
    ...(splitIndex !== undefined ? { splitIndex } : {}),
    recover: flags.has("--recover") || caught !== undefined,
    ...(caught !== undefined ? { caught } : {}),
    ...(outputKey !== undefined ? { outputKey } : {}),
    finishRun: flags.has("--finish-run"),
    ...(label !== undefined ? { label } : {}),
  };
}

/** Reads a run-failed command from its flags. */
export function runFailedFromFlags(flags: FlagSource): RunFailedCommand {
  const need = (flag: string): string => {
    const v = flags.value(flag);
    if (v === undefined || v.trim() === "")
      throw new TaskCommandError(`${flag} is required with --run-failed-for`);
    return v;
  };
  return { plan: need("--plan"), executionId: need("--run-failed-for"), error: need("--error") };
}

/** The flags of an argv (starting with `task`), checked against the table. */
export function flagsOfArgv(argv: readonly string[]): FlagSource {
  if (argv[0] !== "task")
    throw new TaskCommandError(`expected 'task' first, got ${JSON.stringify(argv[0])}`);
  const values = new Map<string, string[]>();
  const present = new Set<string>();
  for (let i = 1; i < argv.length; i++) {
    const flag = argv[i]!;
    const def = TASK_FLAGS.find((f) => f.flag === flag);
    if (!def) throw new TaskCommandError(`unknown flag ${JSON.stringify(flag)}`);
    present.add(flag);
    if (def.kind === "boolean") continue;
    const v = argv[++i];
    if (v === undefined) throw new TaskCommandError(`${flag} needs a value`);
    values.set(flag, [...(values.get(flag) ?? []), v]);
  }
  return {
    value: (f) => values.get(f)?.at(-1),
    list: (f) => values.get(f) ?? [],
    has: (f) => present.has(f),
  };
}

/** Reads `argv` (after the entrypoint: starting with `task`) back into a {@link TaskCommand}. */
export function parseTaskCommand(argv: readonly string[]): TaskCommand {
  return taskCommandFromFlags(flagsOfArgv(argv));
}

/** Reads a run-failed `argv` (starting with `task`) back. */
export function parseRunFailedCommand(argv: readonly string[]): RunFailedCommand {
  return runFailedFromFlags(flagsOfArgv(argv));
}

/** A task command whose values may be computed by whoever runs it (`V`: an expression type). */
export interface TaskCommandTemplate<V> {
  readonly plan: string;
  readonly step: string;
  readonly taskId: string | V;
  readonly attempt: string | V;
  readonly nextFreeAttempt: boolean;
  readonly run:
    | { readonly kind: "existing"; readonly runId: string | V }
    | {
        readonly kind: "new";
        readonly executionId: string | V;
        readonly parameters: string | V;
        readonly systemTags: readonly string[];
      };
  /** `step/taskId,...`. */
  readonly parents?: string | V;
  readonly joinOf?: string | V;
  readonly splitIndex?: string | V;
  readonly recover?: boolean;
  readonly caught?: string | V;
  readonly outputKey?: string | V;
  readonly finishRun?: boolean;
  readonly label?: string;
}

/** The argv of a command (without the entrypoint): `["task", "--plan", ...]`, values as given. */
export function taskArgv<V>(c: TaskCommandTemplate<V>): Array<string | V> {
  const out: Array<string | V> = ["task", "--plan", c.plan];
  if (c.run.kind === "new") {
    out.push("--new-run-for", c.run.executionId, "--parameters", c.run.parameters);
    for (const t of c.run.systemTags) out.push("--sys-tag", t);
  } else {
    out.push("--run-id", c.run.runId);
  }
  out.push(
    "--step",
    c.step,
    "--task-id",
    c.taskId,
    c.nextFreeAttempt ? "--min-attempt" : "--attempt",
    c.attempt,
  );
  if (c.parents !== undefined) out.push("--parents", c.parents);
  if (c.joinOf !== undefined) out.push("--join-of", c.joinOf);
  if (c.splitIndex !== undefined) out.push("--split-index", c.splitIndex);
  if (c.caught !== undefined) out.push("--caught", c.caught);
  else if (c.recover) out.push("--recover");
  if (c.outputKey !== undefined) out.push("--output-key", c.outputKey);
  if (c.finishRun) out.push("--finish-run");
  if (c.label !== undefined) out.push("--label", c.label);
  return out;
}

const ref = (r: TaskRef): string => `${r.step}/${r.taskId}`;

/** The argv of a concrete command (without the entrypoint); `parseTaskCommand` reads it back. */
export function formatTaskCommand(c: TaskCommand): string[] {
  const { parents, joinOf, splitIndex, attempt, ...rest } = c;
  return taskArgv<never>({
    ...rest,
    attempt: String(attempt),
    ...(parents.length > 0 ? { parents: parents.map(ref).join(",") } : {}),
    ...(joinOf ? { joinOf: ref(joinOf) } : {}),
    ...(splitIndex !== undefined ? { splitIndex: String(splitIndex) } : {}),
  }) as string[];
}

/** The argv of a run-failed command (without the entrypoint). */
export function runFailedArgv<V>(c: {
  plan: string;
  executionId: string | V;
  error: string | V;
}): Array<string | V> {
  return ["task", "--plan", c.plan, "--run-failed-for", c.executionId, "--error", c.error];
}

/**
 * What a task whose command has `--output-key` writes there (JSON), for whoever steers the run (the
 * state machine's Choice and Map states): the run id, and the transition it took.
 */
export interface TaskOutputDocument {
  readonly runId: string;
  readonly step: string;
  readonly taskId: string;
  /** `foreach`: one entry per split, `[0, 1, ..., n-1]` (a Map state iterates over it). */
  readonly splits?: readonly number[];
  /** `switch`: the case the condition picked (a key of the step's cases). */
  readonly case?: string;
}
