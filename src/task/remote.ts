/**
 * `metaflow task`: one attempt of one task, run from the datastore on any machine that reaches
 * it. Everything comes from the stored run plan, the run's record and the parents' records; the
 * attempt is recorded and its logs stored here, so whoever launched it (a Slurm job, an AWS Batch
 * job in a Step Functions execution) learns the outcome from the metadata, not from output text.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { openBackends, type Backends } from "../backends.js";
import type { CodeManifest } from "../datastore/code-package.js";
import { AttemptLogs } from "../datastore/logs.js";
import { UsageError, type PlainError } from "../errors.js";
import type { RunRecord, SplitFrame, TakenTransition, TaskRecord } from "../metadata/types.js";
import { executeTask, ExecutionFailure } from "./executor.js";
import type { ParentTask, TaskSpec } from "./protocol.js";
import { readRunPlan, type RunPlan } from "./run-plan.js";
import { formatTaskError, mapError } from "./stack.js";

/** Which attempt of which task to run. */
export interface RemoteTaskOptions {
  /** Hash of the stored run plan. */
  readonly plan: string;
  readonly runId: string;
  readonly step: string;
  readonly taskId: string;
  /** @default 0 */
  readonly attempt?: number;
  /** Parent tasks as `step/taskId` in the same run; none for `start`. */
  readonly parents: readonly string[];
  /** This task's element when its parent did a foreach. */
  readonly splitIndex?: number;
  /** Every earlier attempt failed: store the last one's error (as the step's plan says) and go on. */
  readonly recover?: boolean;
  /** With `recover`: the error stored when no failed attempt recorded one (its container was killed). */
  readonly recoverFallback?: PlainError;
  /** Shown in the console prefix and recorded, e.g. `slurm job 77_3`. */
  readonly label?: string;
  /** @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Datastore and metadata to use (left open). @default opened from `env` */
  readonly backends?: Backends;
}

/** How the attempt ended: the process exit code follows it (0 success, 1 task failure). */
export interface RemoteTaskResult {
  readonly ok: boolean;
  readonly error?: PlainError;
  /** The transition a successful attempt took. */
  readonly transition?: TakenTransition;
}

/** Runs one attempt; resolves when it is recorded. Errors in the arguments reject before anything is recorded. */
export async function runRemoteTask(options: RemoteTaskOptions, library: Record<string, unknown>): Promise<RemoteTaskResult> {
  const backends = options.backends ?? openBackends({ env: options.env ?? process.env });
  try {
    const plan = await readRunPlan(backends.store, options.plan);
    const run = await backends.metadata.getRun(plan.flowName, options.runId);
    if (!run) throw new UsageError(`There is no run ${plan.flowName}/${options.runId} in the metadata (${backends.description}); start the run first or check METAFLOW_* settings`);
    const stepPlan = plan.steps[options.step];
    if (!stepPlan) throw new UsageError(`The flow ${plan.flowName} has no step '${options.step}'; its steps are ${Object.keys(plan.steps).join(", ")}`);
    const spec = await buildSpec(backends, plan, run, options);
    return await execute(backends, spec, options, library);
  } finally {
    if (!options.backends) backends.close();
  }
}

async function buildSpec(backends: Backends, plan: RunPlan, run: RunRecord, o: RemoteTaskOptions): Promise<TaskSpec> {
  const stepPlan = plan.steps[o.step]!;
  const parents = o.step === "start" ? [{ step: "_parameters", taskId: "0", artifacts: run.parameterRefs, frames: [] }] : await Promise.all(o.parents.map((p) => readParent(backends, plan.flowName, o.runId, p)));
  if (parents.length === 0) throw new UsageError(`Step '${o.step}' needs --parents (the step/task ids it follows)`);
  const attempt = o.attempt ?? 0;
  let recover: TaskSpec["recover"];
  if (o.recover) {
    const own = await backends.metadata.getTask(plan.flowName, o.runId, o.step, o.taskId);
    const last = own?.attempts.filter((a) => a.end?.status === "failed").at(-1)?.end;
    const error = last?.error ?? o.recoverFallback;
    if (!error) throw new UsageError(`--recover: task ${o.step}/${o.taskId} has no failed attempt to recover from`);
    recover = { storeIn: stepPlan.storeErrorIn, error, next: stepPlan.next };
  }
  return {
    flowName: plan.flowName,
    className: plan.className,
    runId: o.runId,
    step: o.step,
    taskId: o.taskId,
    attempt,
    flowFile: path.resolve(plan.flowFile),
    bundlePath: await localBundle(backends, plan.codePackage),
    storage: backends.storageSpec,
    parents,
    frames: framesOf(o.step, stepPlan.isJoin, parents, o.splitIndex),
    isJoin: stepPlan.isJoin,
    isEnd: stepPlan.isEnd,
    parameterNames: plan.parameterNames,
    maxNumSplits: plan.maxNumSplits,
    env: stepPlan.env,
    decorators: stepPlan.decorators,
    flowDecorators: plan.flowDecorators,
    username: run.user,
    tags: [...run.systemTags, ...run.tags],
    // A deployed run lives in its production namespace (the system tag `production:<token>`).
    namespace: run.systemTags.find((t) => t.startsWith("production:")) ?? `user:${run.user}`,
    originRunId: run.originRunId,
    runPlan: o.plan,
    ...(recover ? { recover } : {}),
  };
}

