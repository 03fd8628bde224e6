/**
 * Which decorators a flow can use: those the library it imports offers (every export made with
 * `stepDecorator` or `flowDecorator` — the built-ins are exported from `src/api.ts`, the one list
 * of them) and those its own module defines. The task side and the parent resolve names the same
 * way, from the library they hand the flow.
 */
import type { DecoratorDefinition } from "./contract.js";

function definitionOf(v: unknown): DecoratorDefinition<any> | undefined {
  const d = typeof v === "function" ? (v as { definition?: unknown }).definition : undefined;
  return typeof d === "object" && d !== null && typeof (d as { name?: unknown }).name === "string" ? (d as DecoratorDefinition<any>) : undefined;
}

const scanned = new WeakMap<object, ReadonlyMap<string, DecoratorDefinition<any>>>();

/** The decorators a library exports, by name (read once per library object). */
export function libraryDefinitions(library: Readonly<Record<string, unknown>>): Map<string, DecoratorDefinition<any>> {
  const known = scanned.get(library);
  if (known) return new Map(known);
  const out = new Map<string, DecoratorDefinition<any>>();
  for (const v of Object.values(library)) {
    const d = definitionOf(v);
    if (d) out.set(d.name, d);
  }
  scanned.set(library, out);
  return new Map(out);
}

/** The library's decorators plus the flow module's own; a flow's decorator may not take a built-in's name. */
export function definitionsFor(library: Readonly<Record<string, unknown>>, own: ReadonlyMap<string, DecoratorDefinition<any>>): Map<string, DecoratorDefinition<any>> {
  const all = libraryDefinitions(library);
  for (const [name, def] of own) {
    const builtin = all.get(name);
    if (builtin && builtin !== def) {
      throw new Error(`a decorator named '${name}' is already built in; give your decorator another name`);
    }
    all.set(name, def);
  }
  return all;
}
