/**
 * `runFlow`: a local run (or a resume) from options to summary — load and check the flow, build
 * each step's plan, record the run, run the scheduling loop, record how it ended.
 */
import { promises as fs } from "node:fs";
import { openBackends, type Backends } from "../backends.js";
import { currentUser, VERSION } from "../config.js";
import { toPlainError, UsageError, type PlainError } from "../errors.js";
import { pressureOf } from "../datastore/logs.js";
import { discardPrewarmed, launcherFactory, launcherKinds, preflightLaunchers, prewarmLaunchers } from "../launchers/builtins.js";
import { validateTag } from "../metadata/tags.js";
import type { StepNode } from "../graph/types.js";
import type { RunRecord } from "../metadata/types.js";
import { loadFlow, type LoadedFlow } from "./load-flow.js";
import { resolveParameters } from "./parameters.js";
import { storeRunPlan } from "../task/run-plan.js";
import { buildSetups, runPlanOf, type StepSetup } from "./plans.js";
import { flowRunTags } from "./run-tags.js";
import { loadOrigin, type Origin } from "./resume.js";
import { doneLine, finishRun, startRun, type StartedRun } from "./run-record.js";
import { LiveConsole, type TaskProgress } from "./progress.js";
import { Scheduler, type LoopResult, type SchedulerSetup, type TaskStat } from "./scheduler.js";

export type { TaskStat } from "./scheduler.js";

/** Options of a local run. Every field but `flowFile` has a default. */
export interface RunOptions {
  readonly flowFile: string;
  /** Parameter values: strings from the CLI or typed values from code. @default {} */
  readonly parameters?: Readonly<Record<string, unknown>>;
  /** User tags. @default [] */
  readonly tags?: readonly string[];
  /** Tasks running at once. @default 16 */
  readonly maxWorkers?: number;
  /** Most tasks a single foreach may create. @default 100 */
  readonly maxNumSplits?: number;
  /** `--with` decorators, e.g. `retry` or `timeout:seconds=60`. @default [] */
  readonly with?: readonly string[];
  /** `process` runs every task in its own process. @default "context" */
  readonly isolation?: "context" | "process";
  /** Datastore directory. @default the nearest `.metaflow` */
  readonly datastoreRoot?: string;
  /** Where console lines go. @default process.stdout / process.stderr */
  readonly output?: (stream: "stdout" | "stderr", line: string) => void;
  /** Write the run id to this file as soon as it is known. */
  readonly runIdFile?: string;
  /** Called as soon as the run id is known. */
  readonly onRunId?: (runId: string) => void;
  /** Aborting stops every task and fails the run. */
  readonly signal?: AbortSignal;
  /** Environment for parameters' `METAFLOW_RUN_*` defaults and the user name. @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Resume an earlier run instead of starting from scratch. */
  readonly resume?: ResumeOptions;
  /** Datastore and metadata to use. @default opened from the configuration */
  readonly backends?: Backends;
  /** `--branch B`: a `@project` flow's run on the test branch `test.B`. @default the user's branch */
  readonly branch?: string;
  /** `--production`: a `@project` flow's run on the `prod` branch. @default false */
  readonly production?: boolean;
}

/** What `metaflow resume` asks for. */
export interface ResumeOptions {
  /** The run to resume. @default the latest run of this flow by this user */
  readonly originRunId?: string;
  /** Rerun this step and everything after it. @default the steps that did not finish */
  readonly step?: string;
  /** Resume even when the origin run is still running (its runtime sends heartbeats). @default false */
  readonly force?: boolean;
}

/** How a run ended. */
export interface RunSummary {
  readonly flow: string;
  readonly runId: string;
  readonly pathspec: string;
  readonly status: "completed" | "failed";
  readonly failedStep?: string;
  readonly failedTask?: string;
  readonly error?: PlainError;
  readonly interrupted: boolean;
  /** Tasks this run executed (a retried task counts once; clones are counted in `cloned`). */
  readonly tasks: number;
  /** Tasks copied from the origin run by resume. */
  readonly cloned: number;
  readonly originRunId?: string;
  readonly wallMs: number;
  readonly stats: readonly TaskStat[];
  /** Set when the run stopped because an attempt (or its end) could not be recorded in the metadata. */
  readonly metadataError?: PlainError;
  /** False when the run's end could not be recorded (it then reads as failed once its heartbeat stops). */
  readonly endRecorded: boolean;
}

/** A flow checked and planned, ready to run. */
interface Prepared {
  readonly flow: LoadedFlow;
  readonly setups: Map<string, StepSetup>;
  readonly parameters: Record<string, unknown>;
  /** System tags the flow decorators give the run (`project:...`). */
  readonly runTags: readonly string[];
}

/**
 * Runs a flow locally and resolves when it ends (successfully or not). Errors before the run
 * starts (bad file, bad graph, bad parameter, bad option) reject with a MetaflowError.
 */
