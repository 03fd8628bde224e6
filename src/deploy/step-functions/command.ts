/**
 * The command line every Batch task state runs: `metaflow task ...`, one attempt of one task of
 * a deployed run. This file is the contract between the state machine and the task entrypoint:
 * the state machine builds the command with {@link taskCommandExpression}; the entrypoint reads
 * it back with {@link parseTaskCommand}. Both go through one table of flags, so they cannot drift.
 */

/** A task's place in the run: `step/taskId`. */
export interface TaskRef {
  readonly step: string;
  readonly taskId: string;
}

/** How the run of a task is found: the start task creates it, every later task is told its id. */
export type RunSelector =
  | {
      /** The start task: create the run (once per execution, idempotently on retries). */
      readonly kind: "new";
      /** The Step Functions execution ARN (`$$.Execution.Id`): the idempotency key of the run. */
      readonly executionId: string;
      /** Parameter values from the execution input, as a JSON object of raw values; the task resolves them with the flow's defaults. */
      readonly parameters: string;
      /** System tags of the new run besides the usual ones (`production:<token>`, `project:...`). */
      readonly systemTags: readonly string[];
    }
  | { readonly kind: "existing"; readonly runId: string };

/** Everything `metaflow task` is told by a state of the state machine. */
export interface TaskCommand {
  /** The flow's class name. */
  readonly flow: string;
  /** Content hash of the code package in the datastore (stored by `step-functions create`). */
  readonly codePackage: string;
  readonly step: string;
  /** Deterministic id (see ids.ts): the foreach indices and the iteration of a repeating step. */
  readonly taskId: string;
  /** Attempt number: the state's retry count (`$$.State.RetryCount`), or retries + 1 for a caught task. */
  readonly attempt: number;
  readonly run: RunSelector;
  /** The task before this one (every step but start and joins). */
  readonly parent?: TaskRef;
  /** A join: the task that opened the split it closes; the join computes its parents from it. */
  readonly joinOf?: TaskRef;
  /** The first step of a foreach body: this task's index in the split (`$$.Map.Item.Index`). */
  readonly splitIndex?: number;
  /** Every attempt failed and `@catchError` applies: store this error (the Step Functions error name, when the attempt left none) and go on. */
  readonly caught?: string;
  /** Write the task's output document (run id, transition taken) to this datastore key. */
  readonly outputKey?: string;
  /** The end step: mark the run completed when the task succeeds. */
  readonly finishRun: boolean;
  /** Most tasks one foreach may create. */
  readonly maxNumSplits: number;
  /** The namespace the task's `current.namespace` reports: `production:<token>`. */
  readonly namespace: string;
  /** `@project` information for `current.projectName` and friends. */
  readonly project?: {
    readonly name: string;
    readonly branch: string;
    readonly production: boolean;
  };
}

/** A value the state machine evaluates (a JSONPath or an intrinsic function), not a literal. */
export interface Expr {
  readonly expr: string;
}

/** A string given literally (known when deploying) or evaluated by the state machine. */
export type Val = string | Expr;

/** A command as a state emits it: the fields that change per execution are {@link Expr}s. */
export interface TaskCommandTemplate {
  readonly flow: string;
  readonly codePackage: string;
  readonly step: string;
  readonly taskId: Val;
  readonly attempt: Val;
  readonly run:
    | {
        readonly kind: "new";
        readonly executionId: Val;
        readonly parameters: Val;
        readonly systemTags: readonly string[];
      }
    | { readonly kind: "existing"; readonly runId: Val };
  readonly parent?: Val;
  readonly joinOf?: Val;
  readonly splitIndex?: Val;
  readonly caught?: Val;
  readonly outputKey?: Val;
  readonly finishRun: boolean;
  readonly maxNumSplits: number;
  readonly namespace: string;
  readonly project?: TaskCommand["project"];
}

/** The program the container runs before `task`. @default ["metaflow"] */
export const DEFAULT_ENTRYPOINT: readonly string[] = ["metaflow"];

