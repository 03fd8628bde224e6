/** The value types a parameter can declare, as in Metaflow: `String`, `Number`, `Boolean`, `JSONType`. */
export const JSONType = Symbol.for("metaflow-ts.JSONType");
/** The type of the `JSONType` marker. */
export type JSONTypeMarker = typeof JSONType;

/** A parameter's declared type. */
export type ParameterType = StringConstructor | NumberConstructor | BooleanConstructor | JSONTypeMarker;

/** The TypeScript type of a parameter's value, from its declared type. */
export type ParameterValue<T> = T extends StringConstructor
  ? string
  : T extends NumberConstructor
    ? number
    : T extends BooleanConstructor
      ? boolean
      : T extends JSONTypeMarker
        ? any
        : never;

type Widen<D> = D extends string ? string : D extends number ? number : D extends boolean ? boolean : D;

/** Options of a `Parameter`. */
export interface ParameterOptions<D = unknown> {
  /** The value's type; inferred from `default` when omitted. @default String */
  type?: ParameterType;
  /** Value used when the flag is not given (and `METAFLOW_RUN_<NAME>` is not set). */
  default?: D;
  /** Fail before any task starts when no value is given. @default false */
  required?: boolean;
  /** One line shown by `metaflow run --help`. */
  help?: string;
}

/** What `Parameter()` returns at class construction; the runtime swaps it for the value. */
export interface ParameterSpec {
  readonly kind: "parameter" | "include-file";
  /** The command-line name (`--name`) and the `METAFLOW_RUN_<NAME>` suffix. */
  readonly name: string;
  /** The class field holding it; the artifact has this name. Set when the flow is loaded. */
  readonly field?: string;
  readonly type: "string" | "number" | "boolean" | "json";
  readonly default?: unknown;
  readonly required: boolean;
  readonly help?: string;
  /** IncludeFile only: read the file as UTF-8 text (true) or bytes (false). */
  readonly isText?: boolean;
}

const SPEC = Symbol.for("metaflow-ts.parameter");

/** Whether `v` is the marker `Parameter()`/`IncludeFile()` returned (works across vm realms). */
export function isParameterSpec(v: unknown): v is ParameterSpec {
  return typeof v === "object" && v !== null && (v as Record<symbol, unknown>)[SPEC] === true;
}

const NAME_RE = /^[A-Za-z][A-Za-z0-9_-]*$/;

function typeName(t: ParameterType | undefined, dflt: unknown, name: string): ParameterSpec["type"] {
  if (t === undefined) {
    if (dflt === undefined || typeof dflt === "string") return "string";
    if (typeof dflt === "number") return "number";
    if (typeof dflt === "boolean") return "boolean";
    return "json";
  }
  // Flows run in their own vm realm, so `String` there is not this realm's `String`.
  const ctor = typeof t === "function" ? t.name : undefined;
  if (t === String || ctor === "String") return "string";
  if (t === Number || ctor === "Number") return "number";
  if (t === Boolean || ctor === "Boolean") return "boolean";
  if (t === JSONType) return "json";
  throw new TypeError(
    `Parameter '${name}': type must be String, Number, Boolean or JSONType, got ${String(t)}`,
  );
}

/**
 * Options of `metaflow run` and `metaflow resume` a parameter may not be named after (its flag
 * would collide); the CLI also checks every parameter against the options it really has.
 */
export const RUN_OPTION_NAMES: readonly string[] = [
  "tag",
  "with",
  "max-workers",
  "max-num-splits",
  "run-id-file",
  "isolation",
  "origin-run-id",
  "force",
  "help",
  "namespace",
  "branch",
  "production",
];

const camel = (flag: string) => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** Each run option by the attribute its flag lands on (every flow instance checks its parameters). */
const RUN_OPTIONS_BY_ATTRIBUTE = new Map(RUN_OPTION_NAMES.map((o) => [camel(o), o]));

function checkName(name: string, what: string): void {
  if (typeof name !== "string" || !NAME_RE.test(name)) {
    throw new TypeError(
      `${what} name ${JSON.stringify(name)} is invalid: use letters, digits, '-' and '_', starting with a letter`,
    );
  }
  // `--max-workers` and `--maxWorkers` land on the same option attribute, so both forms clash.
  const option = RUN_OPTIONS_BY_ATTRIBUTE.get(camel(name));
  if (option !== undefined) {
    throw new TypeError(`${what} name '${name}' clashes with the 'metaflow run' option --${option}: choose another name`);
  }
}

function makeSpec(spec: Omit<ParameterSpec, never>): ParameterSpec {
  return Object.freeze(Object.defineProperty({ ...spec }, SPEC, { value: true, enumerable: false }));
}

/**
 * Declares a run parameter as a class field; its value is a read-only artifact in every step.
 * @example alpha = Parameter("alpha", { default: 0.01, help: "Learning rate" });
 */
export function Parameter<T extends ParameterType>(
  name: string,
  options: ParameterOptions & { type: T },
): ParameterValue<T>;
export function Parameter<D>(name: string, options: ParameterOptions<D> & { default: D }): Widen<D>;
export function Parameter(name: string, options?: ParameterOptions): string;
export function Parameter(name: string, options: ParameterOptions = {}): unknown {
  checkName(name, "Parameter");
  const type = typeName(options.type, options.default, name);
  return makeSpec({
    kind: "parameter",
    name,
    type,
    ...(options.default !== undefined ? { default: options.default } : {}),
    required: options.required === true,
    ...(options.help !== undefined ? { help: options.help } : {}),
  });
}

/** Options of an `IncludeFile`. */
export interface IncludeFileOptions {
  /** Path of the file used when the flag is not given, relative to the working directory. */
  default?: string;
  /** Fail before any task starts when no file is given. @default false */
  required?: boolean;
  /** One line shown by `metaflow run --help`. */
  help?: string;
  /** Read the file as UTF-8 text; `false` gives a Buffer. @default true */
  isText?: boolean;
}

/**
 * Declares a parameter whose value is the contents of a local file, stored as a versioned artifact.
 * @example rows = IncludeFile("rows", { default: "data/rows.csv" });
 */
export function IncludeFile(name: string, options: IncludeFileOptions & { isText: false }): Buffer;
export function IncludeFile(name: string, options?: IncludeFileOptions): string;
export function IncludeFile(name: string, options: IncludeFileOptions = {}): unknown {
  checkName(name, "IncludeFile");
  return makeSpec({
    kind: "include-file",
    name,
    type: "string",
    ...(options.default !== undefined ? { default: options.default } : {}),
    required: options.required === true,
    ...(options.help !== undefined ? { help: options.help } : {}),
    isText: options.isText !== false,
  });
}
