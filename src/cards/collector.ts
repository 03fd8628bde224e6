/**
 * What a step edits while it runs: `current.card` is a `CardSet`, `current.card.get(id)` one of
 * its `CardCollector`s. Collectors keep the appended components, save live versions at most once
 * per `refreshInterval`, and save the final card when the task ends. Nothing here throws into the
 * step: a render or save error shows in the card and goes to the logger.
 */
import type { CardData } from "./card-type.js";
import { renderCard } from "./render.js";

/** One `@card(...)` of a step, as validated by the decorator. */
export interface CardSpec {
  /** A registered card type: `default`, `blank`, or one of your own. */
  readonly type: string;
  /** Tells several cards of one step apart: `current.card.get(id)`. @default none */
  readonly id?: string;
  /** Passed to the card type. @default {} */
  readonly options?: Readonly<Record<string, unknown>>;
  /** Least time between two live saves, in seconds. @default 1 */
  readonly refreshInterval?: number;
  /** Longest a final render and save may take, in seconds, before it is given up. @default 45 */
  readonly timeout?: number;
}

/** A card version to store: which card (its position among the step's cards), its page, and whether it is final. */
export interface CardSaveRequest {
  readonly index: number;
  readonly spec: CardSpec;
  readonly html: string;
  readonly final: boolean;
}

/** How a collector saves, learns about the task, and reports problems. */
export interface CardCollectorOptions {
  /** Position of this card among the step's cards; part of its storage name. */
  readonly index: number;
  /** Stores a version of the card (the datastore's `CardStore.save` in a task). */
  readonly save: (card: CardSaveRequest) => Promise<void>;
  /** What a live refresh shows about the task (status `running`, no artifacts yet). */
  readonly liveData: () => CardData;
  /** Where problems go (the task's stderr in a task). @default console.error */
  readonly log?: (line: string) => void;
  /** Milliseconds now; tests give their own clock. @default Date.now */
  readonly clock?: () => number;
}

/** One card of the running step: `append`, `extend`, `clear`, `refresh`. */
export class CardCollector {
  /** The card's type. */
  readonly type: string;
  /** The card's id, if it has one. */
  readonly id: string | undefined;
  private items: unknown[] = [];
  private readonly intervalMs: number;
  private lastSaveAt = Number.NEGATIVE_INFINITY;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private saving: Promise<void> | undefined;
  private pending = false;
  private done = false;
  private readonly reported = new Set<string>();

  constructor(
    readonly spec: CardSpec,
    private readonly options: CardCollectorOptions,
  ) {
    this.type = spec.type;
    this.id = spec.id;
    this.intervalMs = Math.max(0, (spec.refreshInterval ?? 1) * 1000);
  }

  /** The components appended so far. */
  get components(): readonly unknown[] {
    return this.items;
  }

  /** Adds a component (a value that is not one shows as text). */
  append(component: unknown): this {
    this.items.push(component);
    return this;
  }

  /** Adds several components. */
  extend(components: Iterable<unknown>): this {
    try {
      for (const c of components) this.items.push(c);
    } catch (err) {
      this.report(`card ${this.label()}: extend() expects an iterable of components: ${(err as Error)?.message ?? String(err)}`);
    }
    return this;
  }

  /** Removes every appended component. */
  clear(): this {
    this.items = [];
    return this;
  }

  /**
   * Saves the card as it is now, so viewers see it while the task runs; calls closer together
   * than `refreshInterval` are merged into one save at the end of the interval.
   */
  refresh(): void {
    if (this.done) return;
    this.pending = true;
    if (this.timer !== undefined) return;
    const wait = this.lastSaveAt + this.intervalMs - this.now();
    if (wait <= 0 && !this.saving) {
      this.saveLive();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.done || !this.pending) return;
      if (this.saving) void this.saving.then(() => this.refresh());
      else this.saveLive();
    }, Math.max(wait, 10));
    this.timer.unref?.();
  }

  /** Waits for a live save in progress. */
  async flush(): Promise<void> {
    await this.saving;
  }

  /** Renders and saves the final card (once); later edits are ignored. Never throws. */
  async finish(data: CardData): Promise<void> {
    if (this.done) return;
    this.done = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.saving;
    const seconds = this.spec.timeout ?? 45;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), seconds * 1000);
      timer.unref?.();
    });
    try {
      const outcome = await Promise.race([this.save(data), timedOut]);
      if (outcome === "timeout") this.report(`card ${this.label()} was not saved within its timeout of ${seconds} s`);
    } finally {
      clearTimeout(timer);
    }
  }

  private saveLive(): void {
    this.pending = false;
    this.lastSaveAt = this.now();
    let data: CardData;
    try {
      data = this.options.liveData();
    } catch (err) {
      this.report(`card ${this.label()}: cannot describe the task: ${(err as Error)?.message ?? String(err)}`);
      return;
    }
    this.saving = this.save(data).finally(() => {
      this.saving = undefined;
    });
  }

  /** Renders and stores one version; reports, never throws. */
  private async save(data: CardData): Promise<void> {
    let html: string;
    try {
      const rendered = renderCard(this.spec, data, this.items);
      for (const p of rendered.problems) this.report(`card ${this.label()}: ${p}`);
      html = rendered.html;
    } catch (err) {
      this.report(`card ${this.label()} could not be rendered: ${(err as Error)?.message ?? String(err)}`);
      return;
    }
    try {
      await this.options.save({ index: this.options.index, spec: this.spec, html, final: data.final });
    } catch (err) {
      this.report(`card ${this.label()} could not be saved: ${(err as Error)?.message ?? String(err)}`);
    }
  }

  /** Logs a problem once per distinct message, so a refresh loop does not flood the logs. */
  private report(line: string): void {
    if (this.reported.has(line)) return;
    this.reported.add(line);
    try {
      (this.options.log ?? ((l: string) => console.error(l)))(line);
    } catch {
      // A logger that throws must not fail the step either.
    }
  }

  private label(): string {
    return this.id === undefined ? `'${this.type}'` : `'${this.id}' (${this.type})`;
  }

  private now(): number {
    return (this.options.clock ?? Date.now)();
  }
}