export async function runFlow(options: RunOptions, library: Record<string, unknown>, preloaded?: LoadedFlow): Promise<RunSummary> {
  const maxWorkers = checkCount("--max-workers", options.maxWorkers ?? 16);
  const maxNumSplits = checkCount("--max-num-splits", options.maxNumSplits ?? 100);
  const env = options.env ?? process.env;
  // On a terminal, large foreach steps get a live status line instead of a line per task.
  const live = options.output === undefined && process.stdout.isTTY && process.env.TERM !== "dumb" ? new LiveConsole(process.stdout, process.stderr) : undefined;
  const output = options.output ?? live?.write.bind(live) ?? ((stream, line) => (stream === "stdout" ? process.stdout : process.stderr).write(`${line}\n`));
  const pressure = options.output ? undefined : consolePressure;
  // A worker starts while the flow is bundled, so the first task does not wait for a cold process.
  prewarmLaunchers();
  let prepared: Prepared;
  let backends: Backends;
  try {
    prepared = await prepare(options, library, env, preloaded);
    backends = options.backends ?? openBackends({ ...(options.datastoreRoot ? { datastoreRoot: options.datastoreRoot } : {}), env });
  } catch (err) {
    discardPrewarmed();
    live?.close();
    throw err;
  }
  try {
    return await execute(prepared, { ...options, maxWorkers, maxNumSplits, env, output, pressure, progress: live?.progress }, backends);
  } finally {
    live?.close();
    discardPrewarmed();
    if (!options.backends) backends.close();
  }
}

async function prepare(options: RunOptions, library: Record<string, unknown>, env: Readonly<Record<string, string | undefined>>, preloaded?: LoadedFlow): Promise<Prepared> {
  const flow = preloaded ?? (await loadFlow(options.flowFile, library));
  const setups = buildSetups(flow, options.with ?? [], options.isolation ?? "context");
  for (const [step, setup] of setups) {
    if (!launcherFactory(setup.plan.launcher.kind)) {
      throw new UsageError(`step '${step}' asks for task launcher '${setup.plan.launcher.kind}', which does not exist; known: ${launcherKinds().join(", ")}`);
    }
  }
  const given = Object.keys(options.parameters ?? {});
  if (options.resume && given.length > 0) {
    throw new UsageError(`resume reuses the parameters of the run it resumes; drop ${given.map((p) => `--${p}`).join(", ")} or start a new run with 'metaflow run'`);
  }
  if (options.resume?.step !== undefined && !flow.graph.steps.some((s) => s.name === options.resume?.step)) {
    throw new UsageError(`resume: the flow has no step '${options.resume.step}'; its steps are ${flow.graph.steps.map((s) => s.name).join(", ")}`);
  }
  const parameters = options.resume ? {} : resolveParameters(flow.parameters, options.parameters ?? {}, env);
  for (const t of options.tags ?? []) validateTag(t);
  const runTags = flowRunTags(flow, currentUser(env), { ...(options.branch !== undefined ? { branch: options.branch } : {}), production: options.production === true });
  return { flow, setups, parameters, runTags };
}

type Resolved = RunOptions & {
  maxWorkers: number;
  maxNumSplits: number;
  env: Readonly<Record<string, string | undefined>>;
  output: (stream: "stdout" | "stderr", line: string) => void;
  progress: TaskProgress | undefined;
  pressure: (() => Promise<void> | undefined) | undefined;
};

/** While stdout or stderr holds more than its buffer (a slow reader of a pipe), a promise of its drain. */
function consolePressure(): Promise<void> | undefined {
  return pressureOf([process.stdout, process.stderr]);
}

