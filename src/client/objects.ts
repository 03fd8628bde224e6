/**
 * The client's read-only view of past and running work: `Metaflow` → `Flow` → `Run` → `Step` →
 * `Task` → `DataArtifact`, each addressed by a pathspec (`Flow/run/step/task`). A `Flow` is a
 * handle made without I/O; every other object is loaded with `await`, after which its metadata
 * are plain properties.
 */
import type { ArtifactRef } from "../datastore/types.js";
import { MetadataCorruptError, type PlainError } from "../errors.js";
import type { ArtifactNames, FlowSpec } from "../flow/flowspec.js";
import type { AttemptEnd, AttemptStart, RunEnd, RunRecord, SplitFrame, TaskRecord } from "../metadata/types.js";
import type { TagChange } from "../metadata/tags.js";
import type { CodeManifest } from "../datastore/code-package.js";
import { compareIds } from "../metadata/local.js";
import { DataArtifact, isPrivateName, type ArtifactOrigin } from "./artifact.js";
import { CodePackage } from "./code.js";
import { clientContext, type ClientContext, type ClientOptions } from "./context.js";
import { taskCards, type Card } from "./cards.js";
import { ArtifactNotFoundError, NamespaceMismatchError, NotFinishedError, ObjectNotFoundError } from "./errors.js";
import { followLogs, readLogs, streamLogs, type LogLine, type LogOptions } from "./logs.js";
import { getNamespace } from "./namespace.js";
import { parsePathspec } from "./pathspec.js";
import { warnUnreadable } from "./warnings.js";

/** Names `data()` accepts: the flow's artifact names when the flow class is known, else any string. */
export type DataName<F> = unknown extends F ? string : ArtifactNames<F>;
/** What `data(name)` resolves to: the declared type of the artifact when the flow class is known. */
export type DataValue<F, K extends string> = unknown extends F ? unknown : K extends keyof F ? F[K] : never;

/** Where a run stands. */
export type RunStatus = "running" | "completed" | "failed";

/** Runs are loaded this many at a time when listing, which hides per-file latency. */
const LIST_BATCH = 64;

/** Proves a constructor call comes from this module: objects other than `Flow` are loaded, not built. */
const LOADER: unique symbol = Symbol("client-loader");
type Loader = typeof LOADER;

interface Loaded {
  readonly record: RunRecord;
  readonly end: RunEnd | undefined;
}

/** Reads a run's record and end; throws a not-found error that says what does exist. */
async function loadRunData(ctx: ClientContext, flow: string, runId: string): Promise<Loaded> {
  const [record, end] = await Promise.all([ctx.metadata.getRun(flow, runId), ctx.metadata.getRunEnd(flow, runId)]);
  if (!record) {
    const flows = await ctx.metadata.listFlows();
    if (!flows.includes(flow)) throw flowNotFound(ctx, flow, flows);
    const recent = (await ctx.metadata.listRuns(flow)).slice(0, 5);
    throw new ObjectNotFoundError("run", `${flow}/${runId}`, `flow ${flow} has no run '${runId}'${recent.length ? `; its newest runs are ${recent.join(", ")}` : ""}`);
  }
  return { record, end };
}

function flowNotFound(ctx: ClientContext, flow: string, flows: readonly string[]): ObjectNotFoundError {
  const known = flows.length ? `; flows there: ${flows.join(", ")}` : "";
  const local = ctx.localMetadataOverRemote;
  if (local !== undefined) {
    // Artifacts are shared through the bucket, but run records are files on the machine that made them.
    return new ObjectNotFoundError(
      "flow",
      flow,
      `no run of it is recorded in the local metadata at ${local}${known}. The datastore is ${ctx.root}, but metadata is local (METAFLOW_DEFAULT_METADATA=local), so runs made on other machines or in other directories are not visible here. To share runs, use the metadata service: set METAFLOW_DEFAULT_METADATA=service and METAFLOW_SERVICE_URL (see docs/admin.md)`,
    );
  }
  return new ObjectNotFoundError("flow", flow, `no run of it is stored in ${ctx.root}${known || " (the datastore is empty)"}`);
}

function inNamespace(tags: readonly string[], ns: string | null): boolean {
  return ns === null || tags.includes(ns);
}

function allTags(record: RunRecord): string[] {
  return [...new Set([...record.tags, ...record.systemTags])].sort();
}

