/**
 * The decorator contract. The core knows only this contract; each decorator (retry, timeout,
 * environment, a user's own) is one definition with up to three hooks:
 *
 * - `parse` validates its options once, where they are written (code or `--with`);
 * - `plan` (parent side) adjusts how each task of the step runs: attempts, limits, environment,
 *   resources, and which task launcher starts it (a context in a shared host, a process of its
 *   own, a cluster job);
 * - `runStep` (inside the task) wraps the step call as `(task, next)`: it may read and set
 *   artifacts and add to `current` before and after `await next()`.
 *
 * @example
 * const timed = stepDecorator<{ label?: string }>({
 *   name: "timed",
 *   async runStep(task, next) {
 *     const t0 = Date.now();
 *     await next();
 *     task.set("stepSeconds", (Date.now() - t0) / 1000);
 *   },
 * });
 */

import type { DecoratorSpec } from "../flow/steps.js";

export type { DecoratorSpec } from "../flow/steps.js";

/** Which task launcher starts an attempt, and the options it reads. */
export interface LauncherChoice {
  /** A launcher kind: `host` (a fresh context in a shared worker process), `process`, `slurm`, ... */
  readonly kind: string;
  readonly options: Readonly<Record<string, unknown>>;
}

/** What a task asks of the machine it runs on; launchers turn it into their own requests. */
export interface ResourceRequest {
  /** CPU cores. @default undefined (the launcher's default) */
  cpu: number | undefined;
  /** Memory in MiB. @default undefined (no limit locally) */
  memoryMb: number | undefined;
  /** GPUs. @default undefined (none) */
  gpu: number | undefined;
}

/**
 * How the scheduler runs each task of a step; decorators adjust it. Every field has a neutral
 * default, so a step without decorators runs once, in a shared worker host, with no limit.
 */
export interface TaskPlan {
  /** Extra attempts after a failure. @default 0 */
  retries: number;
  /**
   * Wait before each retry, in milliseconds, when one was asked for. @default undefined (a local
   * retry starts at once; a production scheduler waits its own default, 2 minutes)
   */
  retryDelayMs: number | undefined;
  /** Stop an attempt after this many milliseconds. @default undefined (no limit) */
  timeoutMs: number | undefined;
  /** What each attempt needs. @default every field undefined */
  resources: ResourceRequest;
  /** Environment variables added to the task's `process.env`. @default {} */
  env: Record<string, string>;
  /**
   * When every attempt has failed: let the flow go on along the step's transition, storing the
   * error in the artifact `storeIn` (if given) and printing it when `print`. @default undefined (the run fails)
   */
  onFailure: { storeIn: string | undefined; print: boolean } | undefined;
  /** Where each attempt runs. @default { kind: "host", options: {} } */
  launcher: LauncherChoice;
}

/**
 * Adds a decorator's request to the plan's: each field becomes the larger of the two, so
 * `@resources` and a compute decorator (`@batch`, `@slurm`) combine the same way in any order.
 */
export function requestResources(plan: TaskPlan, request: Partial<ResourceRequest>): void {
  const larger = (a: number | undefined, b: number | undefined) => (a === undefined ? b : b === undefined ? a : Math.max(a, b));
  const r = plan.resources;
  plan.resources = { cpu: larger(r.cpu, request.cpu), memoryMb: larger(r.memoryMb, request.memoryMb), gpu: larger(r.gpu, request.gpu) };
}

/** A fresh plan with every default. */
export function defaultPlan(): TaskPlan {
  return {
    retries: 0,
    retryDelayMs: undefined,
    timeoutMs: undefined,
    resources: { cpu: undefined, memoryMb: undefined, gpu: undefined },
    env: {},
    onFailure: undefined,
    launcher: { kind: "host", options: {} },
  };
}

/** The flow as the parent-side hooks see it. */
export interface FlowInfo {
  /** The flow's class name. */
  readonly name: string;
  /** Flow decorators written on the class, in source order. */
  readonly decorators: readonly DecoratorSpec[];
}

/** Where a `plan` hook is called. */
export interface PlanContext {
  readonly step: string;
  /** True when the decorator came from `--with` rather than the code. */
  readonly fromCli: boolean;
  readonly flow: FlowInfo;
  /** Every step decorator that applies to the step, outermost first (to check one against the others). */
  readonly decorators: readonly DecoratorSpec[];
}

