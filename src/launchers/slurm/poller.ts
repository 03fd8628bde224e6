/**
 * Follows many jobs with one `squeue` call per interval, whatever their number: each `follow()`
 * resolves when its job ends (or is found stuck PENDING), with the job's last state and the error
 * that explains a failure.
 */
import { SlurmJobLostError, SlurmStuckPendingError, type SlurmJobError } from "./errors.js";
import { blockedReason, jobError, type JobContext } from "./outcome.js";
import { pollStates, type JobState } from "./states.js";
import type { SlurmCli } from "./cli.js";
import type { SlurmSettings } from "../../config/index.js";

/** Options of a `SlurmPoller`. */
export interface PollerOptions {
  /** Milliseconds between two queries. @default 2000 */
  readonly intervalMs?: number;
  /** How long a job may stay PENDING for a reason only a change can clear before it fails. @default 60000 */
  readonly stuckAfterMs?: number;
  /** How long a job may be unknown to Slurm (purged, no accounting) before it counts as lost. @default 30000 */
  readonly lostAfterMs?: number;
  /** How long queries may keep failing (slurmctld restarting) before every follower fails. @default 300000 */
  readonly giveUpAfterMs?: number;
  /** Told about each failed query that is retried. @default ignore */
  readonly onQueryError?: (err: Error) => void;
}

/** Poller options from the `METAFLOW_SLURM_POLL_INTERVAL` and `METAFLOW_SLURM_STUCK_TIMEOUT` settings. */
export function pollerOptions(settings: SlurmSettings): PollerOptions {
  return {
    intervalMs: settings.pollIntervalSeconds.value * 1000,
    stuckAfterMs: settings.stuckTimeoutSeconds.value * 1000,
  };
}

/** How a followed job ended: `error` is undefined when it succeeded. */
export interface JobOutcome {
  readonly id: string;
  /** The last state seen; undefined when Slurm never reported the job. */
  readonly state: JobState | undefined;
  /** Why it failed: its end state, stuck PENDING, or lost. A stuck job is still queued: cancel it. */
  readonly error: SlurmJobError | undefined;
}

/** Options of one `follow()`. */
export interface FollowOptions extends JobContext {
  /** Called with each new state (a change of state or reason). */
  readonly onUpdate?: (state: JobState) => void;
}

interface Watch {
  readonly id: string;
  readonly options: FollowOptions;
  readonly resolve: (o: JobOutcome) => void;
  readonly reject: (e: Error) => void;
  readonly since: number;
  last?: JobState;
  blockedSince?: number;
  missingSince?: number;
}

/** One poller serves a whole run: follow each job or array element; queries are batched. */
export class SlurmPoller {
  private readonly watches = new Map<string, Watch[]>();
  private readonly intervalMs: number;
  private readonly stuckAfterMs: number;
  private readonly lostAfterMs: number;
  private readonly giveUpAfterMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private failingSince: number | undefined;
  /** Number of `squeue` rounds so far (for tests and benchmarks that check batching). */
  queries = 0;

  constructor(
    private readonly cli: SlurmCli,
    private readonly options: PollerOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 2000;
    this.stuckAfterMs = options.stuckAfterMs ?? 60_000;
    this.lostAfterMs = options.lostAfterMs ?? 30_000;
    this.giveUpAfterMs = options.giveUpAfterMs ?? 300_000;
  }

  /** Follows a job (`1234`) or an array element (`1234_7`) until it ends. */
  follow(id: string, options: FollowOptions = {}): Promise<JobOutcome> {
    return new Promise((resolve, reject) => {
      const list = this.watches.get(id) ?? [];
      list.push({ id, options, resolve, reject, since: Date.now() });
      this.watches.set(id, list);
      this.schedule();
    });
  }

  /** Stops polling; followers still waiting are rejected with `reason`. */
  close(reason: Error = new Error("the Slurm poller was closed")): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const list of this.watches.values()) for (const w of list) w.reject(reason);
    this.watches.clear();
  }

  /** Number of jobs being followed. */
  get size(): number {
    return this.watches.size;
  }

  private schedule(): void {
    if (this.timer || this.running || this.watches.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick();
    }, this.intervalMs);
  }

  private async tick(): Promise<void> {
    this.running = true;
    try {
      const ids = [...this.watches.keys()];
      let states: Map<string, JobState>;
      try {
        this.queries++;
        states = await pollStates(this.cli, ids);
        this.failingSince = undefined;
      } catch (err) {
        this.queryFailed(err as Error);
        return;
      }
      const now = Date.now();
      for (const id of ids) this.update(id, states.get(id), now);
    } finally {
      this.running = false;
      this.schedule();
    }
  }

  private queryFailed(err: Error): void {
    const now = Date.now();
    this.failingSince ??= now;
    if (now - this.failingSince < this.giveUpAfterMs) {
      this.options.onQueryError?.(err);
      return;
    }
    const all = [...this.watches.values()].flat();
    this.watches.clear();
    for (const w of all) w.reject(err);
  }

  private update(id: string, state: JobState | undefined, now: number): void {
    const waiting: Watch[] = [];
    for (const w of this.watches.get(id) ?? []) {
      const outcome = this.step(w, state, now);
      if (outcome === undefined) waiting.push(w);
      else w.resolve(outcome);
    }
    if (waiting.length === 0) this.watches.delete(id);
    else this.watches.set(id, waiting);
  }

  /** Advances one watch; returns its outcome once it is decided. */
  private step(w: Watch, s: JobState | undefined, now: number): JobOutcome | undefined {
    if (s === undefined) {
      w.missingSince ??= now;
      if (now - w.missingSince < this.lostAfterMs) return undefined;
      return { id: w.id, state: w.last, error: new SlurmJobLostError(w.id) };
    }
    w.missingSince = undefined;
    if (w.last?.state !== s.state || w.last.reason !== s.reason) w.options.onUpdate?.(s);
    w.last = s;
    if (s.phase === "finished") return { id: w.id, state: s, error: jobError(s, w.options) };
    const blocked = blockedReason(s);
    if (blocked === undefined) {
      w.blockedSince = undefined;
      return undefined;
    }
    w.blockedSince ??= now;
    if (now - w.blockedSince < this.stuckAfterMs) return undefined;
    const waited = (now - w.since) / 1000;
    return {
      id: w.id,
      state: s,
      error: new SlurmStuckPendingError(w.id, s.reason ?? "", blocked, waited),
    };
  }
}