async function loadRun<F>(ctx: ClientContext, flow: string, runId: string, checkNamespace: boolean): Promise<Run<F>> {
  const data = await loadRunData(ctx, flow, runId);
  const ns = getNamespace();
  if (checkNamespace && !inNamespace(allTags(data.record), ns)) throw new NamespaceMismatchError(`${flow}/${runId}`, ns!);
  return new Run<F>(LOADER, ctx, data.record, data.end);
}

/**
 * All flows in the datastore.
 * @example for (const flow of await new Metaflow().flows()) console.log(flow.name);
 */
export class Metaflow {
  private readonly ctx: ClientContext;

  /** A handle on the datastore (no I/O). */
  constructor(private readonly options: ClientOptions = {}) {
    this.ctx = clientContext(options);
  }

  /** Every flow that has at least one run stored, by name. */
  async flows(): Promise<Flow[]> {
    return (await this.ctx.metadata.listFlows()).map((name) => new Flow(name, this.options));
  }

  /** Iterates over the flows. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Flow> {
    yield* await this.flows();
  }
}

/**
 * A flow by name: a handle made without I/O, from which its runs are read. With the flow class as
 * type argument (or `Flow.of(TrainFlow)`) artifact reads are typed.
 * @example
 * const run = await new Flow<TrainFlow>("TrainFlow").latestSuccessfulRun();
 * const score = await run.data("score"); // number
 */
export class Flow<F = unknown> {
  /** The flow's class name. */
  readonly name: string;
  /** Same as the name: a flow's pathspec is its name. */
  readonly pathspec: string;
  private readonly ctx: ClientContext;

  /** A handle on the flow named `name`; nothing is read until a method is awaited. */
  constructor(name: string, options: ClientOptions = {}) {
    parsePathspec(name, "flow");
    this.name = name;
    this.pathspec = name;
    this.ctx = clientContext(options);
  }

  /** A handle typed by the flow class, so `data("score")` has the class's type for `score`. */
  static of<C extends abstract new (...args: any[]) => FlowSpec>(flowClass: C, options: ClientOptions = {}): Flow<InstanceType<C>> {
    return new Flow<InstanceType<C>>(flowClass.name, options);
  }

  /**
   * The runs of this flow in the current namespace, newest first; with `tags`, only runs that
   * have every one of them.
   */
  async *runs(...tags: string[]): AsyncGenerator<Run<F>> {
    const ids = await this.ctx.metadata.listRuns(this.name);
    if (ids.length === 0) {
      const flows = await this.ctx.metadata.listFlows();
      if (!flows.includes(this.name)) throw flowNotFound(this.ctx, this.name, flows);
    }
    const ns = getNamespace();
    for (let i = 0; i < ids.length; i += LIST_BATCH) {
      const batch = await Promise.all(
        ids.slice(i, i + LIST_BATCH).map(async (id) => {
          const loaded = await Promise.all([this.ctx.metadata.getRun(this.name, id), this.ctx.metadata.getRunEnd(this.name, id)]).catch(skipUnreadable);
          return loaded?.[0] ? { record: loaded[0], end: loaded[1] } : undefined;
        }),
      );
      for (const data of batch) {
        // A run whose directory exists but whose record is not written yet is just starting.
        if (!data) continue;
        const all = allTags(data.record);
        if (!inNamespace(all, ns) || !tags.every((t) => all.includes(t))) continue;
        yield new Run<F>(LOADER, this.ctx, data.record, data.end);
      }
    }
  }

  /**
   * Ids of every run of this flow, newest first, without reading the runs (so in any namespace):
   * cheap, for paging through many runs with `run(id)`.
   */
  async runIds(): Promise<string[]> {
    return this.ctx.metadata.listRuns(this.name);
  }

  /** The newest run in the current namespace, finished or not; throws when there is none. */
  async latestRun(): Promise<Run<F>> {
    for await (const run of this.runs()) return run;
    throw this.noRun("run");
  }

  /** The newest successful run in the current namespace; throws when there is none. */
  async latestSuccessfulRun(): Promise<Run<F>> {
    for await (const run of this.runs()) if (run.successful) return run;
    throw this.noRun("successful run");
  }

  /** One run of this flow by id. */
  async run(runId: string): Promise<Run<F>> {
    parsePathspec(`${this.name}/${runId}`, "run");
    return loadRun<F>(this.ctx, this.name, runId, true);
  }

