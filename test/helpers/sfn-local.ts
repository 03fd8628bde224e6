/**
 * Runs a compiled state machine locally with `aws-local-stepfunctions`: every Batch task state is
 * handed to `runJob` (the job as submitted: a local AWS runs its command as a process) or to
 * `runTask` (the parsed command: a recording fake), every S3 read to `readObject`. It fills the gaps of the interpreter:
 * - it only knows the context object it is given, so `$$.Execution.Id` / `Name` are passed in;
 * - it does not track `$$.State.RetryCount`: the context holds a marker, and each Batch state's
 *   handler replaces it in the command by the number of earlier attempts of the same task;
 * - it runs on Node 20 but wants `Promise.withResolvers` (Node 22), which is filled in here.
 */
import { StateMachine } from "aws-local-stepfunctions";
import type { AslMachine } from "../../src/deploy/step-functions/asl.js";
import { taskStates } from "../../src/deploy/step-functions/asl.js";
import { DEFAULT_ENTRYPOINT } from "../../src/deploy/step-functions/command.js";
import {
  parseRunFailedCommand,
  parseTaskCommand,
  type RunFailedCommand,
  type TaskCommand,
} from "../../src/task/command.js";

// aws-local-stepfunctions 3.0.0 declares Node >= 22 for this one call.
const P = Promise as unknown as { withResolvers?: () => unknown };
P.withResolvers ??= () => {
  let resolve!: (v: unknown) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise((a, b) => {
    resolve = a;
    reject = b;
  });
  return { promise, resolve, reject };
};

const RETRY_MARKER = "RETRY_COUNT_MARKER";

/** The Batch job a task state submitted, as the handler sees it. */
export interface SubmittedJob {
  readonly state: string;
  readonly jobName: string;
  readonly queue: string;
  readonly definition: string;
  readonly resources: ReadonlyArray<{ Type: string; Value: string }>;
  readonly environment: ReadonlyArray<{ Name: string; Value: string }>;
  readonly attemptSeconds: number;
  /** The container's command with the retry count filled in: `["metaflow", "task", ...]`. */
  readonly command: readonly string[];
}

/** What the local execution hands out. */
export interface LocalRunOptions {
  readonly executionName: string;
  /** Runs one attempt; throws (an Error whose `name` is the Step Functions error) to fail it. */
  readonly runTask?: (command: TaskCommand, job: SubmittedJob) => Promise<void>;
  /** Runs one Batch job as submitted (every task state, the run-failed one included), instead of `runTask`/`runFailed`. */
  readonly runJob?: (job: SubmittedJob) => Promise<void>;
  /** Records a failed run. */
  readonly runFailed?: (command: RunFailedCommand) => Promise<void>;
  /** Reads an S3 object (the task output documents); undefined when it does not exist. */
  readonly readObject: (bucket: string, key: string) => Promise<string | undefined>;
  /** Wait between retries, in ms, instead of the states' IntervalSeconds. @default 0 */
  readonly retryWaitMs?: number;
  /** @default "arn:aws:states:us-east-1:123456789012:stateMachine:local" */
  readonly stateMachineArn?: string;
}

/** The output of the execution, or the error it failed with. */
export type LocalRunResult =
  { ok: true; output: unknown } | { ok: false; error: string; cause: string };

/** Executes `definition` with `input`; resolves with how the execution ended. */
export async function runLocally(
  definition: AslMachine,
  input: unknown,
  options: LocalRunOptions,
): Promise<LocalRunResult> {
  const attempts = new Map<string, number>();
  const handlers: Record<string, (input: any) => Promise<unknown>> = {};
  for (const [state, def] of taskStates(definition)) {
    if (def.Resource === "arn:aws:states:::aws-sdk:s3:getObject") {
      handlers[state] = async (p: { Bucket: string; Key: string }) => {
        const body = await options.readObject(p.Bucket, p.Key);
        if (body === undefined)
          throw Object.assign(new Error(`NoSuchKey: ${p.Key}`), { name: "S3.NoSuchKeyException" });
        return { Body: body };
      };
    } else if (def.Resource === "arn:aws:states:::batch:submitJob.sync") {
      handlers[state] = (p: Record<string, any>) => submit(state, p, attempts, options);
    } else {
      throw new Error(
        `runLocally: no local handler for the resource of state '${state}': ${String(def.Resource)}`,
      );
    }
  }
  const arn = options.stateMachineArn ?? "arn:aws:states:us-east-1:123456789012:stateMachine:local";
  const machine = new StateMachine(definition as never, {
    validationOptions: { checkPaths: true },
  });
  const execution = machine.run(input as never, {
    overrides: {
      taskResourceLocalHandlers: handlers as never,
      retryIntervalOverrides: Object.fromEntries(
        Object.keys(handlers).map((s) => [s, options.retryWaitMs ?? 0]),
      ),
    },
    context: {
      Execution: {
        Id: `${arn.replace(":stateMachine:", ":execution:")}:${options.executionName}`,
        Name: options.executionName,
        Input: input,
      },
      State: { RetryCount: RETRY_MARKER },
    } as never,
  });
  try {
    return { ok: true, output: await execution.result };
  } catch (err) {
    const e = err as Error & { cause?: { name?: string; message?: string } };
    return { ok: false, error: e.cause?.name ?? e.name, cause: e.cause?.message ?? e.message };
  }
}

async function submit(
  state: string,
  p: Record<string, any>,
  attempts: Map<string, number>,
  options: LocalRunOptions,
): Promise<unknown> {
  const full = [...(p.ContainerOverrides.Command as string[])];
  const argv = full.slice(DEFAULT_ENTRYPOINT.length);
  const job = (command: readonly string[]): SubmittedJob => ({
    state,
    jobName: p.JobName,
    queue: p.JobQueue,
    definition: p.JobDefinition,
    resources: p.ContainerOverrides.ResourceRequirements ?? [],
    environment: p.ContainerOverrides.Environment ?? [],
    attemptSeconds: p.Timeout?.AttemptDurationSeconds,
    command,
  });
  if (options.runJob) {
    fillRetryCount(state, argv, attempts);
    await options.runJob(job([...full.slice(0, DEFAULT_ENTRYPOINT.length), ...argv]));
    return { JobId: `local-${p.JobName}`, Status: "SUCCEEDED" };
  }
  if (argv.includes("--run-failed-for")) {
    await options.runFailed?.(parseRunFailedCommand(argv));
    return { JobId: "local" };
  }
  fillRetryCount(state, argv, attempts);
  const command = parseTaskCommand(argv);
  await options.runTask?.(command, job(argv));
  return {
    JobId: `local-${command.step}-${command.taskId}-${command.attempt}`,
    Status: "SUCCEEDED",
  };
}

/** Puts `$$.State.RetryCount` into the command: how many times this state already ran this task. */
function fillRetryCount(state: string, argv: string[], attempts: Map<string, number>): void {
  const at = argv.indexOf(RETRY_MARKER);
  if (at < 0) return;
  const key = `${state}|${argv[argv.indexOf("--task-id") + 1]}`;
  const n = attempts.get(key) ?? 0;
  attempts.set(key, n + 1);
  argv[at] = String(n);
}
