/**
 * The task executor, in a worker host: builds a fresh sandbox, loads the flow into it, wires the
 * task's artifacts (lazily loaded from the content store), runs the step, checks its transition
 * and persists what it assigned to `this`.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import v8 from "node:v8";
import type * as vm from "node:vm";
import { artifactRef, ContentStore } from "../datastore/cas.js";
import { prepareValue, type PreparedValue } from "../datastore/codec.js";
import { openSerializerScope } from "../datastore/serializers.js";
import type { ArtifactRef } from "../datastore/types.js";
import { ArtifactSerializationError, StepRuntimeError } from "../errors.js";
import { setCurrentTask } from "../flow/current.js";
import { attachTaskHooks, type MergeOptions, type RecordedTransition } from "../flow/flowspec.js";
import type { SplitFrame, TakenTransition } from "../metadata/types.js";
import type { TaskSpec, TaskTimings } from "./protocol.js";
import { openStorageFromSpec, type StorageSpec } from "./backends.js";
import { compileBundle, createSandbox, TaskExitSignal } from "./sandbox.js";

/** What executing one task produced. */
export interface ExecutionResult {
  readonly artifacts: ArtifactRef[];
  readonly transition: TakenTransition;
  readonly timings: TaskTimings;
}

/** Thrown by the executor with timings attached, so failures still report where time went. */
export class ExecutionFailure extends Error {
  constructor(
    override readonly cause: unknown,
    readonly timings: TaskTimings | undefined,
  ) {
    super("task failed");
  }
}

const scripts = new Map<string, vm.Script>();
const stores = new Map<string, ContentStore>();

