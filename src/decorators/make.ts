/** Turns a registered decorator definition into the TC39 method decorator users write. */
import { attachDecorator } from "../flow/steps.js";
import { registerDecorator, type DecoratorDefinition } from "./contract.js";

/** A TC39 method decorator as written on a step: `@retry({ times: 2 })`. */
export type StepDecorator = (method: (...args: any[]) => unknown, context: ClassMethodDecoratorContext) => void;

/** Registers `def` and returns the user-facing factory that validates options at class definition. */
export function makeStepDecorator<I extends object, O extends object>(
  def: DecoratorDefinition<O>,
): (options?: I) => StepDecorator {
  registerDecorator(def);
  return (options?: I) => {
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
}
