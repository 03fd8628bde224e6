/**
 * The scheduler: runs a flow's tasks in worker hosts, in parallel up to `maxWorkers`, following
 * the transitions each task takes, and records everything in the metadata provider. A task's
 * failure (a throw, a crash, a kill) fails only that task; the scheduler's bookkeeping goes on.
 */
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { ArtifactRef } from "../datastore/types.js";
import { defaultPlan, findDecorator, parseWithFlag, type DecoratorSpec, type TaskPlan } from "../decorators/contract.js";
import { MetaflowError, UsageError, type PlainError } from "../errors.js";
import { openBackends, logKey, type Backends } from "./backends.js";
import { currentUser, VERSION } from "../config.js";
import type { RecordedTransition } from "../flow/flowspec.js";
import type { StepNode } from "../graph/types.js";
import type { RunRecord, SplitFrame, TakenTransition } from "../metadata/types.js";
import { validateTag } from "../metadata/tags.js";
import { storeCodePackage } from "./code-package.js";
import { loadOrigin, taskKey, type OriginTask } from "./resume.js";
import { loadFlow, type LoadedFlow } from "./load-flow.js";
import { AttemptLogs } from "./logs.js";
import { resolveParameters } from "./parameters.js";
import { takeWarmHost, WorkerHost, type HostExit } from "./pool.js";
import type { ParentTask, TaskSpec, TaskTimings } from "./protocol.js";

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
}

/** What `metaflow resume` asks for. */
export interface ResumeOptions {
  /** The run to resume. @default the latest run of this flow by this user */
  readonly originRunId?: string;
  /** Rerun this step and everything after it. @default the steps that did not finish */
  readonly step?: string;
}

/** Per-task figures, for the benchmark and the summary. */
export interface TaskStat {
  readonly step: string;
  readonly taskId: string;
  readonly wallMs: number;
  readonly timings?: TaskTimings;
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
}

interface ReadyTask {
  /** Identity of the task across runs (step, split positions, parents), used to match on resume. */
  readonly key: string;
  readonly step: string;
  readonly taskId: string;
  readonly attempt: number;
  readonly parents: readonly ParentTask[];
  readonly frames: readonly SplitFrame[];
  readonly notBefore: number;
  readonly catchInto?: TaskSpec["catchInto"];
}

/** The scheduler's handle on a task that a host is running. */
interface RunningTask {
  readonly task: ReadyTask;
  readonly host: WorkerHost;
  readonly logs: AttemptLogs;
  readonly startedAt: number;
  timer: NodeJS.Timeout | undefined;
  timedOut: boolean;
  /** Set once the task's end (success or failure) is being recorded. */
  settled: boolean;
  started: Promise<void>;
}

const HOST_RECYCLE_AFTER = 500;

/** Re-exported from its own module, where the client and the `tag` command share it. */
export { validateTag } from "../metadata/tags.js";

/**
 * Runs a flow locally and resolves when it ends (successfully or not). Errors before the run
 * starts (bad file, bad graph, bad parameter, bad option) reject with a MetaflowError.
 */
