/**
 * The card-type contract: a type turns what is known about a task (and the components the step
 * appended) into components. Each type is one file that registers here; `builtins.ts` lists them.
 */
import type { LayoutStep } from "../graph/layout.js";

/** The task a card describes. */
export interface CardTaskInfo {
  readonly flow: string;
  readonly runId: string;
  readonly step: string;
  readonly taskId: string;
  readonly attempt: number;
  /** `running` while the step runs (live refreshes), then how it ended. */
  readonly status: "running" | "completed" | "failed";
  readonly startedAt?: Date;
  readonly finishedAt?: Date;
  readonly user?: string;
}

/** An artifact as a card shows it; `value` is given when the card may preview it. */
export interface CardArtifactInfo {
  readonly name: string;
  readonly type: string;
  /** Size of the stored value in bytes, when known. */
  readonly size?: number;
  readonly value?: unknown;
}

/** Everything a card type may draw from. */
export interface CardData {
  readonly task: CardTaskInfo;
  /** Parameter values of the run. */
  readonly parameters?: Readonly<Record<string, unknown>>;
  /** The task's artifacts (at the end of the task; none during live refreshes). */
  readonly artifacts?: readonly CardArtifactInfo[];
  /** The flow's steps and transitions, to draw the graph. */
  readonly graph?: readonly (LayoutStep & { readonly doc?: string })[];
  /** True for the card saved when the task ends, false for a live refresh. */
  readonly final: boolean;
}

/** What a card-type file registers. */
export interface CardTypeDefinition {
  /** The name given as `@card({ type })`. */
  readonly type: string;
  /** One line for docs. */
  readonly help: string;
  /**
   * The card's content: usually built-in sections followed by the step's own `components`.
   * `options` are the `@card({ options })` given in code.
   */
  render(data: CardData, components: readonly unknown[], options: Readonly<Record<string, unknown>>): readonly unknown[];
}

const types = new Map<string, CardTypeDefinition>();

/** Registers a card type under its name. */
export function registerCardType(def: CardTypeDefinition): CardTypeDefinition {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(def.type)) throw new TypeError(`A card type name is 1-64 letters, digits, _ or -, got ${JSON.stringify(def.type)}`);
  types.set(def.type, def);
  return def;
}

/** The card type registered under `type`, or undefined. */
export function findCardType(type: string): CardTypeDefinition | undefined {
  return types.get(type);
}

/** Names of every registered card type, sorted. */
export function cardTypeNames(): string[] {
  return [...types.keys()].sort();
}