async function execute({ flow, setups, parameters, runTags }: Prepared, options: Resolved, backends: Backends): Promise<RunSummary> {
  const t0 = performance.now();
  const say = (line: string, stream: "stdout" | "stderr" = "stdout") => options.output(stream, line);
  const user = currentUser(options.env);
  const nodes = new Map(flow.graph.steps.map((s) => [s.name, s]));
  // Launchers check what they need (a cluster, a datastore its nodes reach) before anything is recorded.
  await preflightLaunchers([...setups].map(([step, { plan }]) => ({ step, plan })), { backends, maxWorkers: options.maxWorkers });
  let origin: Origin | undefined;
  if (options.resume) origin = await loadOrigin(backends.metadata, flow.className, user, options.resume, nodes);
  const originRecord: RunRecord | undefined = origin?.record;
  const started = await startRun({
    flow,
    backends,
    user,
    parameters,
    tags: options.tags ?? [],
    runTags,
    ...(originRecord ? { origin: originRecord } : {}),
    // A run-id file that cannot be written fails before the run exists, so no run is left without an end.
    storePlan: (codePackage) => storeRunPlan(backends.store, runPlanOf(flow, setups, codePackage, options.maxNumSplits)),
    beforeRecord: async () => {
      if (options.runIdFile) await checkWritable(options.runIdFile);
    },
  });
  const { runId } = started;
  options.onRunId?.(runId);
  if (options.runIdFile) await fs.writeFile(options.runIdFile, runId);
  say(`Metaflow.ts ${VERSION} executing ${flow.className} for user:${user}`);
  if (originRecord) say(`Resuming run ${flow.className}/${originRecord.runId}: finished tasks are cloned, the rest runs again.`);
  say(`Workflow starting (run-id ${runId}):`);
  const scheduler = new Scheduler(schedulerSetup({ flow, setups, backends, options, say, user, started, origin, nodes }));
  const result = await scheduler.run(started.parameterRefs, options.signal);
  const ended = await recordEnd(backends, flow.className, runId, result);
  const wallMs = performance.now() - t0;
  const pathspec = `${flow.className}/${runId}`;
  // stats has one entry per attempt; a retried task counts once.
  const ranTasks = new Set(result.stats.map((t) => t.taskId)).size;
  const status = ended.metadataError ? "failed" : ended.status;
  if (status === "completed") say(doneLine(pathspec, ranTasks, result.stats.length, result.cloned, originRecord?.runId, wallMs));
  return {
    flow: flow.className,
    runId,
    pathspec,
    status,
    endRecorded: ended.recorded,
    ...(ended.metadataError ? { metadataError: ended.metadataError } : {}),
    ...(result.failure ? { failedStep: result.failure.step, failedTask: result.failure.taskId, error: result.failure.error } : {}),
    interrupted: result.interrupted,
    tasks: ranTasks,
    cloned: result.cloned,
    ...(originRecord ? { originRunId: originRecord.runId } : {}),
    wallMs,
    stats: result.stats,
  };
}

/**
 * Records how the run ended. After a metadata service outage (the loop stopped because it could not
 * record an attempt) it is not tried: the service would refuse it too, after another retry window,
 * and it shows the run as failed once the run's heartbeats stop.
 */
async function recordEnd(backends: Backends, flow: string, runId: string, result: LoopResult): Promise<{ status: "completed" | "failed"; recorded: boolean; metadataError?: PlainError }> {
  const failedStatus = { status: "failed" as const, recorded: false };
  if (result.metadataError?.code === "metadata-service-unavailable") return { ...failedStatus, metadataError: result.metadataError };
  try {
    const status = await finishRun(backends, flow, runId, result.failure, result.interrupted);
    return { status, recorded: true, ...(result.metadataError ? { metadataError: result.metadataError } : {}) };
  } catch (err) {
    const e = toPlainError(err);
    const what = `could not record the end of run ${flow}/${runId} in the metadata`;
    return { ...failedStatus, metadataError: result.metadataError ?? { name: "MetadataError", ...(e.code ? { code: e.code } : {}), headline: what, message: `${what}: ${e.message}` } };
  }
}

/** Everything the scheduling loop needs, from the prepared flow and the started run. */
function schedulerSetup(o: {
  flow: LoadedFlow;
  setups: Map<string, StepSetup>;
  backends: Backends;
  options: Resolved;
  say: (line: string, stream?: "stdout" | "stderr") => void;
  user: string;
  started: StartedRun;
  origin: Origin | undefined;
  nodes: Map<string, StepNode>;
}): SchedulerSetup {
  const { flow, started, origin, options } = o;
  return {
    flowName: flow.className,
    runId: started.runId,
    nodes: o.nodes,
    setups: o.setups,
    backends: o.backends,
    maxWorkers: options.maxWorkers,
    say: o.say,
    ...(options.progress ? { progress: options.progress } : {}),
    ...(options.pressure ? { pressure: options.pressure } : {}),
    base: {
      flowName: flow.className,
      className: flow.className,
      runId: started.runId,
      flowFile: flow.bundle.file,
      bundlePath: started.bundlePath,
      storage: o.backends.storageSpec,
      parameterNames: flow.parameters.map((p) => p.field),
      maxNumSplits: options.maxNumSplits,
      flowDecorators: flow.flowDecorators,
      username: o.user,
      tags: [...started.systemTags, ...(options.tags ?? [])],
      namespace: `user:${o.user}`,
      originRunId: origin?.record.runId,
      runPlan: started.runPlan,
    },
    ...(origin ? { origin: { runId: origin.record.runId, tasks: origin.tasks, rerun: origin.rerun } } : {}),
  };
}

async function checkWritable(file: string): Promise<void> {
  try {
    await fs.writeFile(file, "");
  } catch (err) {
    throw new UsageError(`--run-id-file ${file}: cannot write it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give a path in a writable directory`);
  }
}

function checkCount(flag: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new UsageError(`${flag} must be a whole number ≥ 1, got ${v}`);
  return v;
}
