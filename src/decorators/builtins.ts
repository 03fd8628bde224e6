/**
 * The built-in decorators, listed in one place: what `--with NAME` finds besides a flow's own
 * decorators, and what the task side resolves decorator names against.
 */
import type { DecoratorDefinition } from "./contract.js";
import { catchError } from "./catch-error.js";
import { environment } from "./environment.js";
import { resources } from "./resources.js";
import { retry } from "./retry.js";
import { slurm } from "./slurm.js";
import { timeout } from "./timeout.js";

/** Every built-in decorator definition, by name. */
export const BUILTIN_DECORATORS: ReadonlyMap<string, DecoratorDefinition<any>> = new Map(
  [retry, catchError, timeout, resources, environment, slurm].map((f) => [f.definition.name, f.definition]),
);

/**
 * The built-ins plus the decorators a flow module defined (`stepDecorator`, `flowDecorator`);
 * a user decorator may not take a built-in's name.
 */
export function allDefinitions(own: ReadonlyMap<string, DecoratorDefinition<any>>): Map<string, DecoratorDefinition<any>> {
  const all = new Map(BUILTIN_DECORATORS);
  for (const [name, def] of own) {
    const builtin = BUILTIN_DECORATORS.get(name);
    if (builtin && builtin !== def) {
      throw new Error(`a decorator named '${name}' is already built in; give your decorator another name`);
    }
    all.set(name, def);
  }
  return all;
}
