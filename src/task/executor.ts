/**
 * The task executor, wherever a task runs: builds a fresh sandbox, loads the flow into it, wires
 * the task's artifacts (lazily loaded from the content store), runs the step inside its
 * decorators' in-task hooks, checks its transition and persists what it assigned to `this`.
 */
import * as fs from "node:fs";
import type * as vm from "node:vm";
import { openStorageFromSpec, type StorageSpec } from "../backends.js";
import { definitionsFor } from "../decorators/registry.js";
import { collectDefinitions } from "../decorators/make.js";
import { artifactRef, ContentStore } from "../datastore/cas.js";
import { openSerializerScope } from "../datastore/serializers.js";
import type { ArtifactRef } from "../datastore/types.js";
import type { StepEnd } from "../decorators/contract.js";
import { StepRuntimeError } from "../errors.js";
import { setCurrentTask } from "../flow/current.js";
import { attachTaskHooks, type ForeachFrame, type RecordedTransition } from "../flow/flowspec.js";
import type { SplitFrame, TakenTransition } from "../metadata/types.js";
import { ArtifactLoader, ArtifactSlots } from "./artifacts.js";
import { EndHooks, hookLayers, makeStepTask, runWithHooks } from "./hooks.js";
import { stepGraph } from "./run-plan.js";
import { makeInputs, mergeArtifacts } from "./inputs.js";
import type { TaskSpec, TaskTimings } from "./protocol.js";
import { compileBundle, createSandbox, TaskExitSignal, type Sandbox } from "./sandbox.js";
import { registerScriptName } from "./stack.js";
import { resolveTransition } from "./transition.js";

/** What executing one task produced. */
export interface ExecutionResult {
  readonly artifacts: ArtifactRef[];
  readonly transition: TakenTransition;
  readonly timings: TaskTimings;
}

/**
 * Thrown by the executor with timings attached, so failures still report where time went, and with
 * the artifacts the failed attempt had assigned (stored best effort) when the step got to run.
 */
export class ExecutionFailure extends Error {
  constructor(
    override readonly cause: unknown,
    readonly timings: TaskTimings | undefined,
    readonly artifacts?: ArtifactRef[],
  ) {
    super("task failed");
  }
}

let hostEnv: Record<string, string | undefined> | undefined;

/** The host's environment, read once: copying `process.env` costs ~30 µs, every task starts from it. */
function hostEnvironment(): Record<string, string | undefined> {
  return (hostEnv ??= { ...process.env });
}

const scripts = new Map<string, vm.Script>();
const stores = new Map<string, ContentStore>();

/** The compiled bundle; named as a file beside the flow file, so `import("./x.js")` resolves from there. */
function scriptFor(bundlePath: string, flowFile: string): vm.Script {
  let s = scripts.get(bundlePath);
  if (!s) {
    const name = `${flowFile}.bundle.cjs`;
    s = compileBundle(fs.readFileSync(bundlePath, "utf8"), name);
    registerScriptName(bundlePath, name);
    scripts.set(bundlePath, s);
  }
  return s;
}

function storeFor(spec: StorageSpec): ContentStore {
  const key = JSON.stringify(spec);
  let s = stores.get(key);
  if (!s) {
    s = new ContentStore(openStorageFromSpec(spec));
    stores.set(key, s);
  }
  return s;
}

/** Every stored object the task may read synchronously: its inputs' artifacts and foreach lists. */
/** The stored objects a task reads (with their sizes, so a cached copy cut short is caught before use). */
function inputObjects(spec: TaskSpec): ArtifactRef[] {
  const refs: ArtifactRef[] = [];
  for (const p of spec.parents) {
    refs.push(...p.artifacts);
    for (const f of p.frames) if (f.items) refs.push(f.items);
  }
  for (const f of spec.frames) if (f.items) refs.push(f.items);
  return refs;
}

function innermostForeach(frames: readonly SplitFrame[]): SplitFrame | undefined {
  for (let i = frames.length - 1; i >= 0; i--) if (frames[i]!.kind === "foreach") return frames[i];
  return undefined;
}