export async function runFlow(
  options: RunOptions,
  library: Record<string, unknown>,
  preloaded?: LoadedFlow,
): Promise<RunSummary> {
  const maxWorkers = checkCount("--max-workers", options.maxWorkers ?? 16);
  const maxNumSplits = checkCount("--max-num-splits", options.maxNumSplits ?? 100);
  const env = options.env ?? process.env;
  const output =
    options.output ??
    ((stream, line) => (stream === "stdout" ? process.stdout : process.stderr).write(`${line}\n`));

  // A host starts while the flow is bundled, so the first task does not wait for a cold process.
  const warm = takeWarmHost();
  let flow: LoadedFlow;
  let parameters: Record<string, unknown>;
  let plans: Map<string, TaskPlan>;
  try {
    flow = preloaded ?? (await loadFlow(options.flowFile, library));
    plans = buildPlans(flow, options.with ?? [], options.isolation ?? "context");
    if (options.resume && Object.keys(options.parameters ?? {}).length > 0) {
      throw new UsageError(
        `resume reuses the parameters of the run it resumes; drop ${Object.keys(options.parameters ?? {})
          .map((p) => `--${p}`)
          .join(", ")} or start a new run with 'metaflow run'`,
      );
    }
    if (options.resume?.step !== undefined && !flow.graph.steps.some((s) => s.name === options.resume?.step)) {
      throw new UsageError(
        `resume: the flow has no step '${options.resume.step}'; its steps are ${flow.graph.steps.map((s) => s.name).join(", ")}`,
      );
    }
    parameters = options.resume ? {} : resolveParameters(flow.parameters, options.parameters ?? {}, env);
    for (const t of options.tags ?? []) validateTag(t);
  } catch (err) {
    warm.kill();
    throw err;
  }
  const scheduler = new Scheduler(flow, plans, parameters, {
    ...options,
    maxWorkers,
    maxNumSplits,
    output,
    env,
  });
  return scheduler.run(warm);
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

function buildPlans(flow: LoadedFlow, withFlags: readonly string[], isolation: "context" | "process"): Map<string, TaskPlan> {
  const fromCli: DecoratorSpec[] = withFlags.map((text) => {
    const { name, raw } = parseWithFlag(text);
    const def = findDecorator(name);
    if (!def) {
      throw new UsageError(`--with ${text}: there is no decorator '${name}'`);
    }
    try {
      return { name, options: def.parse(raw, "cli") as Record<string, unknown> };
    } catch (err) {
      throw new UsageError(`--with ${text}: ${(err as Error).message}`);
    }
  });
  const plans = new Map<string, TaskPlan>();
  for (const node of flow.graph.steps) {
    const plan = defaultPlan();
    plan.isolation = isolation;
    const inCode = flow.decorators.get(node.name) ?? [];
    // A decorator written on the step wins over the same one given with --with.
    const all = [...fromCli.filter((c) => !inCode.some((d) => d.name === c.name)).map((d) => ({ d, cli: true })), ...inCode.map((d) => ({ d, cli: false }))];
    for (const { d, cli } of all) {
      const def = findDecorator(d.name);
      def?.plan?.(d.options, plan, { step: node.name, fromCli: cli });
    }
    plans.set(node.name, plan);
  }
  return plans;
}

class Scheduler {
  private readonly nodes: Map<string, StepNode>;
  private readonly queue: ReadyTask[] = [];
  private readonly running = new Map<string, RunningTask>();
  private readonly hosts = new Set<WorkerHost>();
  private readonly joins = new Map<string, { needed: number; arrived: Array<ParentTask | undefined>; count: number }>();
  private readonly stats: TaskStat[] = [];
  private readonly backends: Backends;
  private readonly ownBackends: boolean;
  private readonly user: string;
  private readonly keys = new Map<string, string>();
  private origin: { runId: string; tasks: ReadonlyMap<string, OriginTask>; rerun: ReadonlySet<string> } | undefined;
  private cloning = 0;
  private cloned = 0;
  private readonly cpuCount = Math.max(1, os.availableParallelism());
  private nextTaskId = 1;
  private runId = "";
  private bundlePath = "";
  private failure: { step: string; taskId: string; error: PlainError } | undefined;
  private interrupted = false;
  private finished!: () => void;
  private readonly done = new Promise<void>((resolve) => (this.finished = resolve));
  private wakeTimer: NodeJS.Timeout | undefined;
  private systemTags: string[] = [];
  private readonly pendingWrites = new Set<Promise<unknown>>();

  constructor(
    private readonly flow: LoadedFlow,
    private readonly plans: Map<string, TaskPlan>,
    private readonly parameters: Record<string, unknown>,
    private readonly opts: RunOptions & {
      maxWorkers: number;
      maxNumSplits: number;
      output: (stream: "stdout" | "stderr", line: string) => void;
      env: Readonly<Record<string, string | undefined>>;
    },
  ) {
    this.nodes = new Map(flow.graph.steps.map((s) => [s.name, s]));
    this.ownBackends = opts.backends === undefined;
    this.backends =
      opts.backends ?? openBackends({ ...(opts.datastoreRoot ? { datastoreRoot: opts.datastoreRoot } : {}), env: opts.env });
    this.user = currentUser(opts.env);
  }

  private get store() {
    return this.backends.store;
  }

  private get metadata() {
    return this.backends.metadata;
  }

  private say(line: string, stream: "stdout" | "stderr" = "stdout"): void {
    this.opts.output(stream, line);
  }

  async run(warm: WorkerHost): Promise<RunSummary> {
    const t0 = performance.now();
    this.hosts.add(warm);
    this.watchHost(warm);
    try {
      return await this.execute(warm, t0);
    } finally {
      // Also when the run could not start (a bad origin run, an unreachable service).
      await this.shutdownHosts();
      if (this.ownBackends) this.backends.close();
    }
  }

  private async execute(warm: WorkerHost, t0: number): Promise<RunSummary> {
    const flowName = this.flow.className;
    let originRecord: RunRecord | undefined;
    if (this.opts.resume) {
      originRecord = await this.loadOrigin(this.opts.resume);
    }
    const code = await storeCodePackage(
      this.store,
      this.flow.bundle,
      this.flow.displayFile,
      flowName,
      path.join(this.backends.localDir, "bundles"),
    );
    this.bundlePath = code.bundlePath;
    const parameterRefs: ArtifactRef[] = originRecord ? [...originRecord.parameterRefs] : [];
    for (const p of originRecord ? [] : this.flow.parameters) {
      const stored = await this.store.putValue(this.parameters[p.name]);
      parameterRefs.push({
        name: p.field,
        hash: stored.hash,
        size: stored.size,
        encoding: stored.encoding,
        type: stored.type,
        ...(stored.typedArray ? { typedArray: stored.typedArray } : {}),
      });
    }
    // A run-id file that cannot be written fails before the run exists, so no run is left without an end.
    if (this.opts.runIdFile) await checkWritable(this.opts.runIdFile);
    const createdAt = Date.now();
    this.systemTags = [
      `user:${this.user}`,
      `metaflow_version:${VERSION}`,
      `node_version:${process.versions.node}`,
      `runtime:dev`,
      `date:${new Date(createdAt).toISOString().slice(0, 10)}`,
    ];
    this.runId = await this.metadata.newRun({
      flow: flowName,
      user: this.user,
      createdAt,
      parameters: originRecord ? originRecord.parameters : summariseParameters(this.flow, this.parameters),
      parameterRefs,
      systemTags: this.systemTags,
      tags: [...(this.opts.tags ?? [])],
      codePackage: code.hash,
      flowFile: this.flow.displayFile,
      className: flowName,
      ...(originRecord ? { originRunId: originRecord.runId } : {}),
    });
    this.opts.onRunId?.(this.runId);
    if (this.opts.runIdFile) await fs.writeFile(this.opts.runIdFile, this.runId);
    const onAbort = () => this.interrupt();
    if (this.opts.signal?.aborted) this.interrupt();
    this.opts.signal?.addEventListener("abort", onAbort, { once: true });

    this.say(`Metaflow.ts ${VERSION} executing ${flowName} for user:${this.user}`);
    if (originRecord) this.say(`Resuming run ${flowName}/${originRecord.runId}: finished tasks are cloned, the rest runs again.`);
    this.say(`Workflow starting (run-id ${this.runId}):`);
    this.enqueue({
      key: taskKey("start", [], []),
      step: "start",
      taskId: this.newTaskId(),
      attempt: 0,
      parents: [{ step: "_parameters", taskId: "0", artifacts: parameterRefs, frames: [] }],
      frames: [],
      notBefore: 0,
    });
    this.pump();
    await this.done;
    this.opts.signal?.removeEventListener("abort", onAbort);
    await this.shutdownHosts();
    await Promise.all(this.pendingWrites);
    // Any stray host (e.g. one still starting) is gone before the run is declared over.
    await Promise.all([...this.hosts].map((h) => h.exited));

    const status = this.failure || this.interrupted ? "failed" : "completed";
    await this.metadata.finishRun(flowName, this.runId, {
      status,
      finishedAt: Date.now(),
      ...(this.failure ? { failedStep: this.failure.step, error: this.failure.error } : {}),
    });
    const wallMs = performance.now() - t0;
    const pathspec = `${flowName}/${this.runId}`;
    // stats has one entry per attempt; a retried task counts once.
    const ranTasks = new Set(this.stats.map((t) => t.taskId)).size;
    if (status === "completed") {
      const cloned = this.cloned > 0 ? ` (and ${this.cloned} cloned from run ${originRecord?.runId})` : "";
      const retried = this.stats.length - ranTasks;
      const retries = retried > 0 ? `, ${retried} retried attempt${retried === 1 ? "" : "s"}` : "";
      this.say(`Done! ${pathspec}: ${ranTasks} tasks${cloned}${retries} in ${(wallMs / 1000).toFixed(2)} s.`);
    }
    return {
      flow: flowName,
      runId: this.runId,
      pathspec,
      status,
      ...(this.failure
        ? { failedStep: this.failure.step, failedTask: this.failure.taskId, error: this.failure.error }
        : {}),
      interrupted: this.interrupted,
      tasks: ranTasks,
      cloned: this.cloned,
      ...(originRecord ? { originRunId: originRecord.runId } : {}),
      wallMs,
      stats: this.stats,
    };
  }

  private newTaskId(): string {
    return String(this.nextTaskId++);
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.pendingWrites.add(p);
    void p.finally(() => this.pendingWrites.delete(p)).catch(() => undefined);
    return p;
  }

  private enqueue(task: ReadyTask): void {
    this.keys.set(task.taskId, task.key);
    const match = this.origin && !this.origin.rerun.has(task.step) ? this.origin.tasks.get(task.key) : undefined;
    if (match && this.canClone(match)) {
      void this.clone(task, match);
      return;
    }
    this.queue.push(task);
  }

  /** A clone must lead where the current code's graph leads. */
  private canClone(o: OriginTask): boolean {
    const t = o.transition;
    const targets = t.kind === "end" ? [] : t.kind === "branch" ? t.to : [t.to];
    return this.nodes.has(o.step) && targets.every((s) => this.nodes.has(s));
  }

  /** Copies a finished task of the origin run into this run instead of running it again. */
  private async clone(task: ReadyTask, o: OriginTask): Promise<void> {
    this.cloning += 1;
    try {
      const flowName = this.flow.className;
      const from = `${flowName}/${this.origin!.runId}/${o.step}/${o.taskId}`;
      this.say(`[${this.runId}/${task.step}/${task.taskId}] Cloned from ${from}.`);
      await this.metadata.startAttempt(flowName, this.runId, task.step, task.taskId, {
        attempt: 0,
        startedAt: Date.now(),
        pid: process.pid,
        parents: task.parents
          .filter((p) => p.step !== "_parameters")
          .map((p) => `${flowName}/${this.runId}/${p.step}/${p.taskId}`),
        frames: task.frames,
      });
      // The origin attempt's logs come along, so the clone reads like the task it copies.
      await Promise.all(
        (["stdout", "stderr"] as const).map(async (stream) => {
          const text = await this.backends.storage.get(logKey(flowName, this.origin!.runId, o.step, o.taskId, o.attempt, stream));
          if (text) await this.backends.storage.put(logKey(flowName, this.runId, task.step, task.taskId, 0, stream), text);
        }),
      );
      await this.metadata.endAttempt(flowName, this.runId, task.step, task.taskId, {
        attempt: 0,
        finishedAt: Date.now(),
        status: "completed",
        artifacts: o.artifacts,
        transition: o.transition,
        clonedFrom: from,
      });
      this.cloned += 1;
      if (!this.stopping) this.route(task, o.artifacts, o.transition);
    } catch (err) {
      this.failure ??= {
        step: task.step,
        taskId: task.taskId,
        error: { name: "CloneError", message: `could not clone the task: ${(err as Error).message}` },
      };
    } finally {
      this.cloning -= 1;
      this.pump();
    }
  }

  /** Reads the origin run of a resume. */
  private async loadOrigin(resume: ResumeOptions): Promise<RunRecord> {
    const origin = await loadOrigin(this.metadata, this.flow.className, this.user, resume, this.nodes);
    this.origin = { runId: origin.record.runId, tasks: origin.tasks, rerun: origin.rerun };
    return origin.record;
  }

  private get stopping(): boolean {
    return this.failure !== undefined || this.interrupted;
  }

  /** Starts queued tasks while there is capacity; ends the run when nothing is left. */
  private pump(): void {
    if (this.wakeTimer) {
      clearTimeout(this.wakeTimer);
      this.wakeTimer = undefined;
    }
    if (this.stopping) this.queue.length = 0;
    const now = Date.now();
    let earliest = Infinity;
    // Decided once per pass, so a burst of waiting tasks gets all the hosts it needs at once.
    const shared = [...this.hosts].filter((h) => !h.dedicated && h.isAlive);
    const grow = shared.length >= this.cpuCount && shared.every((h) => h.busySince !== undefined && performance.now() - h.busySince > 100);
    for (let i = 0; i < this.queue.length && this.running.size < this.opts.maxWorkers; ) {
      const task = this.queue[i]!;
      if (task.notBefore > now) {
        earliest = Math.min(earliest, task.notBefore);
        i++;
        continue;
      }
      const host = this.hostFor(task, grow);
      if (!host) break;
      this.queue.splice(i, 1);
      host.reserve();
      this.dispatch(task, host);
    }
    if (this.queue.length === 0 && this.running.size === 0 && this.cloning === 0) {
      this.finished();
      return;
    }
    if (this.queue.length > 0) {
      // Re-check soon: a delayed retry comes due, or long tasks justify another host.
      const wait = Number.isFinite(earliest) ? Math.max(5, earliest - now) : 50;
      this.wakeTimer = setTimeout(() => this.pump(), Math.min(wait, 50));
    }
  }

  /**
   * Picks a host for a task: an idle shared one, a new one while there are fewer hosts than cores,
   * or (up to max-workers) when every host has been busy for a while — short tasks are better
   * served by waiting than by paying for a process start.
   */
  private hostFor(task: ReadyTask, grow: boolean): WorkerHost | undefined {
    const plan = this.plans.get(task.step)!;
    if (plan.isolation === "process") {
      const args = plan.memoryMb ? [`--max-old-space-size=${plan.memoryMb}`] : [];
      const host = new WorkerHost(true, args, (t) => this.say(t.trimEnd(), "stderr"));
      this.hosts.add(host);
      this.watchHost(host);
      return host;
    }
    for (const h of this.hosts) if (!h.dedicated && h.isAlive && !h.busy) return h;
    const shared = [...this.hosts].filter((h) => !h.dedicated && h.isAlive).length;
    if (shared < this.cpuCount || grow) {
      const host = new WorkerHost(false, [], (t) => this.say(t.trimEnd(), "stderr"));
      this.hosts.add(host);
      this.watchHost(host);
      return host;
    }
    return undefined;
  }

  private watchHost(host: WorkerHost): void {
    void host.exited.then(() => {
      this.hosts.delete(host);
      if (!this.stopping) this.pump();
    });
  }

  private prefix(task: ReadyTask, host: WorkerHost): string {
    return `[${this.runId}/${task.step}/${task.taskId} (pid ${host.pid})]`;
  }

  private dispatch(task: ReadyTask, host: WorkerHost): void {
    const node = this.nodes.get(task.step)!;
    const plan = this.plans.get(task.step)!;
    const prefix = this.prefix(task, host);
    const logs = new AttemptLogs(
      this.backends.storage,
      `flows/${this.flow.className}/${this.runId}/${task.step}/${task.taskId}`,
      task.attempt,
      (stream, line) => this.say(`${prefix} ${line}`, stream),
    );
    const started = this.track(
      this.metadata.startAttempt(this.flow.className, this.runId, task.step, task.taskId, {
        attempt: task.attempt,
        startedAt: Date.now(),
        pid: host.pid,
        parents: task.parents
          .filter((p) => p.step !== "_parameters")
          .map((p) => `${this.flow.className}/${this.runId}/${p.step}/${p.taskId}`),
        frames: task.frames,
      }),
    );
    const running: RunningTask = { task, host, logs, startedAt: performance.now(), timer: undefined, timedOut: false, settled: false, started };
    this.running.set(task.taskId, running);
    this.say(`${prefix} ${task.catchInto ? "Storing the caught error." : "Task is starting."}${task.attempt > 0 && !task.catchInto ? ` (retry ${task.attempt})` : ""}`);
    if (task.catchInto && plan.printCaught) {
      logs.line("stderr", `@catchError caught ${task.catchInto.error.name}: ${task.catchInto.error.message}`);
    }

    const spec: TaskSpec = {
      flowName: this.flow.className,
      className: this.flow.className,
      runId: this.runId,
      step: task.step,
      taskId: task.taskId,
      attempt: task.attempt,
      flowFile: this.flow.bundle.file,
      bundlePath: this.bundlePath,
      storage: this.backends.storageSpec,
      parents: task.parents,
      frames: task.frames,
      isJoin: node.isJoin,
      isEnd: node.next.kind === "end",
      parameterNames: this.flow.parameters.map((p) => p.field),
      maxNumSplits: this.opts.maxNumSplits,
      env: plan.env,
      username: this.user,
      tags: [...this.systemTags, ...(this.opts.tags ?? [])],
      namespace: `user:${this.user}`,
      originRunId: this.origin?.runId,
      ...(task.catchInto ? { catchInto: task.catchInto } : {}),
    };
    const begin = () => {
      if (plan.timeoutMs !== undefined && !task.catchInto) {
        running.timer = setTimeout(() => {
          running.timedOut = true;
          host.kill("SIGKILL");
        }, plan.timeoutMs);
      }
      host.run(spec, {
        onLog: (stream, text) => logs.write(stream, text),
        onDone: (reply) => {
          if (reply.ok) {
            void this.completed(running, reply.artifacts, reply.transition, reply.timings);
          } else {
            void this.failed(running, reply.error, reply.timings);
          }
          // A host that ran a failing task may hold broken state; start clean.
          if (!reply.ok || host.dedicated || host.tasksRun >= HOST_RECYCLE_AFTER) host.kill("SIGTERM");
        },
        onExit: (exit) => void this.failed(running, describeExit(exit, running, plan, task.step), undefined),
      });
    };
    host.ready.then(begin, (err: unknown) => {
      void this.failed(running, { name: "HostError", message: `could not start a worker process: ${(err as Error).message}` }, undefined);
    });
  }

  private async completed(running: RunningTask, artifacts: readonly ArtifactRef[], transition: TakenTransition, timings: TaskTimings): Promise<void> {
    const { task, host } = running;
    if (running.settled) return;
    running.settled = true;
    if (running.timer) clearTimeout(running.timer);
    await running.started;
    await running.logs.close();
    await this.track(
      this.metadata.endAttempt(this.flow.className, this.runId, task.step, task.taskId, {
        attempt: task.attempt,
        finishedAt: Date.now(),
        status: "completed",
        artifacts,
        transition,
      }),
    );
    this.running.delete(task.taskId);
    this.stats.push({ step: task.step, taskId: task.taskId, wallMs: performance.now() - running.startedAt, timings });
    this.say(`${this.prefix(task, host)} Task finished successfully.`);
    if (!this.stopping) this.route(task, artifacts, transition);
    this.pump();
  }

  private async failed(running: RunningTask, error: PlainError, timings: TaskTimings | undefined): Promise<void> {
    const { task, host } = running;
    if (running.settled) return;
    running.settled = true;
    if (running.timer) clearTimeout(running.timer);
    const plan = this.plans.get(task.step)!;
    const prefix = this.prefix(task, host);
    const killedByUs = this.stopping && error.name === "HostExit";
    if (!killedByUs) {
      for (const line of formatTaskError(error)) running.logs.line("stderr", line);
    }
    await running.started;
    await running.logs.close();
    await this.track(
      this.metadata.endAttempt(this.flow.className, this.runId, task.step, task.taskId, {
        attempt: task.attempt,
        finishedAt: Date.now(),
        status: "failed",
        artifacts: [],
        error,
      }),
    );
    this.stats.push({ step: task.step, taskId: task.taskId, wallMs: performance.now() - running.startedAt, ...(timings ? { timings } : {}) });
    // Only now may the run end: until the failure is recorded, the task still counts as running.
    this.running.delete(task.taskId);
    if (this.stopping) {
      this.pump();
      return;
    }
    if (!task.catchInto && task.attempt < plan.retries) {
      this.say(`${prefix} Task failed; retrying (attempt ${task.attempt + 2} of ${plan.retries + 1}).`, "stderr");
      this.enqueue({ ...task, attempt: task.attempt + 1, notBefore: Date.now() + plan.retryDelayMs });
    } else if (!task.catchInto && plan.catchVar !== undefined) {
      const stored = plan.catchVar.startsWith("_")
        ? "lets the flow go on (no var: the error is not stored)"
        : `stores the error in '${plan.catchVar}' and the flow goes on`;
      this.say(`${prefix} Task failed; @catchError ${stored}.`, "stderr");
      const node = this.nodes.get(task.step)!;
      this.enqueue({
        ...task,
        attempt: task.attempt + 1,
        notBefore: 0,
        catchInto: { artifact: plan.catchVar, error, next: staticTransition(node) },
      });
    } else {
      this.say(`${prefix} Task failed.`, "stderr");
      this.failure = { step: task.step, taskId: task.taskId, error };
      // Nothing new starts, but tasks already running finish: their results are kept, so a
      // resume clones them instead of running them again. Ctrl-C stops them at once.
      this.queue.length = 0;
      const others = this.running.size - 1;
      if (others > 0) {
        this.say(`Waiting for ${others} running task${others === 1 ? "" : "s"} to finish before the run ends (Ctrl-C stops them).`, "stderr");
      }
    }
    this.pump();
  }

  /** Queues the tasks that follow a finished one. */
  private route(task: ReadyTask, artifacts: readonly ArtifactRef[], t: TakenTransition): void {
    const me: ParentTask = { step: task.step, taskId: task.taskId, artifacts, frames: task.frames };
    const go = (step: string, frames: readonly SplitFrame[]) => this.arrive(step, me, frames);
    switch (t.kind) {
      case "end":
        return;
      case "linear":
      case "switch":
        go(t.to, task.frames);
        return;
      case "branch":
        t.to.forEach((step, index) =>
          go(step, [...task.frames, { kind: "branch", step: task.step, taskId: task.taskId, index, count: t.to.length }]),
        );
        return;
      case "foreach":
        for (let index = 0; index < t.count; index++) {
          go(t.to, [
            ...task.frames,
            { kind: "foreach", step: task.step, taskId: task.taskId, index, count: t.count, items: t.items },
          ]);
        }
        return;
    }
  }

  /** A task reaches `step`: a join waits for every branch of the split it closes. */
  private arrive(step: string, parent: ParentTask, frames: readonly SplitFrame[]): void {
    const node = this.nodes.get(step);
    if (!node) throw new MetaflowError("internal", `unknown step ${step}`);
    if (!node.isJoin) {
      const key = taskKey(step, frames, [this.keys.get(parent.taskId)!]);
      this.enqueue({ key, step, taskId: this.newTaskId(), attempt: 0, parents: [parent], frames, notBefore: 0 });
      return;
    }
    const top = frames[frames.length - 1];
    if (!top) throw new MetaflowError("internal", `join ${step} reached outside a split`);
    const outer = frames.slice(0, -1);
    const key = `${step}|${outer.map((f) => `${f.taskId}.${f.index}`).join("/")}|${top.taskId}`;
    let pending = this.joins.get(key);
    if (!pending) {
      pending = { needed: top.count, arrived: new Array<ParentTask | undefined>(top.count), count: 0 };
      this.joins.set(key, pending);
    }
    pending.arrived[top.index] = { ...parent, frames };
    pending.count += 1;
    if (pending.count === pending.needed) {
      this.joins.delete(key);
      const parents = pending.arrived as ParentTask[];
      this.enqueue({
        key: taskKey(step, outer, parents.map((p) => this.keys.get(p.taskId)!)),
        step,
        taskId: this.newTaskId(),
        attempt: 0,
        parents,
        frames: outer,
        notBefore: 0,
      });
    }
  }

  private interrupt(): void {
    if (this.interrupted) return;
    this.interrupted = true;
    this.say(`Interrupted: stopping ${this.running.size} running task(s)...`, "stderr");
    this.stopAll();
    this.pump();
  }

  private stopAll(): void {
    this.queue.length = 0;
    for (const r of this.running.values()) r.host.kill("SIGKILL");
  }

  private async shutdownHosts(): Promise<void> {
    const all = [...this.hosts];
    for (const h of all) h.kill("SIGTERM");
    await Promise.all(all.map((h) => h.exited));
  }
}

function summariseParameters(flow: LoadedFlow, values: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of flow.parameters) {
    const v = values[p.name];
    if (p.kind === "include-file") {
      out[p.name] = v == null ? null : `<included file, ${(v as string | Buffer).length} ${typeof v === "string" ? "chars" : "bytes"}>`;
    } else {
      out[p.name] = v;
    }
  }
  return out;
}