function scriptFor(bundlePath: string): vm.Script {
  let s = scripts.get(bundlePath);
  if (!s) {
    s = compileBundle(fs.readFileSync(bundlePath, "utf8"), bundlePath);
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
function inputHashes(spec: TaskSpec): string[] {
  const hashes = new Set<string>();
  for (const p of spec.parents) {
    for (const a of p.artifacts) hashes.add(a.hash);
    for (const f of p.frames) if (f.items) hashes.add(f.items.hash);
  }
  for (const f of spec.frames) if (f.items) hashes.add(f.items.hash);
  return [...hashes];
}

/** Per-artifact bookkeeping while the step runs. */
interface Slot {
  readonly ref: ArtifactRef;
  loaded: boolean;
  value: unknown;
}

function hashChunks(chunks: readonly Buffer[]): string {
  const h = createHash("sha256");
  for (const c of chunks) h.update(c);
  return h.digest("hex");
}

/**
 * Whether a loaded value still serializes to what was stored. v8's bytes are not stable across a
 * round trip (number and string representations may change), so a mismatch is re-checked against
 * the stored bytes after one round trip of their own.
 */
function unchanged(store: ContentStore, ref: ArtifactRef, now: PreparedValue): boolean {
  const chunks = now.chunks();
  if (hashChunks(chunks) === ref.hash) return true;
  if (ref.encoding !== "v8" || now.encoding !== "v8" || ref.serializer !== now.serializer) return false;
  const roundTripped = v8.serialize(v8.deserialize(store.getSync(ref.hash)));
  const current = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  return roundTripped.equals(current);
}

function isPrimitive(v: unknown): boolean {
  return v === null || (typeof v !== "object" && typeof v !== "function");
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
): Promise<ExecutionResult> {
  const t0 = performance.now();
  const store = storeFor(spec.storage);
  // A remote datastore fills the local cache first, so the step can read artifacts synchronously.
  await store.prefetch(inputHashes(spec));
  let loadMs = 0;
  let bytesLoaded = 0;
  const load = (ref: ArtifactRef): unknown => {
    const t = performance.now();
    // A serializer rebuilt the value with the task's own classes; plain data is rebuilt in its realm.
    const raw = store.getValueSync(ref);
    const v = ref.serializer === undefined ? sandbox.adopt(raw) : raw;
    loadMs += performance.now() - t;
    bytesLoaded += ref.size;
    return v;
  };
  // A foreach task needs one element of the list: only that element is rebuilt in the step's realm.
  const loadElement = (ref: ArtifactRef, index: number): unknown => {
    const t = performance.now();
    const element = (store.getValueSync(ref) as unknown[])[index];
    const v = ref.serializer === undefined ? sandbox.adopt(element) : element;
    loadMs += performance.now() - t;
    bytesLoaded += ref.size;
    return v;
  };

  // Serializers the flow module registers while it loads belong to this task alone.
  const closeSerializers = openSerializerScope();
  let asyncError: unknown;
  let failAsync: ((err: unknown) => void) | undefined;
  const sandbox = createSandbox({
    env: { ...process.env, ...spec.env },
    argv: [process.argv[0] ?? "node", spec.flowFile],
    write,
    onAsyncError: (err) => {
      asyncError ??= err;
      failAsync?.(err);
    },
  });
  const timings = (stepMs: number, persistMs: number, bytesWritten: number): TaskTimings => ({
    setupMs: setupEnd - t0,
    stepMs,
    persistMs,
    loadMs,
    bytesWritten,
    bytesLoaded,
  });
  let setupEnd = t0;
  try {
    const exports = sandbox.load(scriptFor(spec.bundlePath), spec.flowFile, library);
    const flowClass = findClass(exports, spec.className);
    const flow = new flowClass() as Record<string, unknown>;

    const slots = new Map<string, Slot>();
    const params = new Set(spec.parameterNames);
    const wire = (ref: ArtifactRef): void => {
      const slot: Slot = { ref, loaded: false, value: undefined };
      slots.set(ref.name, slot);
      const read = (): unknown => {
        if (!slot.loaded) {
          slot.value = load(ref);
          slot.loaded = true;
        }
        return slot.value;
      };
      if (params.has(ref.name)) {
        Object.defineProperty(flow, ref.name, {
          configurable: false,
          enumerable: true,
          get: read,
          set: () => {
            throw new TypeError(`Parameter '${ref.name}' is read-only: assign the value to another artifact`);
          },
        });
        return;
      }
      Object.defineProperty(flow, ref.name, {
        configurable: true,
        enumerable: true,
        get() {
          const v = read();
          Object.defineProperty(flow, ref.name, { value: v, writable: true, enumerable: true, configurable: true });
          return v;
        },
        set(v: unknown) {
          Object.defineProperty(flow, ref.name, { value: v, writable: true, enumerable: true, configurable: true });
        },
      });
    };

    // Field initializers of Parameter()/IncludeFile() left markers; the stored values replace them.
    const first = spec.parents[0];
    for (const ref of first?.artifacts ?? []) {
      if (spec.isJoin && !params.has(ref.name)) continue;
      wire(ref);
    }

    const foreachFrame = innermostForeach(spec.frames);
    let inputCache: { value: unknown } | undefined;
    Object.defineProperty(flow, "input", {
      enumerable: false,
      get() {
        if (!foreachFrame?.items) return undefined;
        inputCache ??= { value: loadElement(foreachFrame.items, foreachFrame.index) };
        return inputCache.value;
      },
    });
    Object.defineProperty(flow, "index", { enumerable: false, get: () => foreachFrame?.index });

    let recorded: RecordedTransition | undefined;
    attachTaskHooks(flow, {
      next(t) {
        if (recorded) {
          throw new StepRuntimeError(
            "next-twice",
            `Step '${spec.step}' called this.next() twice`,
            `Step '${spec.step}' called this.next() more than once; call it exactly once, as the last statement`,
          );
        }
        if (spec.isEnd) {
          throw new StepRuntimeError("end-next", "The end step cannot call this.next()", "Remove this.next() from end");
        }
        recorded = t;
      },
      merge(inputs, options) {
        mergeInto(spec, flow, slots, inputs, options, wire);
      },
    });

    const inputs = spec.isJoin ? makeInputs(spec, load, loadElement, (items) => sandbox.array(items)) : undefined;
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

    if (spec.catchInto) {
      flow[spec.catchInto.artifact] = { ...spec.catchInto.error };
      recorded = spec.catchInto.next;
    } else {
      const method = flow[spec.step];
      if (typeof method !== "function") {
        throw new StepRuntimeError("no-step", `Step '${spec.step}' is not a method of ${spec.className}`);
      }
      const result = method.call(flow, inputs);
      if (result && typeof (result as Promise<unknown>).then === "function") {
        await new Promise<void>((resolve, reject) => {
          failAsync = reject;
          (result as Promise<unknown>).then(() => resolve(), reject);
        });
      }
    }
    if (asyncError !== undefined) throw asyncError;
    // A step that caught the exit signal still asked to exit: that ends the task as a failure.
    if (sandbox.exitCode !== undefined) throw new TaskExitSignal(sandbox.exitCode);
    const stepEnd = performance.now();

    const transition = resolveTransition(spec, flow, recorded);
    const tp = performance.now();
    const { refs, bytesWritten } = await persist(spec, flow, slots, store);
    const persistMs = performance.now() - tp;
    if (transition.kind === "foreach") {
      const items = refs.find((r) => r.name === transition.foreach);
      if (!items) throw new Error(`internal: foreach artifact '${transition.foreach}' was not persisted`);
      return {
        artifacts: refs,
        transition: { kind: "foreach", to: transition.to, count: transition.count, items },
        timings: timings(stepEnd - setupEnd, persistMs, bytesWritten),
      };
    }
    return { artifacts: refs, transition, timings: timings(stepEnd - setupEnd, persistMs, bytesWritten) };
  } catch (err) {
    const cause = err instanceof TaskExitSignal || sandbox.exitCode === undefined ? err : new TaskExitSignal(sandbox.exitCode);
    throw new ExecutionFailure(cause, timings(performance.now() - setupEnd, 0, 0));
  } finally {
    setCurrentTask(undefined);
    closeSerializers();
    sandbox.dispose();
  }
}

function findClass(exports: Record<string, unknown>, className: string): new () => unknown {
  const candidates = [exports.default, ...Object.values(exports)];
  for (const c of candidates) {
    if (typeof c === "function" && c.name === className) return c as new () => unknown;
  }
  throw new StepRuntimeError("no-class", `The flow file no longer exports class ${className}`);
}

type Resolved =
  | Exclude<TakenTransition, { kind: "foreach" }>
  | { kind: "foreach"; to: string; count: number; foreach: string };

function resolveTransition(spec: TaskSpec, flow: Record<string, unknown>, t: RecordedTransition | undefined): Resolved {
  if (spec.isEnd) return { kind: "end" };
  if (!t) {
    throw new StepRuntimeError(
      "no-next",
      `Step '${spec.step}' ended without calling this.next()`,
      `Step '${spec.step}' ended without calling this.next(); end every step but 'end' with this.next(...)`,
    );
  }
  switch (t.kind) {
    case "linear":
    case "branch":
      return t;
    case "foreach": {
      const items = flow[t.foreach];
      if (!Array.isArray(items)) {
        throw new StepRuntimeError(
          "foreach-not-list",
          `Step '${spec.step}': foreach artifact '${t.foreach}' is not a list`,
          `Step '${spec.step}' does a foreach over artifact '${t.foreach}', which is ${describe(items)}; assign an array to this.${t.foreach} before this.next()`,
        );
      }
      if (items.length === 0) {
        throw new StepRuntimeError(
          "foreach-empty",
          `Step '${spec.step}': foreach artifact '${t.foreach}' is an empty list`,
          `Step '${spec.step}' does a foreach over artifact '${t.foreach}', which is empty, so the join would have no inputs; give it at least one element`,
        );
      }
      if (items.length > spec.maxNumSplits) {
        throw new StepRuntimeError(
          "too-many-splits",
          `Step '${spec.step}': foreach over '${t.foreach}' makes ${items.length} splits, more than --max-num-splits ${spec.maxNumSplits}`,
          `Step '${spec.step}' does a foreach over '${t.foreach}' with ${items.length} elements, more than --max-num-splits (${spec.maxNumSplits}); raise it with --max-num-splits ${items.length} or split the work into fewer tasks`,
        );
      }
      return { kind: "foreach", to: t.to, count: items.length, foreach: t.foreach };
    }
    case "switch": {
      const value = flow[t.condition];
      const key = typeof value === "string" || typeof value === "number" || typeof value === "boolean" ? String(value) : undefined;
      const to = key === undefined ? undefined : t.cases[key];
      if (to === undefined) {
        throw new StepRuntimeError(
          "switch-no-case",
          `Step '${spec.step}': condition '${t.condition}' = ${JSON.stringify(value) ?? String(value)} matches no case`,
          `Step '${spec.step}' switches on artifact '${t.condition}', whose value ${JSON.stringify(value) ?? String(value)} is not one of the cases ${Object.keys(t.cases).map((k) => JSON.stringify(k)).join(", ")}`,
        );
      }
      return { kind: "switch", to, case: key! };
    }
  }
}

function describe(v: unknown): string {
  if (v === undefined) return "undefined (was it assigned?)";
  if (v === null) return "null";
  if (typeof v === "object") return `a ${(v as object).constructor?.name ?? "object"}`;
  return `a ${typeof v}`;
}

const INTERNAL = new Set(["input", "index"]);

async function persist(
  spec: TaskSpec,
  flow: Record<string, unknown>,
  slots: Map<string, Slot>,
  store: ContentStore,
): Promise<{ refs: ArtifactRef[]; bytesWritten: number }> {
  const refs: ArtifactRef[] = [];
  const toStore: { name: string; prepared: PreparedValue }[] = [];
  let bytesWritten = 0;
  for (const name of Object.keys(flow)) {
    if (INTERNAL.has(name) || name.startsWith("_")) continue;
    const desc = Object.getOwnPropertyDescriptor(flow, name)!;
    const slot = slots.get(name);
    if (slot && desc.get) {
      // Never read (or a parameter): pass the stored reference on without touching the data.
      refs.push(slot.ref);
      continue;
    }
    const value = desc.value;
    if (slot && slot.loaded && slot.value === value) {
      if (isPrimitive(value)) {
        refs.push(slot.ref);
        continue;
      }
      // Read and possibly mutated in place: keep the stored object if the value did not change.
      if (unchanged(store, slot.ref, await prepareOrFail(spec, name, value, false))) {
        refs.push(slot.ref);
        continue;
      }
    }
    if (typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[Symbol.for("metaflow-ts.parameter")]) {
      continue; // a Parameter() marker of a parameter the run did not define
    }
    toStore.push({ name, prepared: await prepareOrFail(spec, name, value, true) });
  }
  // Every value was checked (and every serializer ran) before the first byte is written.
  for (const { name, prepared } of toStore) {
    const stored = await putOrFail(spec, name, prepared, store);
    bytesWritten += stored.written ? stored.size : 0;
    refs.push(artifactRef(name, stored));
  }
  return { refs, bytesWritten };
}

async function prepareOrFail(spec: TaskSpec, name: string, value: unknown, validate: boolean): Promise<PreparedValue> {
  try {
    return await prepareValue(value, { validate });
  } catch (err) {
    throw serializationError(spec, name, err);
  }
}

async function putOrFail(spec: TaskSpec, name: string, prepared: PreparedValue, store: ContentStore) {
  try {
    return await store.putPrepared(prepared);
  } catch (err) {
    if ((err as { code?: string }).code === "datastore") throw err;
    throw serializationError(spec, name, err);
  }
}

function serializationError(spec: TaskSpec, name: string, err: unknown): ArtifactSerializationError {
  return new ArtifactSerializationError(spec.step, name, (err as Error).message);
}

/** Builds the join's `inputs`: one lazy read-only view per incoming task, by position and by step. */
function makeInputs(
  spec: TaskSpec,
  load: (ref: ArtifactRef) => unknown,
  loadElement: (ref: ArtifactRef, index: number) => unknown,
  array: <T>(items: readonly T[]) => T[],
): unknown {
  const views = spec.parents.map((parent) => {
    const byName = new Map(parent.artifacts.map((r) => [r.name, r]));
    const cache = new Map<string, unknown>();
    const frame = parent.frames[parent.frames.length - 1];
    const view: Record<string, unknown> = {};
    for (const ref of parent.artifacts) {
      Object.defineProperty(view, ref.name, {
        enumerable: true,
        get() {
          if (!cache.has(ref.name)) cache.set(ref.name, load(ref));
          return cache.get(ref.name);
        },
      });
    }
    const foreach = frame?.kind === "foreach" ? frame : undefined;
    Object.defineProperty(view, "input", {
      get: () => (foreach?.items ? loadElement(foreach.items, foreach.index) : undefined),
    });
    Object.defineProperty(view, "index", { get: () => foreach?.index });
    Object.defineProperty(view, INPUT_REFS, { value: byName });
    Object.defineProperty(view, INPUT_STEP, { value: parent.step });
    return Object.freeze(view);
  });
  // An array of the step's own realm, so `inputs instanceof Array` holds there.
  const inputs = array(views) as unknown as Record<string, unknown>;
  for (const v of views) {
    const stepName = (v as Record<symbol, string>)[INPUT_STEP]!;
    if (!(stepName in inputs)) Object.defineProperty(inputs, stepName, { value: v, enumerable: false });
  }
  return Object.freeze(inputs);
}

const INPUT_REFS = Symbol("inputRefs");
const INPUT_STEP = Symbol("inputStep");

function mergeInto(
  spec: TaskSpec,
  flow: Record<string, unknown>,
  slots: Map<string, Slot>,
  inputs: unknown,
  options: MergeOptions,
  wire: (ref: ArtifactRef) => void,
): void {
  if (!spec.isJoin) {
    throw new StepRuntimeError("merge-not-join", `Step '${spec.step}' is not a join`, `mergeArtifacts() can only be called in a join step`);
  }
  const list = inputs as ReadonlyArray<Record<symbol, Map<string, ArtifactRef>>>;
  const exclude = new Set(options.exclude ?? []);
  const include = options.include ? new Set(options.include) : undefined;
  const params = new Set(spec.parameterNames);
  const candidates = new Map<string, ArtifactRef[]>();
  for (const input of list) {
    const refs = input[INPUT_REFS];
    if (!refs) throw new TypeError("mergeArtifacts(inputs): pass the join's inputs argument");
    for (const [name, ref] of refs) {
      if (params.has(name)) continue;
      const arr = candidates.get(name) ?? [];
      arr.push(ref);
      candidates.set(name, arr);
    }
  }
  for (const name of include ?? []) {
    if (!candidates.has(name)) {
      throw new StepRuntimeError(
        "merge-missing",
        `mergeArtifacts: artifact '${name}' is in no input`,
        `Step '${spec.step}': mergeArtifacts({ include: [${JSON.stringify(name)}] }) names an artifact no input has; inputs have: ${[...candidates.keys()].join(", ") || "(none)"}`,
      );
    }
  }
  const conflicts: string[] = [];
  for (const [name, refs] of candidates) {
    if (exclude.has(name) || (include && !include.has(name))) continue;
    // An artifact the join already set wins over the inputs'.
    if (Object.prototype.hasOwnProperty.call(flow, name) && !slots.has(name)) continue;
    const hashes = new Set(refs.map((r) => r.hash));
    if (hashes.size > 1) {
      conflicts.push(name);
      continue;
    }
    wire(refs[0]!);
  }
  if (conflicts.length > 0) {
    throw new StepRuntimeError(
      "merge-conflict",
      `mergeArtifacts: artifact${conflicts.length > 1 ? "s" : ""} ${conflicts.map((c) => `'${c}'`).join(", ")} differ between inputs`,
      `Step '${spec.step}': the inputs disagree on ${conflicts.map((c) => `'${c}'`).join(", ")}; set ${conflicts.map((c) => `this.${c}`).join(", ")} in the join before calling mergeArtifacts, or pass { exclude: [${conflicts.map((c) => JSON.stringify(c)).join(", ")}] }`,
    );
  }
}