  private noRun(what: string): ObjectNotFoundError {
    const ns = getNamespace();
    const where = ns === null ? "in any namespace" : `in namespace '${ns}'`;
    return new ObjectNotFoundError(
      "run",
      this.name,
      ns === null ? undefined : "call namespace(null) (CLI: --all-namespaces) to look at every user's runs",
      `Flow '${this.name}' has no ${what} ${where}`,
    );
  }
}

/**
 * One run of a flow, loaded: its status, times, tags and parameters are plain properties; its
 * steps, tasks and artifacts are read with `await`.
 * @example
 * const run = await Run.get("TrainFlow/1712345678901");
 * if (run.successful) console.log(await run.data("score"));
 */
export class Run<F = unknown> {
  /** The run id. */
  readonly id: string;
  /** The flow's name. */
  readonly flowName: string;
  /** `Flow/runId`. */
  readonly pathspec: string;
  /** Who started it. */
  readonly user: string;
  /** When it started. */
  readonly createdAt: Date;
  /** When it ended, or undefined while it runs. */
  readonly finishedAt: Date | undefined;
  /** `running` until it ends, then `completed` or `failed`. */
  readonly status: RunStatus;
  /** The step that failed, for a failed run. */
  readonly failedStep: string | undefined;
  /** Why it failed, for a failed run. */
  readonly exception: PlainError | undefined;
  /** Parameter values as given (an IncludeFile shows a summary; its content is an artifact). */
  readonly parameters: Readonly<Record<string, unknown>>;
  /** Tags recorded by the system: `user:…`, versions, date. */
  readonly systemTags: readonly string[];
  /** The run this one resumed, if any. */
  readonly originRunId: string | undefined;
  /** The flow file, as given to `metaflow run`. */
  readonly flowFile: string;
  private userTagList: readonly string[];

  /** Runs are loaded with `Run.get`, `Flow.runs()` or `Flow.latestRun()`. */
  constructor(
    _loader: Loader,
    private readonly ctx: ClientContext,
    private readonly record: RunRecord,
    end: RunEnd | undefined,
  ) {
    this.id = record.runId;
    this.flowName = record.flow;
    this.pathspec = `${record.flow}/${record.runId}`;
    this.user = record.user;
    this.createdAt = new Date(record.createdAt);
    this.finishedAt = end ? new Date(end.finishedAt) : undefined;
    this.status = end?.status ?? "running";
    this.failedStep = end?.failedStep;
    this.exception = end?.error;
    this.parameters = record.parameters;
    this.systemTags = [...record.systemTags];
    this.originRunId = record.originRunId;
    this.flowFile = record.flowFile;
    this.userTagList = [...record.tags];
  }

  /** Loads the run at `Flow/runId`; it must be in the current namespace. */
  static async get<F = unknown>(pathspec: string, options: ClientOptions = {}): Promise<Run<F>> {
    const [flow, runId] = parsePathspec(pathspec, "run") as [string, string];
    return loadRun<F>(clientContext(options), flow, runId, true);
  }

  /** Loads a run without the namespace check; for the Runner, which just started the run itself. */
  static async loadOwn<F = unknown>(pathspec: string, options: ClientOptions = {}): Promise<Run<F>> {
    const [flow, runId] = parsePathspec(pathspec, "run") as [string, string];
    return loadRun<F>(clientContext(options), flow, runId, false);
  }

  /** Whether the run has ended (successfully or not). */
  get finished(): boolean {
    return this.status !== "running";
  }

  /** Whether the run has ended and every task succeeded. */
  get successful(): boolean {
    return this.status === "completed";
  }

  /** User tags: given with `--tag`, or added later. */
  get userTags(): readonly string[] {
    return this.userTagList;
  }

  /** Every tag, user and system, sorted. */
  get tags(): readonly string[] {
    return [...new Set([...this.userTagList, ...this.systemTags])].sort();
  }

  /** The flow this run belongs to (a handle). */
  get flow(): Flow<F> {
    return new Flow<F>(this.flowName, this.ctx.options);
  }

  /** The steps that have started, in the order they first ran. */
  async *steps(): AsyncGenerator<Step<F>> {
    const names = await this.ctx.metadata.listSteps(this.flowName, this.id);
    const withTasks = await Promise.all(names.map(async (name) => ({ name, tasks: await this.ctx.metadata.listTasks(this.flowName, this.id, name) })));
    const started = withTasks.filter((s) => s.tasks.length > 0);
    started.sort((a, b) => compareIds(a.tasks[0]!, b.tasks[0]!));
    for (const s of started) yield new Step<F>(LOADER, this.ctx, this, s.name, s.tasks);
  }

