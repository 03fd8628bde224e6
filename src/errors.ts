/**
 * Every error Metaflow.ts raises on purpose is a `MetaflowError`: a stable `code`, a one-line
 * `headline` for the console, and a `message` that says what happened, where, and how to fix it.
 */
import { inspect } from "node:util";

export class MetaflowError extends Error {
  /** Stable machine-readable code, e.g. `graph`, `parameter`, `artifact-not-found`. */
  readonly code: string;
  /** One line for the console; the message carries the details. */
  readonly headline: string;

  constructor(code: string, headline: string, message?: string) {
    super(message ?? headline);
    this.code = code;
    this.headline = headline;
    this.name = new.target.name;
  }
}

/** The flow file is missing, does not compile, or exports no FlowSpec subclass. */
export class FlowLoadError extends MetaflowError {
  constructor(message: string, readonly file: string) {
    super("flow-load", `Cannot load flow file ${file}`, message);
  }
}

/** One problem the graph linter found: which step, where, and how to fix it. */
export interface GraphProblem {
  readonly step?: string;
  readonly file: string;
  readonly line: number;
  readonly message: string;
  readonly fix: string;
}

/** The flow's graph is invalid; `problems` lists every issue found. */
export class GraphError extends MetaflowError {
  constructor(readonly problems: readonly GraphProblem[]) {
    super(
      "graph",
      `The flow graph has ${problems.length} problem${problems.length === 1 ? "" : "s"}`,
      problems.map(formatProblem).join("\n"),
    );
  }
}

/** Renders a graph problem as `file:line: step X: message Fix: ...`. */
export function formatProblem(p: GraphProblem): string {
  const where = `${p.file}:${p.line}`;
  const step = p.step ? ` step '${p.step}':` : "";
  return `${where}:${step} ${p.message} Fix: ${p.fix}`;
}

/** A bad command-line flag or argument. */
export class UsageError extends MetaflowError {
  constructor(message: string) {
    super("usage", message);
  }
}

/** A parameter value is missing or cannot be converted to the parameter's type. */
export class ParameterError extends MetaflowError {
  constructor(
    readonly parameter: string,
    message: string,
  ) {
    super("parameter", `Bad value for parameter '${parameter}'`, message);
  }
}

/** A value assigned to `this` cannot be stored as an artifact. */
export class ArtifactSerializationError extends MetaflowError {
  constructor(
    readonly step: string,
    readonly artifact: string,
    reason: string,
  ) {
    super(
      "artifact-serialization",
      `Step '${step}' cannot store artifact '${artifact}'`,
      `Step '${step}' cannot store artifact '${artifact}': ${reason}`,
    );
  }
}

/** Stored data is missing or does not match its content hash. */
export class DatastoreError extends MetaflowError {
  constructor(message: string) {
    super("datastore", "Datastore error", message);
  }
}

/** A metadata record (a run's `_run.json`, an attempt's `attempt-0.end.json`, ...) is truncated or malformed. */
export class MetadataCorruptError extends MetaflowError {
  constructor(
    /** The file (or record) that cannot be read. */
    readonly file: string,
    /** The run, step or task it belongs to, e.g. `TrainFlow/1712345678901`. */
    readonly pathspec: string,
    /** What is wrong with it, e.g. `is truncated or not valid JSON (Unexpected end of JSON input)`. */
    readonly reason: string,
  ) {
    super(
      "metadata-corrupt",
      `Unreadable metadata file ${file}`,
      `${file} (of ${pathspec}) ${reason}. Listings skip ${pathspec} and show the rest; ` +
        `restore the file from a backup, or move it aside if the record is lost for good.`,
    );
  }
}

/** A record that is immutable once written (an ended attempt, a run's end) was to be rewritten with other content. */
export class RecordConflictError extends MetaflowError {
  constructor(
    /** What was to be rewritten, e.g. `the end of attempt 0 of TrainFlow/12/start/1`. */
    readonly record: string,
    message: string,
  ) {
    super("record-conflict", `Cannot rewrite ${record}`, message);
  }
}

/** A step's code failed at run time in a way Metaflow detects (bad foreach, too many splits, ...). */
export class StepRuntimeError extends MetaflowError {
  constructor(code: string, headline: string, message?: string) {
    super(code, headline, message);
  }
}

/** A decorator threw in one of its hooks (`parse`, `plan`, `runStep`); the message names it. */
export class DecoratorError extends MetaflowError {
  constructor(
    readonly decorator: string,
    readonly hook: string,
    readonly step: string | undefined,
    cause: unknown,
  ) {
    const where = step ? ` in step '${step}'` : "";
    // Errors from a flow's code come from another realm: read them by shape, not instanceof.
    const e = typeof cause === "object" && cause !== null && "message" in cause ? (cause as Error) : undefined;
    const reason = e ? `${!e.name || e.name === "Error" ? "" : `${e.name}: `}${e.message}` : describeThrown(cause);
    super("decorator", `@${decorator} failed in its ${hook} hook${where}`, `@${decorator} failed in its ${hook} hook${where}: ${reason}`);
    if (typeof e?.stack === "string") this.stack = `${this.name}: ${this.message}\n${e.stack.split("\n").slice(1).join("\n")}`;
  }
}

/** A run failed; `failedStep` and `error` tell which task failed and why. */
export class RunFailedError extends MetaflowError {
  constructor(
    readonly runPathspec: string,
    readonly failedStep: string | undefined,
    message: string,
  ) {
    super("run-failed", `Run ${runPathspec} failed${failedStep ? ` in step '${failedStep}'` : ""}`, message);
  }
}

/** An error as plain data, so it can cross a process boundary and be stored. */
export interface PlainError {
  name: string;
  code?: string;
  headline?: string;
  message: string;
  stack?: string;
  /** Where in the flow file the error was raised, when known: `file:line:col`. */
  location?: string;
}

/** Converts anything thrown into plain data. */
export function toPlainError(err: unknown): PlainError {
  if (err instanceof Error || (typeof err === "object" && err !== null && "message" in err)) {
    const e = err as Error & { code?: unknown; headline?: unknown };
    const plain: PlainError = { name: String(e.name ?? "Error"), message: String(e.message ?? "") };
    if (typeof e.code === "string") plain.code = e.code;
    if (typeof e.headline === "string") plain.headline = e.headline;
    if (typeof e.stack === "string") plain.stack = e.stack;
    return plain;
  }
  return { name: "Error", message: `A non-error value was thrown: ${describeThrown(err)}` };
}

/** How a thrown non-error reads in a message: its contents (`{ code: 42 }`), never `[object Object]`. */
function describeThrown(v: unknown): string {
  try {
    if (typeof v === "string") return JSON.stringify(v);
    const text = inspect(v, { depth: 3, breakLength: Infinity, maxArrayLength: 20, maxStringLength: 200 });
    return text.length > 1000 ? `${text.slice(0, 1000)}…` : text;
  } catch {
    return Object.prototype.toString.call(v);
  }
}
