/**
 * Where cards live in the datastore, beside each task's logs:
 *
 *   flows/<Flow>/<run>/<step>/<task>/cards/attempt-<n>/<index>.<type>[.<id>].final.html
 *   flows/<Flow>/<run>/<step>/<task>/cards/attempt-<n>/<index>.<type>[.<id>].live.html
 *
 * `index` is the card's position among the step's `@card`s. A live card is overwritten by each
 * refresh (every write is atomic, so readers see a whole page) and removed once the final one
 * is written; readers take the final page when there is one, else the newest live one.
 */

/** The task a card belongs to. */
export interface CardTaskAddress {
  readonly flow: string;
  readonly runId: string;
  readonly step: string;
  readonly taskId: string;
}

/** What a card's file name says about it. */
export interface CardFileName {
  readonly index: number;
  readonly type: string;
  readonly id?: string;
  readonly live: boolean;
}

const FILE = /^(\d{1,6})\.([A-Za-z0-9_-]{1,64})(?:\.([A-Za-z0-9_]{1,64}))?\.(final|live)\.html$/;
const ATTEMPT_DIR = /^attempt-(\d{1,4})$/;

/** The prefix under which a task's cards are stored. */
export function cardsPrefix(t: CardTaskAddress): string {
  return `flows/${t.flow}/${t.runId}/${t.step}/${t.taskId}/cards`;
}

/** The prefix of one attempt's cards. */
export function cardAttemptPrefix(t: CardTaskAddress, attempt: number): string {
  return `${cardsPrefix(t)}/attempt-${attempt}`;
}

/** The file name of a card; throws for a type or id that could not be read back. */
export function cardFileName(c: CardFileName): string {
  const name = `${c.index}.${c.type}${c.id === undefined ? "" : `.${c.id}`}.${c.live ? "live" : "final"}.html`;
  if (!FILE.test(name)) throw new TypeError(`Card ${JSON.stringify(c)} cannot be stored: the type is letters, digits, _ or -, the id letters, digits or _`);
  return name;
}

/** Reads a card file name back; undefined for anything else in the directory. */
export function parseCardFileName(name: string): CardFileName | undefined {
  const m = FILE.exec(name);
  if (!m) return undefined;
  return { index: Number(m[1]), type: m[2]!, ...(m[3] === undefined ? {} : { id: m[3] }), live: m[4] === "live" };
}

/** The attempt number of an `attempt-<n>` directory name, or undefined. */
export function parseCardAttemptDir(name: string): number | undefined {
  const m = ATTEMPT_DIR.exec(name.replace(/\/$/, ""));
  return m ? Number(m[1]) : undefined;
}