/** A parent's stored outputs: the artifacts and frames of its last successful attempt. */
async function readParent(backends: Backends, flow: string, runId: string, ref: string): Promise<ParentTask & { transition: NonNullable<NonNullable<TaskRecord["attempts"][number]["end"]>["transition"]> }> {
  const [step, taskId, extra] = ref.split("/");
  if (!step || !taskId || extra !== undefined) throw new UsageError(`--parents: '${ref}' is not step/taskId`);
  const record = await backends.metadata.getTask(flow, runId, step, taskId);
  const done = record?.attempts.filter((a) => a.end?.status === "completed").at(-1);
  if (!done?.end?.transition) {
    throw new UsageError(`Parent task ${flow}/${runId}/${step}/${taskId} has not finished successfully, so this task cannot start`);
  }
  return { step, taskId, artifacts: done.end.artifacts, frames: done.start.frames, transition: done.end.transition };
}

/** The split frames a task runs in, derived from its parents as the local scheduler derives them. */
function framesOf(step: string, isJoin: boolean, parents: ReadonlyArray<ParentTask & { transition?: unknown }>, splitIndex: number | undefined): SplitFrame[] {
  const first = parents[0]!;
  if (isJoin) return first.frames.slice(0, -1);
  const t = (first as { transition?: import("../metadata/types.js").TakenTransition }).transition;
  if (t?.kind === "foreach") {
    if (splitIndex === undefined || !Number.isInteger(splitIndex) || splitIndex < 0 || splitIndex >= t.count) {
      throw new UsageError(`Step '${step}' follows a foreach of ${t.count}: give --split-index from 0 to ${t.count - 1}, got ${splitIndex}`);
    }
    return [...first.frames, { kind: "foreach", step: first.step, taskId: first.taskId, index: splitIndex, count: t.count, items: t.items }];
  }
  if (t?.kind === "branch") {
    const index = t.to.indexOf(step);
    return [...first.frames, { kind: "branch", step: first.step, taskId: first.taskId, index, count: t.to.length }];
  }
  return [...first.frames];
}

/** The run's bundle as a local file (compiled by the executor), fetched by hash once per machine. */
async function localBundle(backends: Backends, codePackage: string): Promise<string> {
  const manifest = JSON.parse((await backends.store.get(codePackage)).toString("utf8")) as CodeManifest;
  const dir = path.join(backends.localDir, "bundles");
  const file = path.join(dir, `${manifest.bundle}.cjs`);
  if (!fs.existsSync(file)) {
    await fs.promises.mkdir(dir, { recursive: true });
    // Nodes sharing this directory (a cluster's shared filesystem) can have the same pid.
    const tmp = `${file}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
    await fs.promises.writeFile(tmp, await backends.store.get(manifest.sourceMap));
    await fs.promises.rename(tmp, `${file}.map`);
    await fs.promises.writeFile(tmp, await backends.store.get(manifest.bundle));
    await fs.promises.rename(tmp, file);
  }
  return file;
}

async function execute(backends: Backends, spec: TaskSpec, o: RemoteTaskOptions, library: Record<string, unknown>): Promise<RemoteTaskResult> {
  const { metadata } = backends;
  const prefix = `[${spec.runId}/${spec.step}/${spec.taskId}${o.label ? ` (${o.label})` : ""}]`;
  await metadata.startAttempt(spec.flowName, spec.runId, spec.step, spec.taskId, {
    attempt: spec.attempt,
    startedAt: Date.now(),
    pid: process.pid,
    parents: spec.parents.filter((p) => p.step !== "_parameters").map((p) => `${spec.flowName}/${spec.runId}/${p.step}/${p.taskId}`),
    frames: spec.frames,
  });
  const logs = new AttemptLogs(backends.storage, `flows/${spec.flowName}/${spec.runId}/${spec.step}/${spec.taskId}`, spec.attempt, (stream, line) =>
    (stream === "stdout" ? process.stdout : process.stderr).write(`${prefix} ${line}\n`),
  );
  // An error no step awaited (a stray rejection, a throw from an I/O callback) fails the attempt.
  let strayFail: (err: unknown) => void = () => undefined;
  const stray = new Promise<never>((_, reject) => (strayFail = reject));
  const onStray = (err: unknown) => strayFail(err);
  process.on("unhandledRejection", onStray);
  process.on("uncaughtException", onStray);
  try {
    const result = await Promise.race([executeTask(spec, library, (stream, text) => logs.write(stream, text)), stray]);
    await logs.close();
    await metadata.endAttempt(spec.flowName, spec.runId, spec.step, spec.taskId, {
      attempt: spec.attempt,
      finishedAt: Date.now(),
      status: "completed",
      artifacts: result.artifacts,
      transition: result.transition,
    });
    return { ok: true, transition: result.transition };
  } catch (err) {
    const cause = err instanceof ExecutionFailure ? err.cause : err;
    const error = mapError(cause, spec.bundlePath);
    for (const line of formatTaskError(error)) logs.line("stderr", line);
    await logs.close();
    await metadata.endAttempt(spec.flowName, spec.runId, spec.step, spec.taskId, {
      attempt: spec.attempt,
      finishedAt: Date.now(),
      status: "failed",
      // What the attempt had assigned before it failed (the executor stored it), as a local run keeps it.
      artifacts: err instanceof ExecutionFailure ? (err.artifacts ?? []) : [],
      error,
    });
    return { ok: false, error };
  } finally {
    process.off("unhandledRejection", onStray);
    process.off("uncaughtException", onStray);
  }
}
