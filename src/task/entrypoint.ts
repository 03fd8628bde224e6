/**
 * `metaflow task`, from a parsed command line to a recorded attempt: what every remote backend
 * runs. A launcher that tracks the run (Slurm, the `batch` launcher of `metaflow run`) names the
 * run, the parents and the attempt; a Step Functions state names less and the task works out the
 * rest — it creates the run (start), finds its parents from the split task (joins), takes the next
 * free attempt (a redriven execution), writes an output document the state machine steers by, and
 * finishes or fails the run.
 */
import { openBackends, type Backends } from "../backends.js";
import type { RunFailedCommand, TaskCommand, TaskRef } from "./command.js";
import {
  outputDocument,
  recordRunFailed,
  startDeployedRun,
  writeOutputDocument,
} from "./deployed-run.js";
import { joinShapeOf, resolveJoinParents } from "./join-parents.js";
import { runRemoteTask, type RemoteTaskResult } from "./remote.js";
import { readRunPlan, type RunPlan } from "./run-plan.js";

type Env = Readonly<Record<string, string | undefined>>;

/** Runs the attempt a task command describes; resolves when it is recorded (and the run updated). */
export async function runTaskCommand(
  c: TaskCommand,
  library: Record<string, unknown>,
  env: Env = process.env,
): Promise<RemoteTaskResult & { runId: string }> {
  const backends = openBackends({ env });
  try {
    const plan = await readRunPlan(backends.store, c.plan);
    let runId: string;
    if (c.run.kind === "new") {
      runId = await startDeployedRun(backends, plan, c.plan, c.run, env);
      // The run id is known from here on, even if the start step then fails (run-failed finds it).
      if (c.outputKey)
        await writeOutputDocument(
          backends,
          c.outputKey,
          outputDocument(runId, c.step, c.taskId, undefined),
        );
    } else {
      runId = c.run.runId;
    }
    const attempt = c.nextFreeAttempt
      ? await freeAttempt(backends, plan.flowName, runId, c, c.attempt)
      : c.attempt;
    const parents = c.joinOf
      ? await joinParents(backends, plan, runId, c.step, c.joinOf)
      : c.parents;
    const result = await runRemoteTask(
      {
        plan: c.plan,
        runId,
        step: c.step,
        taskId: c.taskId,
        attempt,
        parents: parents.map((p) => `${p.step}/${p.taskId}`),
        ...(c.splitIndex !== undefined ? { splitIndex: c.splitIndex } : {}),
        ...(c.recover ? { recover: true } : {}),
        ...(c.caught !== undefined ? { recoverFallback: caughtError(c.caught) } : {}),
        ...(c.label !== undefined ? { label: c.label } : {}),
        env,
        backends,
      },
      library,
    );
    if (result.ok && c.outputKey) {
      await writeOutputDocument(
        backends,
        c.outputKey,
        outputDocument(runId, c.step, c.taskId, result.transition),
      );
    }
    if (result.ok && c.finishRun) {
      await backends.metadata.finishRun(plan.flowName, runId, {
        status: "completed",
        finishedAt: Date.now(),
      });
    }
    return { ...result, runId };
  } finally {
    backends.close();
  }
}

/** Records the run of a failed execution as failed; returns a line for the console. */
export async function runFailedCommand(
  c: RunFailedCommand,
  env: Env = process.env,
): Promise<string> {
  const backends = openBackends({ env });
  try {
    const plan = await readRunPlan(backends.store, c.plan);
    const runId = await recordRunFailed(backends, plan, c.executionId, c.error);
    return runId === undefined
      ? `The execution ${c.executionId} failed (${c.error}) before it created a run; nothing to record.`
      : `Run ${plan.flowName}/${runId} is recorded as failed (${c.error}).`;
  } finally {
    backends.close();
  }
}

/** `attempt`, or the next attempt number not recorded yet when it is taken. */
async function freeAttempt(
  backends: Backends,
  flow: string,
  runId: string,
  c: TaskCommand,
  attempt: number,
): Promise<number> {
  const record = await backends.metadata.getTask(flow, runId, c.step, c.taskId);
  const taken = (record?.attempts ?? []).map((a) => a.start.attempt);
  return taken.includes(attempt) ? Math.max(...taken) + 1 : attempt;
}

/** A join's parents, from the task that opened its split and the recorded transitions after it. */
async function joinParents(
  backends: Backends,
  plan: RunPlan,
  runId: string,
  join: string,
  split: TaskRef,
): Promise<TaskRef[]> {
  return resolveJoinParents(joinShapeOf(plan), join, split, async (step, taskId) => {
    const record = await backends.metadata.getTask(plan.flowName, runId, step, taskId);
    return record?.attempts.filter((a) => a.end?.status === "completed").at(-1)?.end?.transition;
  });
}

function caughtError(name: string): { name: string; code: string; message: string } {
  return {
    name,
    code: "step-functions",
    message: `Every attempt of the task failed with ${name} and none recorded an error (the container was stopped: a timeout, or a Batch failure); see the job in the AWS Batch console`,
  };
}
