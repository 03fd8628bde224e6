/**
 * The step-decorator contract. The core knows only this contract; each decorator (retry, timeout,
 * environment, ...) is one file that registers a definition here.
 */

/** A decorator attached to a step: its name and its validated options. */
export interface DecoratorSpec {
  readonly name: string;
  readonly options: Readonly<Record<string, unknown>>;
}

/**
 * How the scheduler runs a task; decorators adjust it. Every field has a neutral default, so a step
 * without decorators runs once, in a shared worker host, with no limit.
 */
export interface TaskPlan {
  /** Extra attempts after a failure. @default 0 */
  retries: number;
  /** Wait before each retry, in milliseconds. @default 0 */
  retryDelayMs: number;
  /** Stop the attempt after this many milliseconds. @default undefined (no limit) */
  timeoutMs: number | undefined;
  /** `process` runs the task alone in a fresh process instead of a context in a shared host. @default "context" */
  isolation: "context" | "process";
  /** V8 heap limit for a process-isolated task, in MiB. @default undefined */
  memoryMb: number | undefined;
  /** Environment variables added to the task's `process.env`. @default {} */
  env: Record<string, string>;
  /**
   * When every attempt fails, store the error in this artifact and let the flow go on; a name
   * starting with `_` is never persisted, so the flow goes on and nothing is stored. @default undefined
   */
  catchVar: string | undefined;
  /** Print the caught exception on the console. @default true */
  printCaught: boolean;
}

/** A fresh plan with every default. */
export function defaultPlan(): TaskPlan {
  return {
    retries: 0,
    retryDelayMs: 0,
    timeoutMs: undefined,
    isolation: "context",
    memoryMb: undefined,
    env: {},
    catchVar: undefined,
    printCaught: true,
  };
}

/** What a decorator file registers. */
export interface DecoratorDefinition<O extends object = Record<string, unknown>> {
  readonly name: string;
  /** One line for `metaflow run --help` and docs. */
  readonly help: string;
  /**
   * Validates options given in code (typed values) or on the command line (`--with name:k=v`,
   * values as strings); throws an Error naming the field and the bad value.
   */
  parse(raw: Record<string, unknown>, source: "code" | "cli"): O;
  /** Adjusts how the scheduler runs each task of the step. */
  plan?(options: O, plan: TaskPlan, context: { step: string; fromCli: boolean }): void;
}

const registry = new Map<string, DecoratorDefinition<any>>();

/** Registers a decorator definition so `--with <name>` and the scheduler can find it. */
export function registerDecorator<O extends object>(def: DecoratorDefinition<O>): DecoratorDefinition<O> {
  registry.set(def.name, def);
  return def;
}

/** The definition registered under `name`, or undefined. */
export function findDecorator(name: string): DecoratorDefinition<any> | undefined {
  return registry.get(name);
}

/** Names of every registered decorator, sorted. */
export function decoratorNames(): string[] {
  return [...registry.keys()].sort();
}

/**
 * Parses a `--with` value: `name` or `name:k=v,k2=v2`. Values stay strings; the decorator's
 * `parse` converts them.
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
      raw[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
    }
  }
  return { name, raw };
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

/** Rejects option keys a decorator does not know, naming them and the known ones. */
export function checkKeys(deco: string, raw: Record<string, unknown>, known: readonly string[]): void {
  for (const k of Object.keys(raw)) {
    if (!known.includes(k)) {
      throw new Error(`@${deco} has no option '${k}'; its options are: ${known.join(", ")}`);
    }
  }
}
