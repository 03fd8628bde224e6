/**
 * Which card types there are: the built-in ones (listed in `builtins.ts`) and those a flow adds
 * with `registerCardType`, by name.
 */
import { BUILTIN_CARD_TYPES } from "./builtins.js";
import { defineCardType, type CardTypeDefinition } from "./card-type.js";

export type { CardTaskInfo, CardArtifactInfo, CardData, CardTypeDefinition } from "./card-type.js";

const builtins = new Map(BUILTIN_CARD_TYPES.map((t) => [t.type, t]));
const added = new Map<string, CardTypeDefinition>();

/**
 * Adds a card type under its name (a flow module may register its type again each time a task
 * loads it; the newest definition counts). The built-in types cannot be replaced.
 * @example registerCardType({ type: "summary", help: "the score", render: (data) => [new Markdown(`# ${data.task.step}`)] });
 */
export function registerCardType(def: CardTypeDefinition): CardTypeDefinition {
  defineCardType(def);
  if (builtins.has(def.type)) throw new TypeError(`Card type '${def.type}' is built in; give your card type another name`);
  added.set(def.type, def);
  return def;
}

/** The card type named `type`, or undefined. */
export function findCardType(type: string): CardTypeDefinition | undefined {
  return builtins.get(type) ?? added.get(type);
}

/** Names of every card type, sorted. */
export function cardTypeNames(): string[] {
  return [...builtins.keys(), ...added.keys()].sort();
}

/**
 * Throws when no card type is named `type`. Checked when a run is planned: the flow module has
 * been loaded by then, so its own `registerCardType` calls count.
 */
export function checkCardType(type: string): void {
  if (findCardType(type)) return;
  throw new Error(
    `there is no card type '${type}'; the types are: ${cardTypeNames().join(", ")}. ` +
      `A type of your own is added with registerCardType({ type: "${type}", ... }) at the top level of the flow file or a module it imports`,
  );
}
