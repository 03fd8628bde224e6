/**
 * Pluggable serializers: how values of a kind (an Arrow table, a user's model class) are stored as
 * artifacts. A serializer is registered by name; the name is recorded with every artifact it wrote,
 * so any reader that registered the same name rebuilds the value. Registrations made while a task
 * runs (its flow module is evaluated afresh in each task's context) belong to that task only.
 */
import { MetaflowError } from "../errors.js";

/** What `encode` may return: bytes (one buffer, or several stored one after the other) or plain data. */
export type EncodedValue = Uint8Array | readonly Uint8Array[] | unknown;

/** A serializer's description of a value, stored in the artifact index and shown without loading the value. */
export interface ValueDescription {
  /** Type shown in listings instead of the class name, e.g. `Table`. */
  readonly type?: string;
  /** Plain JSON data shown by `metaflow dump` and `DataArtifact.summary`, e.g. `{ rows, columns }`. */
  readonly summary?: Readonly<Record<string, unknown>>;
}

/** What the artifact index holds about a value a serializer stored, passed back to `decode`. */
export interface StoredDescription {
  /** The type recorded when it was stored (from `describe`, else the class name). */
  readonly type: string;
  readonly summary?: Readonly<Record<string, unknown>>;
}

/**
 * How values of one kind are stored as artifacts; register it with `registerSerializer`.
 * @example
 * registerSerializer({
 *   name: "linear-model",
 *   test: (v) => v instanceof LinearModel,
 *   encode: (m: LinearModel) => Buffer.from(JSON.stringify(m.weights)),
 *   decode: (bytes: Buffer) => new LinearModel(JSON.parse(bytes.toString())),
 * });
 */
export interface Serializer<T = unknown> {
  /** Recorded with each artifact it wrote: readers find the serializer by it. Letters, digits and `.-_@/`, at most 100 characters. */
  readonly name: string;
  /** Whether this serializer stores `value`, an object or function (serializers registered later are asked first). */
  test(value: unknown): boolean;
  /**
   * The value as bytes (a Buffer or Uint8Array, or an array of them stored one after the other
   * without being joined) or as plain data (stored with structured clone); may return a Promise.
   */
  encode(value: T): EncodedValue | Promise<EncodedValue>;
  /**
   * Rebuilds the value, synchronously, from what `encode` returned (bytes arrive as one Buffer);
   * `stored` is what the artifact index holds about it (its type and summary).
   */
  decode(payload: unknown, stored: StoredDescription): T;
  /** Optional: a type name and a small plain-data summary, shown in listings without loading the value. */
  describe?(value: T): ValueDescription;
}

/** A serializer is missing, invalid, or failed; `serializer` names it. */
export class SerializerError extends MetaflowError {
  constructor(
    code: "serializer-invalid" | "serializer-missing" | "serializer-failed",
    readonly serializer: string,
    headline: string,
    message: string,
  ) {
    super(code, headline, message);
  }
}

/** Encodings the core writes without a serializer; no registered serializer may take these names. */
export const RESERVED_NAMES: ReadonlySet<string> = new Set(["buffer", "typed", "v8", "json", "bytes"]);

/** What a serializer's name may be (the service checks stored refs against it too). */
export const SERIALIZER_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@/-]{0,99}$/;

/** The registrations of one realm: a task while it runs, or the process outside any task. */
interface Scope {
  readonly serializers: Serializer[];
  readonly modules: Map<string, unknown[]>;
}

const processScope: Scope = { serializers: [], modules: new Map() };
const builtins: Serializer[] = [];
let taskScopes: Scope[] = [];

/**
 * Registers a serializer for values of your own kind; call it in the flow module (or a module it
 * imports) so that every task has it, and in client code that reads the artifacts. A later
 * registration of the same name replaces the earlier one.
 * @example
 * registerSerializer({ name: "linear-model", test: (v) => v instanceof LinearModel,
 *   encode: (m) => Buffer.from(JSON.stringify(m.weights)), decode: (b) => new LinearModel(JSON.parse(b.toString())) });
 */
export function registerSerializer<T>(serializer: Serializer<T>): void {
  const s = validateSerializer(serializer);
  const scope = activeScope();
  const at = scope.serializers.findIndex((r) => r.name === s.name);
  if (at >= 0) scope.serializers.splice(at, 1);
  scope.serializers.push(s);
}