/** The flags in order, each with the value it carries; one table for building and for parsing. */
function parts<V>(c: {
  flow: string;
  codePackage: string;
  step: string;
  taskId: V;
  attempt: V;
  run:
    | { kind: "new"; executionId: V; parameters: V; systemTags: readonly string[] }
    | { kind: "existing"; runId: V };
  parent?: V | undefined;
  joinOf?: V | undefined;
  splitIndex?: V | undefined;
  caught?: V | undefined;
  outputKey?: V | undefined;
  finishRun: boolean;
  maxNumSplits: number;
  namespace: string;
  project?: TaskCommand["project"] | undefined;
}): (string | V)[] {
  const out: (string | V)[] = [
    "task",
    "--flow",
    c.flow,
    "--code-package",
    c.codePackage,
    "--step",
    c.step,
  ];
  out.push("--task-id", c.taskId, "--attempt", c.attempt);
  if (c.run.kind === "new") {
    out.push("--new-run-for", c.run.executionId, "--parameters", c.run.parameters);
    for (const t of c.run.systemTags) out.push("--sys-tag", t);
  } else {
    out.push("--run-id", c.run.runId);
  }
  if (c.parent !== undefined) out.push("--parent", c.parent);
  if (c.joinOf !== undefined) out.push("--join-of", c.joinOf);
  if (c.splitIndex !== undefined) out.push("--split-index", c.splitIndex);
  if (c.caught !== undefined) out.push("--caught", c.caught);
  if (c.outputKey !== undefined) out.push("--output-key", c.outputKey);
  if (c.finishRun) out.push("--finish-run");
  out.push("--max-num-splits", String(c.maxNumSplits), "--namespace", c.namespace);
  if (c.project) {
    out.push("--project", c.project.name, "--branch", c.project.branch);
    if (c.project.production) out.push("--production");
  }
  return out;
}

const ref = (r: TaskRef | undefined): string | undefined =>
  r ? `${r.step}/${r.taskId}` : undefined;

/** The argv of a concrete command, without the entrypoint: `["task", "--flow", ...]`. */
export function formatTaskCommand(c: TaskCommand): string[] {
  return parts<string>({
    ...c,
    attempt: String(c.attempt),
    run: c.run,
    parent: ref(c.parent),
    joinOf: ref(c.joinOf),
    splitIndex: c.splitIndex === undefined ? undefined : String(c.splitIndex),
  }) as string[];
}

/** Quotes a literal for an intrinsic function: `'`, `{`, `}` and `\` are escaped. */
export function intrinsicLiteral(s: string): string {
  return `'${s.replace(/[\\'{}]/g, (ch) => `\\${ch}`)}'`;
}

/**
 * The `States.Array(...)` expression a Batch task state puts in `ContainerOverrides.Command.$`:
 * literals quoted, expressions as they are.
 */
export function taskCommandExpression(
  t: TaskCommandTemplate,
  entrypoint: readonly string[] = DEFAULT_ENTRYPOINT,
): string {
  const items = [...entrypoint, ...parts<Val>(t)];
  const args = items.map((v) => (typeof v === "string" ? intrinsicLiteral(v) : v.expr));
  return `States.Array(${args.join(", ")})`;
}

/** A command line `metaflow task` cannot run; the message names the flag. */
export class TaskCommandError extends Error {
  constructor(message: string) {
    super(`metaflow task: ${message}`);
    this.name = "TaskCommandError";
  }
}

const VALUE_FLAGS = new Set([
  "--flow",
  "--code-package",
  "--step",
  "--task-id",
  "--attempt",
  "--new-run-for",
  "--parameters",
  "--sys-tag",
  "--run-id",
  "--parent",
  "--join-of",
  "--split-index",
  "--caught",
  "--output-key",
  "--max-num-splits",
  "--namespace",
  "--project",
  "--branch",
]);
const BOOLEAN_FLAGS = new Set(["--finish-run", "--production"]);

/** The flags of a command line, checked against the table: repeated values kept in order. */
class FlagReader {
  readonly values = new Map<string, string[]>();
  readonly flags = new Set<string>();

  constructor(argv: readonly string[]) {
    if (argv[0] !== "task")
      throw new TaskCommandError(`expected 'task' first, got ${JSON.stringify(argv[0])}`);
    for (let i = 1; i < argv.length; i++) {
      const flag = argv[i]!;
      if (BOOLEAN_FLAGS.has(flag)) this.flags.add(flag);
      else if (VALUE_FLAGS.has(flag)) {
        const v = argv[++i];
        if (v === undefined) throw new TaskCommandError(`${flag} needs a value`);
        this.values.set(flag, [...(this.values.get(flag) ?? []), v]);
      } else throw new TaskCommandError(`unknown flag ${JSON.stringify(flag)}`);
    }
  }
}

