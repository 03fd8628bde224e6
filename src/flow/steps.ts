/**
 * `@step` and the per-class registry of steps and their decorators, kept in TC39 decorator
 * metadata so it travels with the class (also across vm realms).
 */
/** A decorator attached to a step or a flow: its name and its validated options. */
export interface DecoratorSpec {
  readonly name: string;
  readonly options: Readonly<Record<string, unknown>>;
}

(Symbol as { metadata?: symbol }).metadata ??= Symbol.for("Symbol.metadata");

const KEY = Symbol.for("metaflow-ts.steps");
const CLASS_KEY = Symbol.for("metaflow-ts.class-decorators");

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

/**
 * Records a step decorator's validated options for the method it decorates. A `repeatable`
 * decorator may be written several times; its specs stay in source order.
 */
export function attachDecorator(context: ClassMethodDecoratorContext, spec: DecoratorSpec, repeatable = false): void {
  const info = infoFor(context);
  const first = info.decorators.findIndex((d) => d.name === spec.name);
  if (first < 0) {
    info.decorators.push(spec);
    return;
  }
  if (!repeatable) throw new TypeError(`@${spec.name} is applied twice to step '${String(context.name)}'`);
  // Decorators are applied bottom-up: the one written above goes before the others of its name.
  info.decorators.splice(first, 0, spec);
}

/** Decorators written on a flow class: flow decorators, and step decorators meant for every step. */
export interface ClassDecorators {
  readonly flow: DecoratorSpec[];
  /** Step decorators written on the class: a default for every step (the step's own wins). */
  readonly stepDefaults: DecoratorSpec[];
}

interface OwnClassDecorators extends ClassDecorators {
  readonly parent: OwnClassDecorators | undefined;
}

/** Records a decorator written on the flow class (a `repeatable` one may be written several times). */
export function attachClassDecorator(context: ClassDecoratorContext, spec: DecoratorSpec, role: "flow" | "step-default", repeatable = false): void {
  if (!context.metadata) {
    throw new TypeError("decorator metadata is unavailable: load the flow through metaflow-ts (Symbol.metadata is missing)");
  }
  const meta = context.metadata as Record<symbol, unknown>;
  if (!Object.prototype.hasOwnProperty.call(meta, CLASS_KEY)) {
    // Metadata objects inherit from the parent class's: keep the parent's list apart, so a
    // subclass may write the same decorator again to override it.
    const parent = meta[CLASS_KEY] as OwnClassDecorators | undefined;
    meta[CLASS_KEY] = { flow: [], stepDefaults: [], parent } satisfies OwnClassDecorators;
  }
  const own = meta[CLASS_KEY] as OwnClassDecorators;
  const list = role === "flow" ? own.flow : own.stepDefaults;
  if (!repeatable && list.some((d) => d.name === spec.name)) {
    throw new TypeError(`@${spec.name} is applied twice to class ${String(context.name)}`);
  }
  // Class decorators are applied bottom-up; unshift keeps them in source order.
  list.unshift(spec);
}

function metadataOf(flowClass: abstract new () => unknown): Record<symbol, unknown> | undefined {
  const metaSym = (Symbol as { metadata?: symbol }).metadata ?? Symbol.for("Symbol.metadata");
  return (flowClass as unknown as Record<symbol, Record<symbol, unknown> | undefined>)[metaSym];
}

/** Steps registered on a flow class, in declaration order. */
export function stepsOf(flowClass: abstract new () => unknown): StepInfo[] {
  const reg = metadataOf(flowClass)?.[KEY] as Registry | undefined;
  return reg ? [...reg.values()].filter((s) => s.isStep) : [];
}

/** Decorators written on a flow class (and inherited from its parent classes). */
export function classDecoratorsOf(flowClass: abstract new () => unknown): ClassDecorators {
  const out: ClassDecorators = { flow: [], stepDefaults: [] };
  for (let level = metadataOf(flowClass)?.[CLASS_KEY] as OwnClassDecorators | undefined; level; level = level.parent) {
    // A name written on a subclass replaces the parent's decorators of that name.
    const flowNames = new Set(out.flow.map((o) => o.name));
    const defaultNames = new Set(out.stepDefaults.map((o) => o.name));
    for (const d of level.flow) if (!flowNames.has(d.name)) out.flow.push(d);
    for (const d of level.stepDefaults) if (!defaultNames.has(d.name)) out.stepDefaults.push(d);
  }
  return out;
}

/** The step name of a step method reference such as `this.train`, or undefined. */
export function stepNameOf(fn: unknown): string | undefined {
  if (typeof fn !== "function") return undefined;
  return stepNames.get(fn) ?? undefined;
}
