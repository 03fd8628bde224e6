import { types } from "node:util";
import v8 from "node:v8";
import type { Encoding } from "./types.js";

/** A value turned into bytes, ready for the content store. */
export interface SerializedValue {
  readonly encoding: Encoding;
  /** Human-readable type, e.g. `number`, `Array`, `Map`, `Buffer`, `Float64Array`. */
  readonly type: string;
  /** For `typed`: the constructor to rebuild (`Float64Array`, ..., `ArrayBuffer`, `DataView`). */
  readonly typedArray?: string;
  /** The bytes, possibly views of the caller's own memory (binary values are never copied). */
  readonly chunks: Buffer[];
  /** Total length of `chunks` in bytes. */
  readonly size: number;
}

/** Typed-array constructors of this realm by name; values are rebuilt with these, whatever realm wrote them. */
const TYPED_ARRAYS: Readonly<
  Record<string, new (buffer: ArrayBuffer, byteOffset: number, length: number) => ArrayBufferView>
> = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
};

const ERROR_TYPES = new Set([
  "Error",
  "EvalError",
  "RangeError",
  "ReferenceError",
  "SyntaxError",
  "TypeError",
  "URIError",
]);
const PLAIN_DATA_HINT = "store plain data: objects, arrays, Map, Set, Date, typed arrays";
/** For a class instance: how to make the datastore store it. */
const SERIALIZER_HINT =
  `${PLAIN_DATA_HINT}; or register a serializer for the class in the flow module: ` +
  `registerSerializer({ name, test, encode, decode }) from "metaflow-ts", see docs/data.md`;
/** For a class instance inside plain data: serializers apply to whole artifacts. */
const NESTED_HINT =
  `${PLAIN_DATA_HINT}; a value that needs a serializer, like an Arrow table or a class registered with ` +
  `registerSerializer, must be an artifact of its own, not part of another value`;

/** Buffers and typed arrays as their raw bytes (zero-copy); undefined for any other value. */
export function serializeBinary(value: unknown): SerializedValue | undefined {
  if (Buffer.isBuffer(value)) {
    return { encoding: "buffer", type: "Buffer", chunks: [value], size: value.length };
  }
  if (types.isArrayBufferView(value) || types.isAnyArrayBuffer(value)) {
    const bytes = types.isAnyArrayBuffer(value)
      ? Buffer.from(value)
      : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    const name = binaryTypeName(value);
    return { encoding: "typed", type: name, typedArray: name, chunks: [bytes], size: bytes.length };
  }
  return undefined;
}

/** Anything structured clone can hold, via `v8.serialize`, without the storability walk. */
export function serializeV8(value: unknown): SerializedValue {
  let bytes: Buffer;
  try {
    bytes = v8.serialize(value);
  } catch (err) {
    // The walk above should have caught everything; this is the safety net for what it did not foresee.
    const reason = (err as Error).message;
    const hint = /call stack/i.test(reason) ? "; it is nested too deeply, flatten it" : "";
    throw new Error(`the value cannot be serialized (${reason})${hint}`, { cause: err });
  }
  return { encoding: "v8", type: describeType(value), chunks: [bytes], size: bytes.length };
}

/**
 * Rebuilds a value from the bytes `serializeBinary` or `serializeV8` produced; typed arrays come back as this realm's
 * constructors, and views of `bytes` are returned without copying when `bytes` is suitably aligned.
 */
export function deserializeValue(
  bytes: Buffer,
  ref: { encoding: Encoding; typedArray?: string },
): unknown {
  switch (ref.encoding) {
    case "buffer":
      return bytes;
    case "typed":
      return rebuildBinary(bytes, ref.typedArray);
    case "v8":
      return v8.deserialize(bytes);
    case "json":
      return JSON.parse(bytes.toString("utf8"));
    case "bytes":
      throw new Error("these bytes were written by a serializer, but the artifact index names none");
    default:
      throw new Error(`unknown artifact encoding ${JSON.stringify(ref.encoding)}`);
  }
}

/** A human-readable type name for `value`, realm-independent. */
export function describeType(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  if (Buffer.isBuffer(value)) return "Buffer";
  if (types.isArrayBufferView(value) || types.isAnyArrayBuffer(value)) return binaryTypeName(value);
  if (Array.isArray(value)) return "Array";
  if (types.isMap(value)) return "Map";
  if (types.isSet(value)) return "Set";
  if (types.isDate(value)) return "Date";
  if (types.isRegExp(value)) return "RegExp";
  if (types.isNativeError(value)) return errorTypeName(value);
  if (types.isBoxedPrimitive(value)) return tag(value);
  return constructorName(Object.getPrototypeOf(value)) ?? "Object";
}

/** The builtin name of a binary value, read from its internal tag so that any realm gives the same answer. */
function binaryTypeName(value: ArrayBufferView | ArrayBufferLike): string {
  if (types.isArrayBuffer(value)) return "ArrayBuffer";
  if (types.isSharedArrayBuffer(value)) return "SharedArrayBuffer";
  if (types.isDataView(value)) return "DataView";
  return tag(value);
}