/** A step of the flow's graph as in-task hooks see it. */
export interface StepShape {
  readonly name: string;
  /** How the step goes on; `end` for the end step. */
  readonly kind: "linear" | "branch" | "foreach" | "switch" | "end";
  /** The steps it can go to, in order. */
  readonly next: readonly string[];
}

/** An artifact the task stored: what the metadata records about it, without its value. */
export interface StoredArtifact {
  readonly name: string;
  /** Human-readable type, e.g. `number`, `Map`, `Buffer`. */
  readonly type: string;
  /** Size of the serialized value in bytes. */
  readonly size: number;
}

/** How a task ended, as an `onEnd` hook hears it. */
export interface StepEnd {
  /** `completed` once the artifacts are stored; `failed` when the step (or storing) threw. */
  readonly status: "completed" | "failed";
  /** What the task stored (empty when it failed). */
  readonly artifacts: readonly StoredArtifact[];
  /** The error when it failed. */
  readonly error?: unknown;
}

/**
 * The datastore the task writes to, as keys holding bytes (the same interface as the datastore's
 * backends): for decorators that keep files beside the task's artifacts and logs.
 */
export interface TaskStorage {
  /** Human-readable location, e.g. `/home/me/proj/.metaflow` or `s3://bucket/prefix`. */
  readonly root: string;
  /** Writes `data` under `key` atomically. */
  put(key: string, data: Buffer | readonly Buffer[], options?: { ifAbsent?: boolean }): Promise<void>;
  /** Reads the object under `key`, or `undefined` when there is none. */
  get(key: string): Promise<Buffer | undefined>;
  exists(key: string): Promise<boolean>;
  /** Names directly under `prefix/`, sorted. */
  list(prefix: string): Promise<string[]>;
  delete(key: string): Promise<void>;
}

/** The running task as an in-task hook (`runStep`) sees it. */
export interface StepTask {
  readonly flowName: string;
  readonly runId: string;
  readonly stepName: string;
  readonly taskId: string;
  /** 0 on the first attempt, 1 on the first retry, ... */
  readonly retryCount: number;
  /** `Flow/run/step/task`. */
  readonly pathspec: string;
  /** Flow decorators of the class (name and options). */
  readonly flowDecorators: readonly DecoratorSpec[];
  /** An artifact the step can see (an input, a parameter, or one set so far), or undefined. */
  get(name: string): unknown;
  /** Sets an artifact, as `this[name] = value` in the step would; it is stored with the others. */
  set(name: string, value: unknown): void;
  /** True when the step can see an artifact of that name. */
  has(name: string): boolean;
  /** Adds `current[key]` for the code of this task (e.g. `current.card`). */
  setCurrent(key: string, value: unknown): void;
  /** Writes one line to the task's log (stderr by default). */
  log(line: string, stream?: "stdout" | "stderr"): void;
  /** The datastore the task writes its artifacts to. */
  readonly storage: TaskStorage;
  /** The flow's steps and transitions, in the order of the flow's graph. */
  readonly graph: readonly StepShape[];
  /** Names of the run's parameters (read their values with `get`). */
  readonly parameterNames: readonly string[];
  /**
   * A value shared by every hook of this task under `key`, made by `create` on first use: how
   * several decorators of one name on a step (`@card` twice) share one object.
   */
  slot<T>(key: string, create: () => T): T;
  /**
   * Runs `hook` when the task ends: after its artifacts are stored (with their names, types and
   * sizes), or after the step failed. Hooks run innermost first; an error a hook throws fails a
   * completed task (as a `DecoratorError`) and is logged for a failed one.
   */
  onEnd(hook: (end: StepEnd) => Promise<void> | void): void;
}

/** What every decorator definition has. */
interface DefinitionBase<O extends object> {
  readonly name: string;
  /** One line for help texts and docs. @default "" */
  readonly help?: string;
  /**
   * The decorator may be written several times on one step (`@card` for several cards); each one
   * gets its own `plan` and `runStep` call. @default false
   */
  readonly repeatable?: boolean;
  /**
   * Validates options given in code (typed values) or on the command line (`--with name:k=v`,
   * values as strings); throws an Error naming the field and the bad value. @default accepts any object
   */
  parse?(raw: Record<string, unknown>, source: "code" | "cli"): O;
  /** Parent side: adjusts how each task of the step (or, on a flow decorator, of every step) runs. */
  plan?(options: O, plan: TaskPlan, context: PlanContext): void;
  /** Inside the task: runs around the step; must call `next()` once to run the step. */
  runStep?(task: StepTask, next: () => Promise<void>, options: O): Promise<void> | void;
}