function staticTransition(node: StepNode): RecordedTransition | undefined {
  const n = node.next;
  switch (n.kind) {
    case "linear":
      return { kind: "linear", to: n.to };
    case "branch":
      return { kind: "branch", to: [...n.to] };
    case "foreach":
      return { kind: "foreach", to: n.to, foreach: n.foreach };
    case "switch":
      return { kind: "switch", cases: { ...n.cases }, condition: n.condition };
    case "end":
      return undefined;
  }
}

/** Turns a host's death into an error that says what happened, never a bare exit code. */
function describeExit(exit: HostExit, running: RunningTask, plan: TaskPlan, step: string): PlainError {
  if (running.timedOut) {
    const secs = (plan.timeoutMs ?? 0) / 1000;
    return {
      name: "TimeoutError",
      code: "timeout",
      message: `Step '${step}' timed out after ${secs} s (its @timeout limit) and was stopped`,
    };
  }
  const tail = exit.stderrTail;
  if (/heap out of memory|Reached heap limit|Allocation failed/i.test(tail)) {
    const limit = plan.memoryMb ? ` (the V8 heap limit was ${plan.memoryMb} MiB from @resources memory)` : "";
    return {
      name: "OutOfMemoryError",
      code: "out-of-memory",
      message: `Step '${step}' ran out of memory${limit}; give it more with @resources({ memory: ... }) or use less`,
    };
  }
  if (exit.signal) {
    const hint =
      exit.signal === "SIGKILL"
        ? " (by the kernel's out-of-memory killer or by kill -9)"
        : exit.signal === "SIGSEGV" || exit.signal === "SIGBUS" || exit.signal === "SIGABRT"
          ? " (a native crash, e.g. in a native module)"
          : "";
    return {
      name: "HostExit",
      code: "killed",
      message: `Step '${step}': the task's process was killed by ${exit.signal}${hint}`,
    };
  }
  return {
    name: "HostExit",
    code: "crashed",
    message: `Step '${step}': the task's process exited unexpectedly with code ${exit.code}${tail ? `; its last output: ${tail.trim().split("\n").slice(-3).join(" | ")}` : ""}`,
  };
}

/** The lines a failed task adds to its stderr log and the console. */
export function formatTaskError(error: PlainError): string[] {
  const lines = [`${error.name}: ${error.message}`];
  if (error.location) lines.push(`    at ${error.location}`);
  if (error.stack) {
    const frames = error.stack.split("\n").filter((l) => /^\s+at /.test(l));
    for (const f of frames.slice(0, 8)) if (!error.location || !f.includes(error.location)) lines.push(f);
  }
  return lines;
}
