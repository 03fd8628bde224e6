/**
 * Card pages in the datastore (key layout in `card-keys.ts`): the task side saves them, the
 * client lists and reads them. Works on every storage backend (local directory, S3).
 */
import { cardAttemptPrefix, cardFileName, cardsPrefix, parseCardAttemptDir, parseCardFileName, type CardTaskAddress } from "./card-keys.js";
import type { StorageBackend } from "./types.js";

export type { CardTaskAddress } from "./card-keys.js";

/** A card to save: its position among the step's cards, its type and id, and its page. */
export interface CardToSave {
  readonly index: number;
  readonly type: string;
  readonly id?: string;
  readonly html: string;
  /** False for a live version written while the task runs. */
  readonly final: boolean;
}

/** A stored card as listed: the newest version of it (the final page, else the latest live one). */
export interface StoredCard {
  readonly index: number;
  readonly type: string;
  readonly id: string | undefined;
  readonly attempt: number;
  /** True while only a live version exists (the task is running, or died before its final save). */
  readonly live: boolean;
  /** The storage key of that version. */
  readonly key: string;
}

/** Saves, lists and reads the card pages of tasks. */
export class CardStore {
  constructor(readonly storage: StorageBackend) {}

  /**
   * Stores a version of a card for one attempt of a task. A final version replaces the live one,
   * which is then removed.
   */
  async save(task: CardTaskAddress, attempt: number, card: CardToSave): Promise<string> {
    const base = { index: card.index, type: card.type, ...(card.id === undefined ? {} : { id: card.id }) };
    const prefix = cardAttemptPrefix(task, attempt);
    const key = `${prefix}/${cardFileName({ ...base, live: !card.final })}`;
    await this.storage.put(key, Buffer.from(card.html, "utf8"));
    if (card.final) await this.storage.delete(`${prefix}/${cardFileName({ ...base, live: true })}`);
    return key;
  }

  /**
   * The task's cards, newest attempt first, each card once (its final version, else its live
   * one), ordered by position within an attempt.
   */
  async list(task: CardTaskAddress): Promise<StoredCard[]> {
    const attempts = (await this.storage.list(cardsPrefix(task)))
      .map(parseCardAttemptDir)
      .filter((n): n is number => n !== undefined)
      .sort((a, b) => b - a);
    const out: StoredCard[] = [];
    for (const attempt of attempts) {
      const prefix = cardAttemptPrefix(task, attempt);
      const byName = new Map<string, StoredCard>();
      for (const name of await this.storage.list(prefix)) {
        const parsed = parseCardFileName(name);
        if (!parsed) continue;
        const slot = `${parsed.index}.${parsed.type}.${parsed.id ?? ""}`;
        const known = byName.get(slot);
        if (known && !known.live) continue;
        byName.set(slot, { index: parsed.index, type: parsed.type, id: parsed.id, attempt, live: parsed.live, key: `${prefix}/${name}` });
      }
      out.push(...[...byName.values()].sort((a, b) => a.index - b.index));
    }
    return out;
  }

  /**
   * The page of a listed card. A live version may have just been replaced by the final one; then
   * the final page is read instead.
   */
  async read(card: StoredCard): Promise<string | undefined> {
    const bytes = await this.storage.get(card.key);
    if (bytes) return bytes.toString("utf8");
    if (!card.live) return undefined;
    return (await this.storage.get(card.key.replace(/\.live\.html$/, ".final.html")))?.toString("utf8");
  }
}