/** Reads `argv` (after the entrypoint: starting with `task`) back into a {@link TaskCommand}. */
export function parseTaskCommand(argv: readonly string[]): TaskCommand {
  const { values, flags } = new FlagReader(argv);
  const one = (flag: string): string | undefined => values.get(flag)?.at(-1);
  const need = (flag: string): string => {
    const v = one(flag);
    if (v === undefined || v === "") throw new TaskCommandError(`${flag} is required`);
    return v;
  };
  const int = (flag: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v))
      throw new TaskCommandError(`${flag} must be a whole number ≥ 0, got ${JSON.stringify(v)}`);
    return Number(v);
  };
  const taskRef = (flag: string): TaskRef | undefined => {
    const v = one(flag);
    if (v === undefined) return undefined;
    const slash = v.indexOf("/");
    if (slash <= 0 || slash === v.length - 1)
      throw new TaskCommandError(`${flag} must be step/taskId, got ${JSON.stringify(v)}`);
    return { step: v.slice(0, slash), taskId: v.slice(slash + 1) };
  };
  const execution = one("--new-run-for");
  const runId = one("--run-id");
  if ((execution === undefined) === (runId === undefined)) {
    throw new TaskCommandError(`give exactly one of --run-id and --new-run-for`);
  }
  const run: RunSelector =
    execution !== undefined
      ? {
          kind: "new",
          executionId: execution,
          parameters: one("--parameters") ?? "{}",
          systemTags: values.get("--sys-tag") ?? [],
        }
      : { kind: "existing", runId: runId! };
  const project = one("--project");
  const parent = taskRef("--parent");
  const joinOf = taskRef("--join-of");
  const splitIndex = int("--split-index", one("--split-index"));
  const caught = one("--caught");
  const outputKey = one("--output-key");
  return {
    flow: need("--flow"),
    codePackage: need("--code-package"),
    step: need("--step"),
    taskId: need("--task-id"),
    attempt: int("--attempt", need("--attempt"))!,
    run,
    ...(parent ? { parent } : {}),
    ...(joinOf ? { joinOf } : {}),
    ...(splitIndex !== undefined ? { splitIndex } : {}),
    ...(caught !== undefined ? { caught } : {}),
    ...(outputKey !== undefined ? { outputKey } : {}),
    finishRun: flags.has("--finish-run"),
    maxNumSplits: int("--max-num-splits", need("--max-num-splits"))!,
    namespace: need("--namespace"),
    ...(project !== undefined
      ? {
          project: {
            name: project,
            branch: need("--branch"),
            production: flags.has("--production"),
          },
        }
      : {}),
  };
}

/**
 * What a task whose command has `--output-key` writes there (JSON), for the state machine to read:
 * the run id (after start), and the transition it took (foreach: the split indices; switch: the case).
 */
export interface TaskOutputDocument {
  readonly runId: string;
  readonly step: string;
  readonly taskId: string;
  /** `foreach`: one entry per split, `[0, 1, ..., n-1]` (the Map state iterates over it). */
  readonly splits?: readonly number[];
  /** `switch`: the case the condition picked (a key of the step's cases). */
  readonly case?: string;
}

/**
 * What the state machine runs when a run fails for good (a task failed every attempt without
 * `@catchError`, or the state machine itself failed): record the run as failed, so the client does
 * not show it running forever. The run is found by the execution, as the start task created it.
 */
export interface RunFailedCommand {
  readonly flow: string;
  readonly codePackage: string;
  /** The execution ARN (`$$.Execution.Id`). */
  readonly executionId: string;
  /** The Step Functions error name, e.g. `States.TaskFailed`. */
  readonly error: string;
  readonly namespace: string;
}

/** The `States.Array(...)` expression of the run-failed state's command. */
export function runFailedCommandExpression(
  c: { flow: string; codePackage: string; executionId: Val; error: Val; namespace: string },
  entrypoint: readonly string[] = DEFAULT_ENTRYPOINT,
): string {
  const items: Val[] = [...entrypoint, "task", "--flow", c.flow, "--code-package", c.codePackage];
  items.push("--run-failed-for", c.executionId, "--error", c.error, "--namespace", c.namespace);
  return `States.Array(${items.map((v) => (typeof v === "string" ? intrinsicLiteral(v) : v.expr)).join(", ")})`;
}

/** Whether `argv` (starting with `task`) asks to record a failed run rather than to run a task. */
export function isRunFailedCommand(argv: readonly string[]): boolean {
  return argv.includes("--run-failed-for");
}

/** Reads a run-failed command line back. */
export function parseRunFailedCommand(argv: readonly string[]): RunFailedCommand {
  if (argv[0] !== "task")
    throw new TaskCommandError(`expected 'task' first, got ${JSON.stringify(argv[0])}`);
  const get = (flag: string): string => {
    const i = argv.indexOf(flag);
    const v = i < 0 ? undefined : argv[i + 1];
    if (v === undefined || v === "") throw new TaskCommandError(`${flag} is required`);
    return v;
  };
  return {
    flow: get("--flow"),
    codePackage: get("--code-package"),
    executionId: get("--run-failed-for"),
    error: get("--error"),
    namespace: get("--namespace"),
  };
}