  /** One step by name. */
  async step(name: string): Promise<Step<F>> {
    parsePathspec(`${this.pathspec}/${name}`, "step");
    const tasks = await this.ctx.metadata.listTasks(this.flowName, this.id, name);
    if (tasks.length === 0) {
      const names: string[] = [];
      for await (const s of this.steps()) names.push(s.name);
      throw new ObjectNotFoundError(
        "step",
        `${this.pathspec}/${name}`,
        `${this.finished ? "the run has" : "the run (still running) has so far"} ${names.length ? `the steps ${names.join(", ")}` : "no steps"}`,
      );
    }
    return new Step<F>(LOADER, this.ctx, this, name, tasks);
  }

  /** The task of the `end` step, whose artifacts are the run's results. */
  async endTask(): Promise<Task<F>> {
    const tasks = await this.ctx.metadata.listTasks(this.flowName, this.id, "end");
    if (tasks.length === 0) {
      throw new NotFinishedError(
        this.pathspec,
        this.finished
          ? `Run ${this.pathspec} failed${this.failedStep ? ` in step '${this.failedStep}'` : ""} before its end step; read an earlier step's artifacts, e.g. (await run.step("start")).task()`
          : `Run ${this.pathspec} is still running and has not reached its end step; read a finished step's task, e.g. (await run.step("start")).task()`,
      );
    }
    return (await this.step("end")).task();
  }

  /** The value of artifact `name` of the end task. */
  async data<K extends DataName<F>>(name: K): Promise<DataValue<F, K>> {
    return (await this.endTask()).data(name);
  }

  /** The code the run ran: its source files and bundle. */
  async code(): Promise<CodePackage> {
    const manifest = JSON.parse((await this.ctx.store.get(this.record.codePackage)).toString("utf8")) as CodeManifest;
    return new CodePackage(this.ctx, this.record.codePackage, manifest);
  }

  /** Reads the run again (its status, end time and tags may have changed). */
  async refresh(): Promise<Run<F>> {
    return loadRun<F>(this.ctx, this.flowName, this.id, false);
  }

  /** Adds a user tag. */
  addTag(tag: string): Promise<readonly string[]> {
    return this.mutate({ add: [tag] });
  }

  /** Adds user tags. */
  addTags(tags: readonly string[]): Promise<readonly string[]> {
    return this.mutate({ add: tags });
  }

  /** Removes a user tag; removing a system tag is an error. */
  removeTag(tag: string): Promise<readonly string[]> {
    return this.mutate({ remove: [tag] });
  }

  /** Removes user tags; removing a system tag is an error. */
  removeTags(tags: readonly string[]): Promise<readonly string[]> {
    return this.mutate({ remove: tags });
  }

  /** Replaces the user tag `oldTag` by `newTag` in one atomic edit. */
  replaceTag(oldTag: string, newTag: string): Promise<readonly string[]> {
    return this.mutate({ remove: [oldTag], add: [newTag] });
  }

  /** Removes `remove` then adds `add`, in one atomic edit; resolves to the new user tags. */
  replaceTags(remove: readonly string[], add: readonly string[]): Promise<readonly string[]> {
    return this.mutate({ remove, add });
  }

  private async mutate(change: TagChange): Promise<readonly string[]> {
    this.userTagList = await this.ctx.metadata.updateTags(this.flowName, this.id, change);
    return this.userTagList;
  }

  /** The run's metadata as plain data. */
  toJSON(): Record<string, unknown> {
    return {
      pathspec: this.pathspec,
      status: this.status,
      user: this.user,
      createdAt: this.createdAt.toISOString(),
      finishedAt: this.finishedAt?.toISOString(),
      tags: this.tags,
      parameters: this.parameters,
    };
  }
}

/** One step of a run: its tasks (one, or one per foreach element). */
export class Step<F = unknown> {
  /** The step's name. */
  readonly name: string;
  /** `Flow/runId/step`. */
  readonly pathspec: string;
  /** The run it belongs to. */
  readonly run: Run<F>;
  private readonly taskIds: readonly string[];

