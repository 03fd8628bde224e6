/** `Card`: one card of a task, as the client reads it (`await task.cards()`). */
import { CardStore, type CardTaskAddress, type StoredCard } from "../datastore/cards.js";
import { DatastoreError, MetaflowError } from "../errors.js";
import type { ClientContext } from "./context.js";

/** A stored card: its id and type; `html()` reads its self-contained page. */
export class Card {
  /** The card's id (`@card({ id })`), or undefined for a card without one. */
  readonly id: string | undefined;
  /** The card type, e.g. `default` or `blank`. */
  readonly type: string;
  /** The attempt of the task that made it. */
  readonly attempt: number;
  /** Position of the card among the step's `@card`s. */
  readonly index: number;
  /** True while only a live version exists (the task is still running). */
  readonly live: boolean;
  /** `Flow/run/step/task` of the task. */
  readonly taskPathspec: string;

  /** Built by `Task.cards()`. */
  constructor(
    private readonly store: CardStore,
    private readonly stored: StoredCard,
    taskPathspec: string,
  ) {
    this.id = stored.id;
    this.type = stored.type;
    this.attempt = stored.attempt;
    this.index = stored.index;
    this.live = stored.live;
    this.taskPathspec = taskPathspec;
  }

  /** A file name for the card: `<step>-<task>-<id or type>.html`. */
  get fileName(): string {
    const [, , step, task] = this.taskPathspec.split("/");
    return `${step}-${task}-${this.id ?? `${this.type}${this.index ? `-${this.index}` : ""}`}.html`;
  }

  /** The card's page: one HTML file that opens offline. */
  async html(): Promise<string> {
    const text = await this.store.read(this.stored);
    if (text === undefined) throw new DatastoreError(`The card ${this.id ?? this.type} of ${this.taskPathspec} is listed but its page ${this.stored.key} is missing`);
    return text;
  }

  /** The card's description as plain data (no page). */
  toJSON(): { id: string | undefined; type: string; attempt: number; index: number; live: boolean } {
    return { id: this.id, type: this.type, attempt: this.attempt, index: this.index, live: this.live };
  }
}

/** The cards of a task's newest attempt that has any, in the order of the step's `@card`s. */
export async function taskCards(ctx: ClientContext, task: CardTaskAddress, pathspec: string): Promise<Card[]> {
  const store = new CardStore(ctx.storage);
  const all = await store.list(task);
  const newest = all[0]?.attempt;
  return all.filter((c) => c.attempt === newest).map((c) => new Card(store, c, pathspec));
}

/** A task has no card matching what was asked for; the message lists the cards it has. */
export class CardNotFoundError extends MetaflowError {
  constructor(
    readonly taskPathspec: string,
    headline: string,
    message: string,
  ) {
    super("card-not-found", headline, message);
  }
}

/** Describes a card for messages: `report (blank)` or `default`. */
export function cardLabel(c: { id: string | undefined; type: string }): string {
  return c.id === undefined ? c.type : `${c.id} (${c.type})`;
}

/**
 * The one card of `cards` with the given id and/or type; throws a `CardNotFoundError` listing
 * the cards when none or several match.
 */
export function pickCard(cards: readonly Card[], pathspec: string, want: { id?: string; type?: string } = {}): Card {
  const matching = cards.filter((c) => (want.id === undefined || c.id === want.id) && (want.type === undefined || c.type === want.type));
  const have = cards.length ? `its cards are: ${cards.map(cardLabel).join(", ")}` : "it has no cards (add @card to the step)";
  if (matching.length === 1) return matching[0]!;
  if (matching.length === 0) {
    const what = [want.id && `id '${want.id}'`, want.type && `type '${want.type}'`].filter(Boolean).join(" and ");
    throw new CardNotFoundError(pathspec, `Task '${pathspec}' has no card${what ? ` with ${what}` : ""}`, `Task '${pathspec}' has no card${what ? ` with ${what}` : ""}; ${have}`);
  }
  throw new CardNotFoundError(pathspec, `Task '${pathspec}' has ${matching.length} cards`, `Task '${pathspec}' has ${matching.length} matching cards; pick one with --id (or --type): ${matching.map(cardLabel).join(", ")}`);
}