/** A step decorator: written on a step method, on the flow class (a default for every step), or with `--with`. */
export interface StepDecoratorDefinition<O extends object = Record<string, unknown>> extends DefinitionBase<O> {
  readonly kind?: "step";
}

/** A run (or a deployment's runs) as a flow decorator's `runTags` hook sees it. */
export interface RunTagContext {
  readonly flowName: string;
  /** Who starts the run (or deploys the flow). */
  readonly user: string;
  /** `--branch B` of `metaflow run` or `step-functions create`. */
  readonly branch: string | undefined;
  /** `--production`. */
  readonly production: boolean;
}

/** A flow decorator: a TC39 class decorator on the `FlowSpec` subclass (`@project(...)`). */
export interface FlowDecoratorDefinition<O extends object = Record<string, unknown>> extends DefinitionBase<O> {
  readonly kind: "flow";
  /**
   * Parent side, once before a run starts (or a deployment is created): system tags its runs get,
   * from the options and the run's branch choice. Throw to refuse the run. A flow with no
   * decorator that has this hook refuses `--branch` and `--production`.
   */
  runTags?(options: O, run: RunTagContext): readonly string[];
}

/** Either kind of definition. */
export type DecoratorDefinition<O extends object = Record<string, unknown>> =
  | StepDecoratorDefinition<O>
  | FlowDecoratorDefinition<O>;

/** Parses options with the definition's `parse`, or accepts a plain object when it has none. */
export function parseOptions(def: DecoratorDefinition<any>, raw: Record<string, unknown>, source: "code" | "cli"): Record<string, unknown> {
  if (def.parse) return def.parse(raw, source) as Record<string, unknown>;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new Error(`@${def.name} takes an options object, got ${JSON.stringify(raw)}`);
  }
  return { ...raw };
}

/**
 * Parses a `--with` value: `name` or `name:k=v,k2=v2`; a value in double quotes may hold commas.
 * Values stay strings; the decorator's `parse` converts them.
 */
export function parseWithFlag(text: string): { name: string; raw: Record<string, string> } {
  const colon = text.indexOf(":");
  const name = (colon < 0 ? text : text.slice(0, colon)).trim();
  const raw: Record<string, string> = {};
  if (colon >= 0) {
    for (const pair of splitTopLevel(text.slice(colon + 1))) {
      if (pair.trim() === "") continue;
      const eq = pair.indexOf("=");
      if (eq <= 0) {
        throw new Error(`--with ${text}: '${pair}' is not key=value (write --with ${name}:key=value,key2=value2)`);
      }
      raw[pair.slice(0, eq).trim()] = unquote(pair.slice(eq + 1).trim());
    }
  }
  return { name, raw };
}

/** A value in double quotes (to hold commas or spaces: `extraArgs="--a --b"`, `partition="a,b"`) without them. */
function unquote(value: string): string {
  if (value.length < 2 || !value.startsWith('"') || !value.endsWith('"')) return value;
  try {
    return JSON.parse(value) as string;
  } catch {
    return value.slice(1, -1);
  }
}

/** Splits on commas outside quotes, braces and brackets, so a value may be JSON: `vars={"A":"1","B":"2"}`. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === "\\") i++;
      else if (ch === '"') quoted = false;
    } else if (ch === '"') quoted = true;
    else if (ch === "{" || ch === "[") depth++;
    else if (ch === "}" || ch === "]") depth--;
    else if (ch === "," && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/** Converts a CLI string to a number, naming the decorator field when it is not one. */
export function numberOption(deco: string, field: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isFinite(n)) {
    throw new Error(`@${deco}.${field} must be a number, got ${JSON.stringify(v)}`);
  }
  return n;
}

/** Converts a CLI string to a boolean, naming the decorator field when it is not one. */
export function booleanOption(deco: string, field: string, v: unknown): boolean | undefined {
  if (v === undefined || typeof v === "boolean") return v;
  if (v === "true" || v === "1") return true;
  if (v === "false" || v === "0") return false;
  throw new Error(`@${deco}.${field} must be true or false, got ${JSON.stringify(v)}`);
}

/** Rejects option keys a decorator does not know, naming them and the known ones. */
export function checkKeys(deco: string, raw: Record<string, unknown>, known: readonly string[]): void {
  for (const k of Object.keys(raw)) {
    if (!known.includes(k)) {
      throw new Error(`@${deco} has no option '${k}'; its options are: ${known.join(", ")}`);
    }
  }
}
