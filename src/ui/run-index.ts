/**
 * Run summaries for the runs page, read through the client and kept in memory: a page without a
 * filter reads only its own runs (a flow with 10,000 runs shows its first page after ~50 reads);
 * a filter reads every run once, then serves from memory while stale entries are read again in
 * the background. Finished runs change only by tag edits, so they are re-read rarely.
 */
import { Flow, type Run } from "../client/objects.js";
import type { ClientOptions } from "../client/context.js";
import { ObjectNotFoundError } from "../client/errors.js";

/** What the runs page shows of a run. */
export interface RunSummary {
  readonly flow: string;
  readonly id: string;
  readonly user: string;
  readonly status: "running" | "completed" | "failed";
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
  readonly finishedAt: number | undefined;
  readonly tags: readonly string[];
  readonly systemTags: readonly string[];
  readonly failedStep: string | undefined;
}

/** Filters of the runs page; each is optional. */
export interface RunFilter {
  readonly user?: string;
  readonly tag?: string;
  readonly status?: RunSummary["status"];
}

/** One page of runs. */
export interface RunPage {
  /** Runs that match, in all pages. */
  readonly total: number;
  readonly runs: readonly RunSummary[];
  /** Users seen so far (every user once a filter has been used). */
  readonly users: readonly string[];
}

/** Reads of a finished run older than this are redone in the background. */
const FINISHED_TTL_MS = 30_000;
/** A running run is read again when its summary is older than this. */
const RUNNING_TTL_MS = 1000;
const CONCURRENCY = 32;

interface Entry {
  summary: RunSummary;
  readAt: number;
}

/** Summarises a loaded run. */
export function summarize(run: Run): RunSummary {
  return {
    flow: run.flowName,
    id: run.id,
    user: run.user,
    status: run.status,
    createdAt: run.createdAt.getTime(),
    finishedAt: run.finishedAt?.getTime(),
    tags: run.userTags,
    systemTags: run.systemTags,
    failedStep: run.failedStep,
  };
}

/** Runs `fn` over `items` with at most `limit` at once. */
async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** The cached summaries of every flow's runs. */
export class RunIndex {
  private readonly flows = new Map<string, Map<string, Entry>>();
  private readonly refreshing = new Set<string>();
  private readonly warming = new Map<string, Promise<void>>();
  /** Flows whose background reads failed and were logged; cleared when one succeeds again. */
  private readonly failing = new Set<string>();

  /** `log` hears background reads that fail, once per flow until one succeeds again. */
  constructor(
    private readonly client: ClientOptions,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  /** Runs a read nobody waits for: a failure is logged (once while it lasts), never thrown. */
  private background(flow: string, read: Promise<void>): Promise<void> {
    return read.then(
      () => {
        this.failing.delete(flow);
      },
      (err: unknown) => {
        if (this.failing.has(flow)) return;
        this.failing.add(flow);
        this.log(`UI: reading the runs of ${flow} in the background failed: ${(err as Error)?.message ?? String(err)} (the runs page shows what could be read; each page view tries again)`);
      },
    );
  }

  private entries(flow: string): Map<string, Entry> {
    let m = this.flows.get(flow);
    if (!m) this.flows.set(flow, (m = new Map()));
    return m;
  }

  /** Reads runs into the cache; a run whose record is not written yet is skipped. */
  private async read(flow: string, ids: readonly string[]): Promise<void> {
    const entries = this.entries(flow);
    const handle = new Flow(flow, this.client);
    await pool(ids, CONCURRENCY, async (id) => {
      try {
        entries.set(id, { summary: summarize(await handle.run(id)), readAt: Date.now() });
      } catch (err) {
        if (!(err instanceof ObjectNotFoundError)) throw err;
      }
    });
  }

  private isFresh(e: Entry | undefined, now: number): boolean {
    if (!e) return false;
    return now - e.readAt < (e.summary.status === "running" ? RUNNING_TTL_MS : FINISHED_TTL_MS);
  }

  /** Makes sure the summaries of `ids` are cached: missing and running ones now, stale finished ones in the background. */
  private async ensure(flow: string, ids: readonly string[]): Promise<void> {
    const entries = this.entries(flow);
    const now = Date.now();
    const missing = ids.filter((id) => {
      const e = entries.get(id);
      return !e || (e.summary.status === "running" && !this.isFresh(e, now));
    });
    await this.read(flow, missing);
    const stale = ids.filter((id) => !this.isFresh(entries.get(id), now) && !missing.includes(id));
    if (stale.length && !this.refreshing.has(flow)) {
      this.refreshing.add(flow);
      void this.background(flow, this.read(flow, stale)).finally(() => this.refreshing.delete(flow));
    }
  }

  /**
   * Reads every run of a flow not cached yet, once at a time per flow: started in the background
   * when a flow's first page is shown, so a filter chosen next finds the runs in memory.
   */
  private warm(flow: string, ids: readonly string[]): Promise<void> {
    let pending = this.warming.get(flow);
    if (!pending) {
      const entries = this.entries(flow);
      pending = this.read(flow, ids.filter((id) => !entries.has(id))).finally(() => this.warming.delete(flow));
      this.warming.set(flow, pending);
    }
    return pending;
  }

  /** A page of a flow's runs, newest first, that match `filter`. */
  async page(flow: string, filter: RunFilter, offset: number, limit: number): Promise<RunPage> {
    const handle = new Flow(flow, this.client);
    const ids = await handle.runIds();
    // No runs: the client's own listing says whether the flow exists (and names the flows that do).
    if (ids.length === 0) for await (const _ of handle.runs()) break;
    const entries = this.entries(flow);
    const filtered = filter.user !== undefined || filter.tag !== undefined || filter.status !== undefined;
    if (!filtered) {
      const pageIds = ids.slice(offset, offset + limit);
      await this.ensure(flow, pageIds);
      void this.background(flow, this.warm(flow, ids));
      return { total: ids.length, runs: pageIds.map((id) => entries.get(id)?.summary).filter((s): s is RunSummary => !!s), users: this.users(flow) };
    }
    await this.warm(flow, ids);
    await this.ensure(flow, ids);
    const matching = ids
      .map((id) => entries.get(id)?.summary)
      .filter((s): s is RunSummary => !!s)
      .filter((s) => (filter.user === undefined || s.user === filter.user) && (filter.status === undefined || s.status === filter.status) && (filter.tag === undefined || s.tags.includes(filter.tag) || s.systemTags.includes(filter.tag)));
    return { total: matching.length, runs: matching.slice(offset, offset + limit), users: this.users(flow) };
  }

  /** The newest run of a flow and how many it has (for the flows page). */
  async overview(flow: string): Promise<{ count: number; latest: RunSummary | undefined }> {
    const ids = await new Flow(flow, this.client).runIds();
    // The newest id may be a run whose record is not written yet; look a little further.
    await this.ensure(flow, ids.slice(0, 3));
    const latest = ids.slice(0, 3).map((id) => this.entries(flow).get(id)?.summary).find((s) => s !== undefined);
    return { count: ids.length, latest };
  }

  /** Replaces a cached summary (after a tag edit or a fresh read). */
  update(summary: RunSummary): void {
    this.entries(summary.flow).set(summary.id, { summary, readAt: Date.now() });
  }

  private users(flow: string): string[] {
    return [...new Set([...this.entries(flow).values()].map((e) => e.summary.user))].sort();
  }
}
