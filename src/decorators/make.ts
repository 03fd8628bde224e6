/** Turns a registered decorator definition into the TC39 method decorator users write. */
import { attachDecorator } from "../flow/steps.js";
import { registerDecorator, type DecoratorDefinition } from "./contract.js";

/** A TC39 method decorator as written on a step: `@retry({ times: 2 })`. */
export type StepDecorator = (method: (...args: any[]) => unknown, context: ClassMethodDecoratorContext) => void;

/**
 * A step decorator as users write it: called with options (`@retry({ times: 2 })`, `@retry()`) or
 * bare (`@retry`), which means every default.
 */
export interface StepDecoratorFactory<I extends object> {
  (options?: I): StepDecorator;
  (method: (...args: any[]) => unknown, context: ClassMethodDecoratorContext): void;
}

function isDecoratorContext(v: unknown): v is ClassMethodDecoratorContext {
  return typeof v === "object" && v !== null && "kind" in v && "name" in v && "addInitializer" in v;
}

/** Registers `def` and returns the user-facing factory that validates options at class definition. */
export function makeStepDecorator<I extends object, O extends object>(def: DecoratorDefinition<O>): StepDecoratorFactory<I> {
  registerDecorator(def);
  const withOptions = (options: I | undefined): StepDecorator => {
    const raw = { ...(options ?? {}) } as Record<string, unknown>;
    return (_method, context) => {
      let parsed: O;
      try {
        parsed = def.parse(raw, "code");
      } catch (err) {
        throw new TypeError(`step '${String(context.name)}': ${(err as Error).message}`);
      }
      attachDecorator(context, { name: def.name, options: parsed as Record<string, unknown> });
    };
  };
  function factory(options?: I): StepDecorator;
  function factory(method: (...args: any[]) => unknown, context: ClassMethodDecoratorContext): void;
  function factory(first?: unknown, context?: unknown): StepDecorator | void {
    // `@retry` without parentheses is applied to the method directly.
    if (typeof first === "function" && isDecoratorContext(context)) {
      withOptions(undefined)(first as (...args: any[]) => unknown, context);
      return;
    }
    return withOptions(first as I | undefined);
  }
  return factory;
}