function rebuildBinary(bytes: Buffer, name: string | undefined): ArrayBufferView | ArrayBuffer {
  if (name === "ArrayBuffer" || name === "SharedArrayBuffer") return ownedArrayBuffer(bytes);
  if (name === "DataView") {
    return new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  }
  const ctor = name === undefined ? undefined : TYPED_ARRAYS[name];
  if (!ctor) throw new Error(`unknown typed array type ${JSON.stringify(name)}`);
  const width = (ctor as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
  if (bytes.length % width !== 0) {
    throw new Error(
      `${bytes.length} bytes are not a whole number of ${name} elements (${width} bytes each)`,
    );
  }
  // A typed array view must start at a multiple of its element size; copy only when it would not.
  const aligned = bytes.byteOffset % width === 0 ? bytes : Buffer.from(ownedArrayBuffer(bytes));
  return new ctor(aligned.buffer as ArrayBuffer, aligned.byteOffset, aligned.length / width);
}

/** An ArrayBuffer holding exactly `bytes`: its own backing store when that fits exactly, else a copy. */
function ownedArrayBuffer(bytes: Buffer): ArrayBuffer {
  const backing = bytes.buffer;
  if (bytes.byteOffset === 0 && backing.byteLength === bytes.length && types.isArrayBuffer(backing))
    return backing;
  const copy = new ArrayBuffer(bytes.length);
  new Uint8Array(copy).set(bytes);
  return copy;
}

/** What is wrong with a part of the value, and how to fix it when that is not obvious. */
interface Problem {
  readonly what: string;
  readonly hint?: string;
}

/** A step on the way from the artifact's root to a nested value, formatted only if an error needs it. */
interface PathNode {
  readonly parent: PathNode | undefined;
  /** A ready segment (`.get("k")`), an array index, or (with `property`) a property name. */
  readonly segment: string | number;
  readonly property?: boolean;
}

function formatPath(node: PathNode | undefined): string {
  const segments: string[] = [];
  for (let n = node; n; n = n.parent) {
    segments.push(typeof n.segment === "number" ? `[${n.segment}]` : n.property ? propertySegment(n.segment) : n.segment);
  }
  return segments.reverse().join("");
}

function propertySegment(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

function keyLabel(key: unknown): string {
  if (typeof key === "string") return JSON.stringify(key);
  if (
    typeof key === "number" ||
    typeof key === "boolean" ||
    typeof key === "bigint" ||
    key === undefined ||
    key === null
  ) {
    return typeof key === "bigint" ? `${key}n` : String(key);
  }
  return "…";
}

/**
 * Walks the value (iteratively, so deep nesting cannot overflow the stack; cycle-safe; binary leaves
 * skipped) and throws on the first part that `v8.serialize` would reject or silently rebuild wrongly.
 */
export function assertStorable(root: unknown): void {
  const seen = new Set<object>();
  const stack: { value: unknown; path: PathNode | undefined }[] = [
    { value: root, path: undefined },
  ];
  const fail = ({ what, hint }: Problem, path: PathNode | undefined): never => {
    const where = formatPath(path);
    throw new Error(
      `${what}${where === "" ? "" : ` at ${where}`}${hint === undefined ? "" : ` (${hint})`}`,
    );
  };
  for (let item = stack.pop(); item; item = stack.pop()) {
    const { value, path } = item;
    if (typeof value === "function") fail({ what: "a function" }, path);
    if (typeof value === "symbol") fail({ what: "a symbol" }, path);
    if (typeof value !== "object" || value === null) continue;
    if (seen.has(value)) continue;
    seen.add(value);
    if (types.isArrayBufferView(value) || types.isArrayBuffer(value)) continue;
    const plain = isKnownPlainObject(value);
    if (!plain) {
      const problem = unsupportedKind(value, path === undefined);
      if (problem) fail(problem, path);
    }

    // Segments are formatted only if an error needs them: a big array of records costs no strings.
    const child = (segment: string | number, v: unknown, property?: true) => {
      // Primitives other than symbols are always fine; skip pushing them to keep big arrays cheap.
      if (
        (typeof v === "object" && v !== null) ||
        typeof v === "function" ||
        typeof v === "symbol"
      ) {
        stack.push({ value: v, path: property ? { parent: path, segment, property } : { parent: path, segment } });
      }
    };
    if (types.isMap(value)) {
      let i = 0;
      for (const [k, v] of value as Map<unknown, unknown>) {
        child(`.keys()[${i}]`, k);
        child(`.get(${keyLabel(k)})`, v);
        i++;
      }
    } else if (types.isSet(value)) {
      let i = 0;
      for (const v of value as Set<unknown>) child(`.values()[${i++}]`, v);
    } else if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) child(i, value[i]);
    }
    // Only plain objects carry properties worth checking: v8 ignores extra properties of errors,
    // boxed primitives, Maps, Sets and Dates, and listing an array's keys would cost a string per
    // element (v8.serialize itself rejects a function hidden in an array's extra properties).
    if (!plain && !isPlainObject(value)) continue;
    if (
      Object.getOwnPropertySymbols(value).some((s) =>
        Object.prototype.propertyIsEnumerable.call(value, s),
      )
    ) {
      fail(
        { what: "a symbol-keyed property", hint: "it would be silently dropped; use a string key" },
        path,
      );
    }
    for (const key of Object.keys(value)) child(key, (value as Record<string, unknown>)[key], true);
  }
}

