/** `current.card`: the cards of the running step, and the one it edits by default. */
import { CardCollector, type CardCollectorOptions, type CardSpec } from "./collector.js";
import type { CardData } from "./card-type.js";

/** What `createCardSet` needs besides the specs; see `CardCollectorOptions`. */
export type CardSetOptions = Omit<CardCollectorOptions, "index">;

/**
 * The step's cards. `append`, `extend`, `clear` and `refresh` act on the step's only editable
 * card: its only card, or else its only card without an id; `get(id)` picks one by id. A card
 * that does not exist is reported once and edits to it are dropped: a typo never fails the step.
 * @example current.card.get("report").append(new Markdown("# Training"));
 */
export class CardSet {
  private readonly warned = new Set<string>();

  private readonly list: CardCollector[];

  constructor(
    /** The step's cards so far, in the order of its `@card` decorators. */
    cards: readonly CardCollector[],
    private readonly log: (line: string) => void = (l) => console.error(l),
  ) {
    this.list = [...cards];
  }

  /** Every card of the step, in the order of its `@card` decorators. */
  get cards(): readonly CardCollector[] {
    return this.list;
  }

  /**
   * Adds a card saving through `options` (its index is its position): each `@card` of a step,
   * whose hooks run one inside the other, adds its own card to the one `current.card`.
   */
  add(spec: CardSpec, options: CardSetOptions): CardCollector {
    const collector = new CardCollector(spec, { ...options, index: this.list.length });
    this.list.push(collector);
    return collector;
  }

  /** The card with this id; an unknown id gives a card that keeps nothing (and a warning). */
  get(id: string): CardCollector {
    const found = this.cards.find((c) => c.id === id);
    if (found) return found;
    const ids = this.cards.map((c) => c.id).filter((x): x is string => x !== undefined);
    this.warn(
      `get:${id}`,
      `current.card.get(${JSON.stringify(id)}): the step has no card with that id${ids.length ? `; its card ids are: ${ids.join(", ")}` : this.cards.length ? " (its cards have no id)" : "; add @card({ id: ... }) to the step"}`,
    );
    return detached({ type: "blank", id });
  }

  /** Ids of the step's cards that have one. */
  get ids(): string[] {
    return this.cards.map((c) => c.id).filter((x): x is string => x !== undefined);
  }

  /** Appends to the editable card. */
  append(component: unknown): this {
    this.editable("append")?.append(component);
    return this;
  }

  /** Appends several components to the editable card. */
  extend(components: Iterable<unknown>): this {
    this.editable("extend")?.extend(components);
    return this;
  }

  /** Clears the editable card. */
  clear(): this {
    this.editable("clear")?.clear();
    return this;
  }

  /** Saves a live version of the editable card (rate-limited by its `refreshInterval`). */
  refresh(): void {
    this.editable("refresh")?.refresh();
  }

  /** Saves every card's final version; for the `@card` decorator at the end of the task. Never throws. */
  async finish(data: CardData): Promise<void> {
    await Promise.all(this.cards.map((c) => c.finish(data)));
  }

  private editable(method: string): CardCollector | undefined {
    if (this.cards.length === 1) return this.cards[0];
    const noId = this.cards.filter((c) => c.id === undefined);
    if (noId.length === 1) return noId[0];
    this.warn(
      "editable",
      this.cards.length === 0
        ? `current.card.${method}(): the step has no @card; add @card() to the step`
        : `current.card.${method}(): the step has ${this.cards.length} cards, so say which: current.card.get(id)${this.ids.length ? ` (ids: ${this.ids.join(", ")})` : ""}`,
    );
    return undefined;
  }

  private warn(key: string, line: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    try {
      this.log(line);
    } catch {
      // A logger that throws must not fail the step.
    }
  }
}

/** A card that keeps its components but saves nothing (what an unknown id gets). */
function detached(spec: CardSpec): CardCollector {
  return new CardCollector(spec, {
    index: -1,
    save: async () => undefined,
    liveData: () => {
      throw new Error("a detached card is never saved");
    },
    log: () => undefined,
  });
}

/**
 * The cards of a step from its `@card` specs, each saving through `options.save` with its
 * position as index: what the `@card` decorator creates at the start of a task.
 */
export function createCardSet(specs: readonly CardSpec[], options: CardSetOptions): CardSet {
  const set = new CardSet([], options.log);
  for (const spec of specs) set.add(spec, options);
  return set;
}