  /** Steps are loaded with `Step.get` or `Run.step()`. */
  constructor(
    _loader: Loader,
    private readonly ctx: ClientContext,
    run: Run<F>,
    name: string,
    taskIds: readonly string[],
  ) {
    this.run = run;
    this.name = name;
    this.pathspec = `${run.pathspec}/${name}`;
    this.taskIds = taskIds;
  }

  /** Loads the step at `Flow/runId/step`; its run must be in the current namespace. */
  static async get<F = unknown>(pathspec: string, options: ClientOptions = {}): Promise<Step<F>> {
    const [flow, runId, step] = parsePathspec(pathspec, "step") as [string, string, string];
    return (await loadRun<F>(clientContext(options), flow, runId, true)).step(step);
  }

  /** Ids of the step's tasks, in the order they were created. */
  get taskIdList(): readonly string[] {
    return this.taskIds;
  }

  /** The step's tasks that have started, in the order they were created. */
  async *tasks(): AsyncGenerator<Task<F>> {
    for (const id of this.taskIds) {
      const task = await readTask<F>(this.ctx, this, id).catch(skipUnreadable);
      if (task) yield task;
    }
  }

  /** The step's first task: the only one unless the step runs once per foreach element. */
  async task(): Promise<Task<F>> {
    for await (const task of this.tasks()) return task;
    return loadTask<F>(this.ctx, this, this.taskIds[0]!);
  }
}

/** In a listing, an object whose metadata cannot be read is reported and left out; other errors propagate. */
function skipUnreadable(err: unknown): undefined {
  if (!(err instanceof MetadataCorruptError)) throw err;
  warnUnreadable(err);
  return undefined;
}

/** Reads a task; undefined while its directory exists but its first attempt is not recorded yet. */
async function readTask<F>(ctx: ClientContext, step: Step<F>, taskId: string): Promise<Task<F> | undefined> {
  const run = step.run;
  const record = await ctx.metadata.getTask(run.flowName, run.id, step.name, taskId);
  return record && record.attempts.length > 0 ? new Task<F>(LOADER, ctx, step, record) : undefined;
}

async function loadTask<F>(ctx: ClientContext, step: Step<F>, taskId: string): Promise<Task<F>> {
  const task = await readTask<F>(ctx, step, taskId);
  if (!task) {
    const others = step.taskIdList.filter((id) => id !== taskId);
    throw new ObjectNotFoundError(
      "task",
      `${step.pathspec}/${taskId}`,
      step.taskIdList.includes(taskId) ? "it has not started yet" : `step ${step.pathspec} has the tasks ${others.join(", ")}`,
    );
  }
  return task;
}

/** One attempt at running a task. */
export interface AttemptInfo {
  /** 0 for the first try, 1 for the first retry, ... */
  readonly attempt: number;
  readonly startedAt: Date;
  /** When it ended, or undefined while it runs. */
  readonly finishedAt: Date | undefined;
  readonly status: "running" | "completed" | "failed";
  /** The process that ran it. */
  readonly pid: number;
  readonly error: PlainError | undefined;
  /** For a task copied by `resume`: the origin task's pathspec. */
  readonly clonedFrom: string | undefined;
}

function attemptInfo(a: { start: AttemptStart; end?: AttemptEnd }): AttemptInfo {
  return {
    attempt: a.start.attempt,
    startedAt: new Date(a.start.startedAt),
    finishedAt: a.end ? new Date(a.end.finishedAt) : undefined,
    status: a.end?.status ?? "running",
    pid: a.start.pid,
    error: a.end?.error,
    clonedFrom: a.end?.clonedFrom,
  };
}

/**
 * One task, loaded: status, attempts and foreach position are properties; artifacts and logs
 * are read with `await`.
 * @example
 * const task = await Task.get("TrainFlow/1712345678901/train/3");
 * console.log(task.index, await task.data("score"), await task.stdout());
 */
export class Task<F = unknown> {
  /** The task id. */
  readonly id: string;
  /** `Flow/runId/step/taskId`. */
  readonly pathspec: string;
  /** The step it belongs to. */
  readonly step: Step<F>;
  /** Every attempt, oldest first. */
  readonly attempts: readonly AttemptInfo[];
  /** Pathspecs of the tasks whose artifacts this one started from. */
  readonly parents: readonly string[];
  /** The foreach and branch splits that enclose the task, outermost first. */
  readonly frames: readonly SplitFrame[];
  private readonly refs: readonly ArtifactRef[] | undefined;
  /** The attempt whose artifacts `refs` are, and whether it failed. */
  private readonly refsOrigin: ArtifactOrigin | undefined;