/** Registers a serializer that ships with Metaflow.ts; tried after every user serializer. */
export function registerBuiltinSerializer(serializer: Serializer): void {
  const s = validateSerializer(serializer);
  if (!builtins.some((b) => b.name === s.name)) builtins.push(s);
}

/**
 * Starts a task's own registrations (its flow module is about to be evaluated in a fresh realm);
 * returns the function that ends them, so nothing a task registered outlives it.
 */
export function openSerializerScope(): () => void {
  const scope: Scope = { serializers: [], modules: new Map() };
  taskScopes = [...taskScopes, scope];
  return () => {
    taskScopes = taskScopes.filter((s) => s !== scope);
  };
}

/** The serializer that stores `value`: the task's registrations, then the process's, then the built-ins. */
export function serializerFor(value: unknown): Serializer | undefined {
  for (const s of registered()) {
    let matches: boolean;
    try {
      matches = s.test(value) === true;
    } catch (err) {
      throw new SerializerError(
        "serializer-failed",
        s.name,
        `Serializer "${s.name}" failed`,
        `the serializer "${s.name}" failed: its test() threw ${describeError(err)}; make test(value) return true or false for any value`,
      );
    }
    if (matches) return s;
  }
  return undefined;
}

/** The serializer registered under `name` (task first, then process, then built-in), if any. */
export function findSerializer(name: string): Serializer | undefined {
  return registered().find((s) => s.name === name);
}

/**
 * Records a module instance a serializer builds values with (e.g. the flow's own `apache-arrow`),
 * for the running task or, outside a task, for the process; the latest is listed first.
 */
export function addModuleInstance(kind: string, module: unknown): void {
  const scope = activeScope();
  const list = scope.modules.get(kind) ?? [];
  scope.modules.set(kind, [module, ...list.filter((m) => m !== module)]);
}

/** The module instances recorded for `kind`: the running task's first, then the process's. */
export function moduleInstances(kind: string): unknown[] {
  const out: unknown[] = [];
  for (const scope of [...taskScopes].reverse()) out.push(...(scope.modules.get(kind) ?? []));
  out.push(...(processScope.modules.get(kind) ?? []));
  return out;
}

/** A thrown value as a short phrase for error messages. */
export function describeError(err: unknown): string {
  if (err instanceof Error || (typeof err === "object" && err !== null && "message" in err)) {
    const e = err as { name?: unknown; message?: unknown };
    return `${String(e.name ?? "Error")}: ${String(e.message)}`;
  }
  return `the non-error value ${String(err)}`;
}

function activeScope(): Scope {
  return taskScopes.at(-1) ?? processScope;
}

function registered(): Serializer[] {
  const out: Serializer[] = [];
  for (const scope of [...taskScopes].reverse()) out.push(...[...scope.serializers].reverse());
  out.push(...[...processScope.serializers].reverse(), ...builtins);
  return out;
}

function validateSerializer<T>(serializer: Serializer<T>): Serializer {
  const fail = (field: string, problem: string): never => {
    const name = typeof (serializer as { name?: unknown } | undefined)?.name === "string" ? serializer.name : "?";
    throw new SerializerError(
      "serializer-invalid",
      name,
      "Invalid serializer",
      `registerSerializer(): ${field} ${problem}; pass { name, test, encode, decode } (see docs/data.md)`,
    );
  };
  if (typeof serializer !== "object" || serializer === null) fail("the argument", `must be an object, got ${String(serializer)}`);
  const { name } = serializer;
  if (typeof name !== "string" || !SERIALIZER_NAME_PATTERN.test(name)) {
    fail("name", `must be 1 to 100 letters, digits or ".-_@/" starting with a letter or digit, got ${JSON.stringify(name)}`);
  }
  if (RESERVED_NAMES.has(name)) fail("name", `${JSON.stringify(name)} is reserved for a built-in encoding; choose another`);
  for (const fn of ["test", "encode", "decode"] as const) {
    if (typeof serializer[fn] !== "function") fail(fn, `must be a function, got ${typeof serializer[fn]}`);
  }
  if (serializer.describe !== undefined && typeof serializer.describe !== "function") {
    fail("describe", `must be a function when given, got ${typeof serializer.describe}`);
  }
  return serializer as Serializer;
}