/** Prototypes (of any realm) whose plain objects passed every check; their like need only a quick look. */
const plainPrototypes = new WeakSet<object>();

/**
 * Whether `value` is a plain object whose prototype was already found to be a builtin `Object`
 * prototype; the first of each prototype is checked in full and then remembered here.
 */
function isKnownPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  if (typeof proto !== "object" || proto === null || types.isProxy(value)) return false;
  if (plainPrototypes.has(proto)) return tag(value) === "Object";
  if (tag(value) === "Object" && unsupportedKind(value, false) === undefined && isBuiltinPrototype(proto)) {
    plainPrototypes.add(proto);
  }
  return false;
}

/** Why an object cannot be stored, with an optional hint; undefined when it can. Prototype checks work across realms. */
function unsupportedKind(value: object, atRoot: boolean): Problem | undefined {
  if (types.isProxy(value)) return { what: "a Proxy" };
  if (types.isPromise(value)) return { what: "a Promise", hint: "did you forget await?" };
  if (types.isWeakMap(value)) return { what: "a WeakMap" };
  if (types.isWeakSet(value)) return { what: "a WeakSet" };
  if (tag(value) === "WeakRef") return { what: "a WeakRef" };
  if (types.isSharedArrayBuffer(value))
    return { what: "a SharedArrayBuffer", hint: "copy it into an ArrayBuffer" };
  if (types.isGeneratorObject(value))
    return { what: "a generator", hint: "spread it into an array" };
  if (types.isMapIterator(value) || types.isSetIterator(value))
    return { what: "an iterator", hint: "spread it into an array" };
  if (types.isSymbolObject(value)) return { what: "a symbol" };
  if (types.isModuleNamespaceObject(value))
    return { what: "a module namespace object", hint: PLAIN_DATA_HINT };
  if (types.isExternal(value)) return { what: "a native (external) object" };

  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === null) return undefined;
  const name = constructorName(proto);
  if (isBuiltinPrototype(proto) && name !== undefined && name === expectedConstructor(value))
    return undefined;
  const hint = atRoot ? SERIALIZER_HINT : NESTED_HINT;
  if (name !== undefined && name !== "") return { what: `an instance of class ${name}`, hint };
  return { what: "an object with a custom prototype", hint };
}

/** The builtin constructor whose prototype an object of this internal kind must have to be rebuilt as is. */
function expectedConstructor(value: object): string | undefined {
  if (Array.isArray(value)) return "Array";
  if (types.isMap(value)) return "Map";
  if (types.isSet(value)) return "Set";
  if (types.isDate(value)) return "Date";
  if (types.isRegExp(value)) return "RegExp";
  if (types.isBoxedPrimitive(value)) return tag(value);
  if (types.isNativeError(value)) {
    const name = constructorName(Object.getPrototypeOf(value));
    return name !== undefined && ERROR_TYPES.has(name) ? name : "Error";
  }
  return tag(value) === "Object" ? "Object" : undefined;
}

/** Whether `proto` is a builtin prototype (of any realm): its constructor is native code, not a user class. */
function isBuiltinPrototype(proto: unknown): boolean {
  if (typeof proto !== "object" || proto === null) return false;
  const descriptor = Object.getOwnPropertyDescriptor(proto, "constructor");
  const ctor: unknown = descriptor?.value;
  if (typeof ctor !== "function") return false;
  try {
    return /\{\s*\[native code\]\s*\}$/.test(Function.prototype.toString.call(ctor));
  } catch {
    return false;
  }
}

function constructorName(proto: unknown): string | undefined {
  if (typeof proto !== "object" || proto === null) return undefined;
  const ctor: unknown = Object.getOwnPropertyDescriptor(proto, "constructor")?.value;
  if (typeof ctor !== "function") return undefined;
  return typeof ctor.name === "string" ? ctor.name : undefined;
}

function errorTypeName(value: object): string {
  const name = constructorName(Object.getPrototypeOf(value));
  return name !== undefined && name !== "" ? name : "Error";
}

/** The internal `[object X]` tag, which for builtins is stable across realms. */
function tag(value: unknown): string {
  return Object.prototype.toString.call(value).slice(8, -1);
}

/** Objects whose only content is their own properties (after `unsupportedKind` accepted them). */
function isPlainObject(value: object): boolean {
  return !Array.isArray(value) && tag(value) === "Object";
}