/** Executes one attempt of one task; resolves with artifacts and transition or throws ExecutionFailure. */
export async function executeTask(
  spec: TaskSpec,
  library: Record<string, unknown>,
  write: (stream: "stdout" | "stderr", text: string) => void,
  /** Named as the owner of everything the task's code makes (see `ownerOf`). */
  owner?: object,
): Promise<ExecutionResult> {
  const t0 = performance.now();
  const store = storeFor(spec.storage);
  // A remote datastore fills the local cache first, so the step can read artifacts synchronously.
  await store.prefetch(inputObjects(spec));
  // Serializers the flow module registers while it loads belong to this task alone.
  const closeSerializers = openSerializerScope();
  let asyncError: { error: unknown } | undefined;
  let failAsync: ((err: unknown) => void) | undefined;
  const sandbox = createSandbox({
    env: { ...hostEnvironment(), ...spec.env },
    argv: [process.argv[0] ?? "node", spec.flowFile],
    write,
    onAsyncError: (err) => {
      asyncError ??= { error: err };
      failAsync?.(err);
    },
    ...(owner ? { owner } : {}),
  });
  const loader = new ArtifactLoader(store, (v) => sandbox.adopt(v));
  let setupEnd = t0;
  const ends = new EndHooks();
  const timings = (stepMs: number, persistMs: number, bytesWritten: number): TaskTimings => ({
    setupMs: setupEnd - t0,
    stepMs,
    persistMs,
    loadMs: loader.stats.loadMs,
    bytesWritten,
    bytesLoaded: loader.stats.bytesLoaded,
  });
  // What a failed attempt had assigned is kept for inspection, unless storing it is what failed:
  // then nothing of the attempt is stored (a value that cannot be stored leaves nothing half-stored).
  let slots: ArtifactSlots | undefined;
  try {
    const { value: exports, definitions: own } = collectDefinitions(() => sandbox.load(scriptFor(spec.bundlePath, spec.flowFile), spec.flowFile, library));
    const flow = new (findClass(exports, spec.className))() as Record<string, unknown>;
    const taskSlots = new ArtifactSlots(flow, loader, spec.parameterNames);
    slots = taskSlots;
    // Field initializers of Parameter()/IncludeFile() left markers; the stored values replace them.
    for (const ref of spec.parents[0]?.artifacts ?? []) {
      if (!spec.isJoin || taskSlots.isParameter(ref.name)) taskSlots.wire(ref);
    }
    wireForeachInput(flow, spec.frames, loader);
    let recorded: RecordedTransition | undefined;
    attachTaskHooks(flow, {
      next(t) {
        if (recorded) {
          throw new StepRuntimeError("next-twice", `Step '${spec.step}' called this.next() twice`, `Step '${spec.step}' called this.next() more than once; call it exactly once, as the last statement`);
        }
        if (spec.isEnd) throw new StepRuntimeError("end-next", "The end step cannot call this.next()", "Remove this.next() from end");
        recorded = t;
      },
      merge: (inputs, options) => mergeArtifacts(spec.step, spec.isJoin, flow, taskSlots, inputs, options),
      foreachStack: () => foreachStack(spec.frames, loader, sandbox),
    });
    const inputs = spec.isJoin ? makeInputs(spec.parents, loader, (items) => sandbox.array(items)) : undefined;
    const layers = hookLayers(spec.flowDecorators, spec.decorators, definitionsFor(library, own));
    setCurrentTask({
      flowName: spec.flowName,
      runId: spec.runId,
      stepName: spec.step,
      taskId: spec.taskId,
      retryCount: spec.attempt,
      originRunId: spec.originRunId,
      username: spec.username,
      namespace: spec.namespace,
      tags: spec.tags,
    });
    setupEnd = performance.now();

    if (spec.recover) {
      if (spec.recover.storeIn !== undefined) flow[spec.recover.storeIn] = { ...spec.recover.error };
      recorded = spec.recover.next;
    } else {
      const step = () => callStep(flow, spec, inputs, (fail) => (failAsync = fail));
      if (layers.length === 0) {
        await step();
      } else {
        const info = { flowName: spec.flowName, runId: spec.runId, stepName: spec.step, taskId: spec.taskId, retryCount: spec.attempt, flowDecorators: spec.flowDecorators };
        // Hooks may draw the flow (a card's graph); the step runs without it if the plan cannot be read.
        const graph = await stepGraph(store, spec.runPlan).catch((err: unknown) => (write("stderr", `Cannot read the flow's graph for decorators: ${(err as Error).message}\n`), []));
        const task = makeStepTask({ ...info, storage: store.backend, graph, parameterNames: spec.parameterNames }, flow, write, ends);
        await runWithHooks(layers, task, step, ends);
      }
    }
    if (asyncError !== undefined) throw asyncError.error;
    // A step that caught the exit signal still asked to exit: that ends the task as a failure.
    if (sandbox.exitCode !== undefined) throw new TaskExitSignal(sandbox.exitCode);
    const stepEnd = performance.now();
    const result = await finish(spec, flow, taskSlots, store, sandbox, recorded, (persistMs, bytes) => timings(stepEnd - setupEnd, persistMs, bytes), () => (slots = undefined));
    await runEndHooks(ends, spec, write, { status: "completed", artifacts: result.artifacts.map((a) => ({ name: a.name, type: a.type, size: a.size })) });
    return result;
  } catch (err) {
    // The step's own error is what counts; a hook that fails on top of it is said in the task's log.
    await runEndHooks(ends, spec, write, { status: "failed", artifacts: [], error: err }).catch((hookErr: unknown) =>
      write("stderr", `A decorator's end hook failed after the step's error: ${(hookErr as Error).message ?? String(hookErr)}\n`),
    );
    const cause = err instanceof TaskExitSignal || sandbox.exitCode === undefined ? err : new TaskExitSignal(sandbox.exitCode);
    const failedAt = performance.now();
    const kept = slots ? await keepFailedArtifacts(spec.step, slots, store, write) : undefined;
    throw new ExecutionFailure(cause, timings(failedAt - setupEnd, performance.now() - failedAt, 0), kept);
  } finally {
    setCurrentTask(undefined);
    closeSerializers();
    sandbox.dispose();
  }
}

