/**
 * `@step` and the per-class registry of steps and their decorators, kept in TC39 decorator
 * metadata so it travels with the class (also across vm realms).
 */
import type { DecoratorSpec } from "../decorators/contract.js";

(Symbol as { metadata?: symbol }).metadata ??= Symbol.for("Symbol.metadata");

const KEY = Symbol.for("metaflow-ts.steps");

/** What the class metadata records about one step. */
export interface StepInfo {
  readonly name: string;
  readonly decorators: DecoratorSpec[];
  isStep: boolean;
}

type Registry = Map<string, StepInfo>;

const stepNames = new WeakMap<object, string>();

function registryOf(metadata: DecoratorMetadataObject): Registry {
  // Metadata objects inherit from the parent class's metadata; copy on first write so a subclass
  // never edits its parent's registry.
  if (!Object.prototype.hasOwnProperty.call(metadata, KEY)) {
    const inherited = (metadata as Record<symbol, unknown>)[KEY] as Registry | undefined;
    const own: Registry = new Map();
    if (inherited) for (const [k, v] of inherited) own.set(k, { ...v, decorators: [...v.decorators] });
    (metadata as Record<symbol, unknown>)[KEY] = own;
  }
  return (metadata as Record<symbol, unknown>)[KEY] as Registry;
}

function infoFor(context: ClassMethodDecoratorContext): StepInfo {
  if (!context.metadata) {
    throw new TypeError("decorator metadata is unavailable: load the flow through metaflow-ts (Symbol.metadata is missing)");
  }
  const reg = registryOf(context.metadata);
  const name = String(context.name);
  let info = reg.get(name);
  if (!info) {
    info = { name, decorators: [], isStep: false };
    reg.set(name, info);
  }
  return info;
}

/**
 * Marks a method of a `FlowSpec` subclass as a step.
 * @example @step start() { this.next(this.end); }
 */
export function step<T extends (...args: any[]) => unknown>(
  method: T,
  context: ClassMethodDecoratorContext,
): void {
  if (context?.kind !== "method" || context.static || context.private) {
    throw new TypeError("@step goes on a public instance method of a FlowSpec subclass");
  }
  infoFor(context).isStep = true;
  stepNames.set(method, String(context.name));
}

/** Records a step decorator's validated options for the method it decorates. */
export function attachDecorator(context: ClassMethodDecoratorContext, spec: DecoratorSpec): void {
  const info = infoFor(context);
  if (info.decorators.some((d) => d.name === spec.name)) {
    throw new TypeError(`@${spec.name} is applied twice to step '${String(context.name)}'`);
  }
  info.decorators.push(spec);
}

/** Steps registered on a flow class, in declaration order. */
export function stepsOf(flowClass: abstract new () => unknown): StepInfo[] {
  const metaSym = (Symbol as { metadata?: symbol }).metadata ?? Symbol.for("Symbol.metadata");
  const metadata = (flowClass as unknown as Record<symbol, DecoratorMetadataObject | undefined>)[metaSym];
  if (!metadata) return [];
  const reg = (metadata as Record<symbol, unknown>)[KEY] as Registry | undefined;
  return reg ? [...reg.values()].filter((s) => s.isStep) : [];
}

/** The step name of a step method reference such as `this.train`, or undefined. */
export function stepNameOf(fn: unknown): string | undefined {
  if (typeof fn !== "function") return undefined;
  return stepNames.get(fn) ?? undefined;
}
