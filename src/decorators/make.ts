/**
 * Turns a decorator definition into the TC39 decorator users write — the same way for the
 * built-in decorators and for a user's own (`stepDecorator`, `flowDecorator`).
 */
import { attachClassDecorator, attachDecorator } from "../flow/steps.js";
import { parseOptions, type DecoratorDefinition, type FlowDecoratorDefinition, type StepDecoratorDefinition } from "./contract.js";

/** A TC39 decorator as written on a step method or on the flow class. */
export type AppliedDecorator = (target: unknown, context: ClassMethodDecoratorContext | ClassDecoratorContext) => void;

/**
 * A step decorator as users write it: with options (`@retry({ times: 2 })`, `@retry()`) or bare
 * (`@retry`), on a step method, or on the flow class to apply to every step.
 */
export interface StepDecoratorFactory<I extends object> {
  (options?: I): AppliedDecorator;
  (target: unknown, context: ClassMethodDecoratorContext | ClassDecoratorContext): void;
  /** The definition this factory applies. */
  readonly definition: StepDecoratorDefinition<any>;
}

/** A flow decorator as users write it on the `FlowSpec` subclass: `@project({ name: "x" })`. */
export interface FlowDecoratorFactory<I extends object> {
  (options?: I): (target: abstract new (...args: any[]) => any, context: ClassDecoratorContext) => void;
  (target: abstract new (...args: any[]) => any, context: ClassDecoratorContext): void;
  /** The definition this factory applies. */
  readonly definition: FlowDecoratorDefinition<any>;
}

const NAME = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

let collecting: Map<string, DecoratorDefinition<any>> | undefined;

/**
 * Runs `load` (the synchronous evaluation of a flow module) and returns, beside its result, every
 * decorator defined while it ran: how `--with` and the task side find a user's own decorators.
 */
export function collectDefinitions<T>(load: () => T): { value: T; definitions: Map<string, DecoratorDefinition<any>> } {
  const outer = collecting;
  const definitions = new Map<string, DecoratorDefinition<any>>();
  collecting = definitions;
  try {
    return { value: load(), definitions };
  } finally {
    collecting = outer;
  }
}

function isContext(v: unknown): v is ClassMethodDecoratorContext | ClassDecoratorContext {
  return typeof v === "object" && v !== null && "kind" in v && "name" in v && "addInitializer" in v;
}

function checkDefinition(def: DecoratorDefinition<any>, what: string): void {
  if (typeof def !== "object" || def === null || typeof def.name !== "string" || !NAME.test(def.name)) {
    throw new TypeError(`${what}: name must be an identifier such as "timed", got ${JSON.stringify((def as { name?: unknown })?.name)}`);
  }
  for (const hook of ["parse", "plan", "runStep", "runTags"] as const) {
    const fn = (def as Partial<Record<typeof hook, unknown>>)[hook];
    if (fn !== undefined && typeof fn !== "function") {
      throw new TypeError(`${what} '${def.name}': ${hook} must be a function, got ${typeof fn}`);
    }
  }
  collecting?.set(def.name, def);
}

function parseIn(def: DecoratorDefinition<any>, raw: unknown, where: string): Record<string, unknown> {
  if (raw !== undefined && (typeof raw !== "object" || raw === null || Array.isArray(raw))) {
    throw new TypeError(`${where}: @${def.name} takes an options object, got ${JSON.stringify(raw)}`);
  }
  try {
    return parseOptions(def, { ...((raw as Record<string, unknown>) ?? {}) }, "code");
  } catch (err) {
    throw new TypeError(`${where}: ${(err as Error).message}`);
  }
}

/**
 * Defines a step decorator. Options are validated where the decorator is written; the hooks run
 * as the contract in `decorators/contract.ts` describes.
 * @example
 * export const timed = stepDecorator<{ label?: string }>({
 *   name: "timed",
 *   async runStep(task, next) { const t0 = Date.now(); await next(); task.set("stepSeconds", (Date.now() - t0) / 1000); },
 * });
 */
export function stepDecorator<I extends object = Record<string, unknown>, O extends object = I>(
  def: StepDecoratorDefinition<O>,
): StepDecoratorFactory<I> {
  checkDefinition(def, "stepDecorator");
  const apply = (raw: unknown) => (_target: unknown, context: ClassMethodDecoratorContext | ClassDecoratorContext | DecoratorContext) => {
    if (context.kind === "class") {
      const options = parseIn(def, raw, `class ${String(context.name)}`);
      attachClassDecorator(context, { name: def.name, options }, "step-default", def.repeatable === true);
      return;
    }
    if (context.kind !== "method" || context.static || context.private) {
      throw new TypeError(`@${def.name} goes on a step method or on the flow class, not on a ${context.static ? "static " : ""}${context.kind}`);
    }
    const options = parseIn(def, raw, `step '${String(context.name)}'`);
    attachDecorator(context, { name: def.name, options }, def.repeatable === true);
  };
  const factory = (first?: unknown, context?: unknown): any => {
    // `@retry` without parentheses is applied to the method (or class) directly.
    if (typeof first === "function" && isContext(context)) return apply(undefined)(first, context);
    return apply(first);
  };
  return Object.assign(factory, { definition: def }) as StepDecoratorFactory<I>;
}

/**
 * Defines a flow decorator: a TC39 class decorator on the `FlowSpec` subclass whose hooks see
 * every step (`plan` for each step's plan, `runStep` around each task).
 * @example
 * export const owner = flowDecorator<{ team: string }>({
 *   name: "owner",
 *   parse: (raw) => ({ team: String(raw.team) }),
 *   runStep: async (task, next, o) => { task.setCurrent("team", o.team); await next(); },
 * });
 */
export function flowDecorator<I extends object = Record<string, unknown>, O extends object = I>(
  def: Omit<FlowDecoratorDefinition<O>, "kind">,
): FlowDecoratorFactory<I> {
  const full: FlowDecoratorDefinition<O> = { ...def, kind: "flow" };
  checkDefinition(full, "flowDecorator");
  const apply = (raw: unknown) => (_target: unknown, context: ClassDecoratorContext) => {
    if (context?.kind !== "class") {
      throw new TypeError(`@${full.name} is a flow decorator: write it on the FlowSpec subclass, not on a ${context?.kind ?? "value"}`);
    }
    const options = parseIn(full, raw, `class ${String(context.name)}`);
    attachClassDecorator(context, { name: full.name, options }, "flow");
  };
  const factory = (first?: unknown, context?: unknown): any => {
    if (typeof first === "function" && isContext(context)) return apply(undefined)(first, context as ClassDecoratorContext);
    return apply(first);
  };
  return Object.assign(factory, { definition: full }) as FlowDecoratorFactory<I>;
}