/**
 * Stores what a failed attempt had assigned, so it can be inspected; values that cannot be stored
 * are skipped (and named in the task's log). Never throws: the step's own error is what counts.
 */
async function keepFailedArtifacts(
  step: string,
  slots: ArtifactSlots,
  store: ContentStore,
  write: (stream: "stdout" | "stderr", text: string) => void,
): Promise<ArtifactRef[] | undefined> {
  try {
    const { refs, skipped } = await slots.persist(step, store, { bestEffort: true });
    if (skipped.length > 0) write("stderr", `Kept the failed attempt's artifacts except ${skipped.map((n) => `'${n}'`).join(", ")}, which cannot be stored.\n`);
    return refs;
  } catch {
    return undefined;
  }
}

/** Runs the decorators' `onEnd` hooks once (a hook that fails a completed task does not run again for its failure). */
async function runEndHooks(ends: EndHooks, spec: TaskSpec, write: (stream: "stdout" | "stderr", text: string) => void, end: StepEnd): Promise<void> {
  if (ends.empty) return;
  await ends.run(end, spec.step, (line) => write("stderr", `${line}\n`));
}

/** Calls the step method; an error thrown by the step's timers or stray promises fails it too. */
async function callStep(flow: Record<string, unknown>, spec: TaskSpec, inputs: unknown, onAsync: (fail: (err: unknown) => void) => void): Promise<void> {
  const method = flow[spec.step];
  if (typeof method !== "function") {
    throw new StepRuntimeError("no-step", `Step '${spec.step}' is not a method of ${spec.className}`);
  }
  const result: unknown = method.call(flow, inputs);
  if (result && typeof (result as Promise<unknown>).then === "function") {
    await new Promise<void>((resolve, reject) => {
      onAsync(reject);
      (result as Promise<unknown>).then(() => resolve(), reject);
    });
  }
}