  /** Tasks are loaded with `Task.get`, `Step.task()` or `Step.tasks()`. */
  constructor(
    _loader: Loader,
    private readonly ctx: ClientContext,
    step: Step<F>,
    record: TaskRecord,
  ) {
    this.id = record.taskId;
    this.step = step;
    this.pathspec = `${step.pathspec}/${record.taskId}`;
    this.attempts = record.attempts.map(attemptInfo);
    const latest = record.attempts[record.attempts.length - 1]!;
    this.parents = latest.start.parents;
    this.frames = latest.start.frames;
    // The artifacts are those of the latest attempt that succeeded; a task that ended failed shows
    // what its latest failed attempt had assigned, marked as such.
    const newestFirst = [...record.attempts].reverse();
    const kept =
      newestFirst.find((a) => a.end?.status === "completed") ??
      (latest.end ? newestFirst.find((a) => a.end?.status === "failed" && a.end.artifacts.length > 0) : undefined);
    this.refs = kept?.end?.artifacts;
    this.refsOrigin = kept?.end
      ? { attempt: kept.end.attempt, failed: kept.end.status === "failed", resume: `metaflow resume ${shellWord(step.run.flowFile)} --origin-run-id ${shellWord(step.run.id)}` }
      : undefined;
  }

  /** Loads the task at `Flow/runId/step/taskId`; its run must be in the current namespace. */
  static async get<F = unknown>(pathspec: string, options: ClientOptions = {}): Promise<Task<F>> {
    const [flow, runId, step, taskId] = parsePathspec(pathspec, "task") as [string, string, string, string];
    const ctx = clientContext(options);
    const s = await (await loadRun<F>(ctx, flow, runId, true)).step(step);
    return loadTask<F>(ctx, s, taskId);
  }

  private get latest(): AttemptInfo {
    return this.attempts[this.attempts.length - 1]!;
  }

  /** The run it belongs to. */
  get run(): Run<F> {
    return this.step.run;
  }

  /** The latest attempt's number (0 unless the task was retried). */
  get attempt(): number {
    return this.latest.attempt;
  }

  /** How many times the task was retried so far; the same as `attempt`. */
  get retryCount(): number {
    return this.latest.attempt;
  }

  /** `running` while the latest attempt runs, then `completed` or `failed`. */
  get status(): AttemptInfo["status"] {
    return this.latest.status;
  }

  /** Whether the latest attempt has ended. */
  get finished(): boolean {
    return this.latest.status !== "running";
  }

  /** Whether the latest attempt succeeded. */
  get successful(): boolean {
    return this.latest.status === "completed";
  }

  /** The error of the latest attempt, when it failed. */
  get exception(): PlainError | undefined {
    return this.latest.error;
  }

  /** When the first attempt started. */
  get startedAt(): Date {
    return this.attempts[0]!.startedAt;
  }

  /** When the latest attempt ended, or undefined while it runs. */
  get finishedAt(): Date | undefined {
    return this.latest.finishedAt;
  }

  /** In a foreach: this task's position in the list (the innermost foreach when nested). */
  get index(): number | undefined {
    return innermostForeach(this.frames)?.index;
  }

  /** In a foreach: the list element this task handled. */
  async input(): Promise<unknown> {
    const frame = innermostForeach(this.frames);
    if (!frame?.items) return undefined;
    const items = await this.ctx.store.getValue(frame.items);
    return (Array.isArray(items) ? items : Array.from(items as Iterable<unknown>))[frame.index];
  }

  /** The step this task belongs to (Metaflow's object hierarchy: task → step → run → flow). */
  async parent(): Promise<Step<F>> {
    return this.step;
  }

  /** The tasks this one started from (the previous step's task, or every branch of a join). */
  async parentTasks(): Promise<Task<F>[]> {
    return Promise.all(
      this.parents.map(async (p) => {
        const [, , step, taskId] = parsePathspec(p, "task") as [string, string, string, string];
        return loadTask<F>(this.ctx, await this.run.step(step), taskId);
      }),
    );
  }

