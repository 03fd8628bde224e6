/**
 * The card-type contract: a type turns what is known about a task (and the components the step
 * appended) into components. Each type is one file that defines itself with `defineCardType`;
 * the built-in ones are listed in `builtins.ts`, a user's own are added with `registerCardType`.
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

const TYPE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Checks a card type's definition (its name is what `@card({ type })` gives) and returns it. */
export function defineCardType(def: CardTypeDefinition): CardTypeDefinition {
  if (typeof def?.type !== "string" || !TYPE_NAME.test(def.type)) {
    throw new TypeError(`A card type name is 1-64 letters, digits, _ or -, got ${JSON.stringify(def?.type)}`);
  }
  if (typeof def.render !== "function") throw new TypeError(`Card type '${def.type}': render must be a function, got ${typeof def.render}`);
  return def;
}