/** Resolves the transition and persists the artifacts (and a foreach's element list). */
async function finish(
  spec: TaskSpec,
  flow: Record<string, unknown>,
  slots: ArtifactSlots,
  store: ContentStore,
  sandbox: Sandbox,
  recorded: RecordedTransition | undefined,
  timings: (persistMs: number, bytesWritten: number) => TaskTimings,
  persisting: () => void,
): Promise<ExecutionResult> {
  const transition = resolveTransition({ step: spec.step, isEnd: spec.isEnd, maxNumSplits: spec.maxNumSplits }, flow, recorded);
  // A generator (or any one-shot iterator) cannot be stored or read twice: the artifact becomes its elements.
  const oneShot = transition.kind === "foreach" && transition.elements && isIterator(flow[transition.foreach]);
  if (oneShot && transition.kind === "foreach") flow[transition.foreach] = sandbox.array(transition.elements!);
  const tp = performance.now();
  persisting();
  const { refs, bytesWritten } = await slots.persist(spec.step, store);
  if (transition.kind !== "foreach") return { artifacts: refs, transition, timings: timings(performance.now() - tp, bytesWritten) };
  let items = refs.find((r) => r.name === transition.foreach);
  if (!items) throw new Error(`internal: foreach artifact '${transition.foreach}' was not persisted`);
  if (transition.elements && !oneShot) {
    // A Set, a Map or a string: children read their element by position from the list of elements.
    const stored = await store.putValue(sandbox.array(transition.elements));
    items = artifactRef(transition.foreach, stored);
  }
  return {
    artifacts: refs,
    transition: { kind: "foreach", to: transition.to, count: transition.count, items },
    timings: timings(performance.now() - tp, bytesWritten),
  };
}

function isIterator(v: unknown): boolean {
  return typeof v === "object" && v !== null && typeof (v as { next?: unknown }).next === "function" && typeof (v as { [Symbol.iterator]?: unknown })[Symbol.iterator] === "function";
}

/** `this.input` and `this.index`: the element of the innermost foreach, loaded on first read. */
function wireForeachInput(flow: Record<string, unknown>, frames: readonly SplitFrame[], loader: ArtifactLoader): void {
  const frame = innermostForeach(frames);
  let cache: { value: unknown } | undefined;
  Object.defineProperty(flow, "input", {
    enumerable: false,
    get() {
      if (!frame?.items) return undefined;
      cache ??= { value: loader.loadElement(frame.items, frame.index) };
      return cache.value;
    },
  });
  Object.defineProperty(flow, "index", { enumerable: false, get: () => frame?.index });
}

/** `this.foreachStack()`: the enclosing foreach frames, outermost first, each value loaded on first read. */
function foreachStack(frames: readonly SplitFrame[], loader: ArtifactLoader, sandbox: Sandbox): ForeachFrame[] {
  const out = frames
    .filter((f) => f.kind === "foreach")
    .map((f) => {
      let cache: { value: unknown } | undefined;
      const frame = { step: f.step, index: f.index, numSplits: f.count } as ForeachFrame;
      Object.defineProperty(frame, "value", {
        enumerable: true,
        get: () => (cache ??= { value: f.items ? loader.loadElement(f.items, f.index) : undefined }).value,
      });
      return Object.freeze(frame);
    });
  return sandbox.array(out);
}

function findClass(exports: Record<string, unknown>, className: string): new () => unknown {
  const candidates = [exports.default, ...Object.values(exports)];
  for (const c of candidates) {
    if (typeof c === "function" && c.name === className) return c as new () => unknown;
  }
  throw new StepRuntimeError("no-class", `The flow file no longer exports class ${className}`);
}