  /**
   * For a failed task: the number of the failed attempt whose artifacts (what it had assigned
   * before it failed) `artifacts()` and `data()` read; undefined when they come from a success.
   */
  get artifactsFromFailedAttempt(): number | undefined {
    return this.refsOrigin?.failed ? this.refsOrigin.attempt : undefined;
  }

  /**
   * The artifacts (name, size, type, hash) without loading their values; private ones (named
   * `_x`) only with `{ private: true }`. A failed task lists what its failed attempt had assigned,
   * each marked `fromFailedAttempt`.
   */
  async artifacts(options: { readonly private?: boolean } = {}): Promise<DataArtifact[]> {
    return this.storedRefs()
      .filter((r) => options.private === true || !isPrivateName(r.name))
      .map((r) => new DataArtifact(this.ctx, r, this.pathspec, this.refsOrigin));
  }

  /** One artifact's metadata (private ones too); throws listing the artifacts that exist when there is none by that name. */
  artifact<K extends DataName<F>>(name: K): DataArtifact<DataValue<F, K>> {
    const refs = this.storedRefs();
    const ref = refs.find((r) => r.name === name);
    if (!ref) throw new ArtifactNotFoundError(this.pathspec, name, refs.map((r) => r.name).sort());
    return new DataArtifact<DataValue<F, K>>(this.ctx, ref, this.pathspec, this.refsOrigin);
  }

  /** Whether the task stored an artifact called `name`. */
  has(name: string): boolean {
    return this.refs?.some((r) => r.name === name) ?? false;
  }

  /** The value of artifact `name`. */
  async data<K extends DataName<F>>(name: K): Promise<DataValue<F, K>> {
    return this.artifact(name).data();
  }

  /** The latest attempt's standard output, as text (the whole log in memory: `loglines()` streams it). */
  async stdout(): Promise<string> {
    return joinLines(this.loglines({ streams: ["stdout"] }));
  }

  /** The latest attempt's standard error, as text (the whole log in memory: `loglines()` streams it). */
  async stderr(): Promise<string> {
    return joinLines(this.loglines({ streams: ["stderr"] }));
  }

  /**
   * The lines written so far (latest attempt unless `attempt` is given), stdout and stderr merged
   * in time order, read a chunk at a time: memory stays bounded however big the log is.
   * @example for await (const l of task.loglines({ streams: ["stderr"] })) console.log(l.time, l.line);
   */
  loglines(options: Pick<LogOptions, "streams" | "attempt"> = {}): AsyncGenerator<LogLine> {
    return streamLogs(this.ctx, this.target(), options.attempt ?? this.attempt, options.streams);
  }

  /** The lines written so far (latest attempt unless `attempt` is given), with timestamps. */
  async logs(options: Pick<LogOptions, "streams" | "attempt"> = {}): Promise<LogLine[]> {
    return readLogs(this.ctx, this.target(), options.attempt ?? this.attempt, options.streams);
  }

  /** The log lines so far, then new ones as they are written, until the task ends. */
  followLogs(options: LogOptions = {}): AsyncGenerator<LogLine> {
    return followLogs(this.ctx, this.target(), options);
  }

  /** The task's cards (of its newest attempt that made any): `{ id, type, html() }`. */
  async cards(): Promise<Card[]> {
    return taskCards(this.ctx, this.target(), this.pathspec);
  }

  private target() {
    return { flow: this.run.flowName, runId: this.run.id, step: this.step.name, taskId: this.id };
  }

  private storedRefs(): readonly ArtifactRef[] {
    if (this.refs) return this.refs;
    throw new NotFinishedError(
      this.pathspec,
      this.status === "running"
        ? `Task ${this.pathspec} is still running; its artifacts are stored when it succeeds`
        : `Task ${this.pathspec} failed (${this.exception ? `${this.exception.name}: ${this.exception.message}` : "no error recorded"}) and kept no artifacts`,
    );
  }
}

function innermostForeach(frames: readonly SplitFrame[]): SplitFrame | undefined {
  for (let i = frames.length - 1; i >= 0; i--) if (frames[i]!.kind === "foreach") return frames[i];
  return undefined;
}

async function joinLines(lines: AsyncIterable<LogLine>): Promise<string> {
  const parts: string[] = [];
  for await (const l of lines) parts.push(l.line);
  return parts.length === 0 ? "" : `${parts.join("\n")}\n`;
}

/** `word` as one POSIX shell word, to be pasted: as is when plain, else single-quoted. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
