/**
 * Progress on a terminal: a step with a large foreach gets one live status line
 * (`train: 312/1,000 done, 16 running, 2 failed, eta 1m40s`) at the bottom of the terminal
 * instead of a line per task start and end. The per-task lines still go to the task logs, failures
 * are still printed, and when the output is not a terminal nothing here is used: every line is
 * printed as before.
 *
 * `RunProgress` counts (pure, no I/O); `formatProgress` renders a line; `LiveConsole` draws the
 * lines below the scrolling output of a terminal.
 */

/** A step with more tasks than this gets a status line instead of per-task lines. */
export const PROGRESS_THRESHOLD = 50;

/** What the scheduler tells about the tasks of a run. */
export interface TaskProgress {
  /** A new task of `step` is queued (not a retry). */
  queued(step: string): void;
  /** An attempt of a task of `step` started. */
  started(step: string): void;
  /** An attempt ended: successfully, or failed (it may be retried). */
  ended(step: string, ok: boolean): void;
  /** A task was copied from the origin run by resume. */
  cloned(step: string): void;
  /** True when the per-task lines of `step` stay off the console. */
  quiet(step: string): boolean;
}

/** Counts of one step's tasks. */
export interface StepCounts {
  /** Tasks queued so far (a nested foreach adds more as its parents finish). */
  readonly total: number;
  readonly done: number;
  readonly running: number;
  /** Failed attempts. */
  readonly failed: number;
  /** When its first attempt started (ms since the epoch). */
  readonly startedAt: number | undefined;
}

const count = (n: number): string => n.toLocaleString("en-US");

/** A duration for people: `42s`, `1m40s`, `2h05m`. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** `train: 312/1,000 done, 16 running, 2 failed, eta 1m40s` (parts that are zero or unknown are left out). */
export function formatProgress(step: string, c: StepCounts, now: number): string {
  const parts = [`${step}: ${count(c.done)}/${count(c.total)} done`];
  if (c.running > 0) parts.push(`${count(c.running)} running`);
  if (c.failed > 0) parts.push(`${count(c.failed)} failed`);
  const left = c.total - c.done;
  if (c.startedAt !== undefined && c.done > 0 && left > 0) parts.push(`eta ${formatDuration(((now - c.startedAt) / c.done) * left)}`);
  return parts.join(", ");
}

/** The final line of a step that had a status line: `train: 1,000/1,000 done, 2 failed in 12s`. */
export function formatStepDone(step: string, c: StepCounts, now: number): string {
  const failed = c.failed > 0 ? `, ${count(c.failed)} failed` : "";
  const took = c.startedAt === undefined ? "" : ` in ${formatDuration(now - c.startedAt)}`;
  return `${step}: ${count(c.done)}/${count(c.total)} done${failed}${took}`;
}

interface Counts {
  total: number;
  done: number;
  running: number;
  failed: number;
  startedAt: number | undefined;
  /** The final line was printed (until more tasks are queued). */
  reported: boolean;
}

/** Counts the tasks of each step of a run and decides which steps are shown by a status line. */
export class RunProgress implements TaskProgress {
  private readonly steps = new Map<string, Counts>();

  constructor(
    private readonly threshold = PROGRESS_THRESHOLD,
    private readonly clock: () => number = Date.now,
  ) {}

  private of(step: string): Counts {
    let c = this.steps.get(step);
    if (!c) {
      c = { total: 0, done: 0, running: 0, failed: 0, startedAt: undefined, reported: false };
      this.steps.set(step, c);
    }
    return c;
  }

  queued(step: string): void {
    const c = this.of(step);
    c.total += 1;
    c.reported = false;
  }

  started(step: string): void {
    const c = this.of(step);
    c.running += 1;
    c.startedAt ??= this.clock();
  }

  ended(step: string, ok: boolean): void {
    const c = this.of(step);
    c.running = Math.max(0, c.running - 1);
    if (ok) c.done += 1;
    else c.failed += 1;
  }

  cloned(step: string): void {
    this.of(step).done += 1;
  }

  quiet(step: string): boolean {
    return (this.steps.get(step)?.total ?? 0) > this.threshold;
  }

  /** The status lines of the large steps under way. */
  lines(): string[] {
    const now = this.clock();
    return [...this.steps]
      .filter(([step, c]) => this.quiet(step) && !c.reported && c.startedAt !== undefined)
      .map(([step, c]) => formatProgress(step, c, now));
  }

  /**
   * Final lines of large steps that have just finished every queued task (each reported once);
   * with `all`, of every large step not reported yet (the run ended or stopped).
   */
  finished(all = false): string[] {
    const now = this.clock();
    const out: string[] = [];
    for (const [step, c] of this.steps) {
      if (!this.quiet(step) || c.reported || c.startedAt === undefined) continue;
      if (!all && (c.running > 0 || c.done < c.total)) continue;
      c.reported = true;
      out.push(formatStepDone(step, c, now));
    }
    return out;
  }
}

/** A terminal stream as `LiveConsole` uses it. */
export interface TerminalStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

const CLEAR_LINE = "\r\x1b[2K";
const UP = "\x1b[1A";

/**
 * Console output with live status lines at the bottom of a terminal: each printed line first
 * clears the status lines, then they are drawn again below it. Status lines are cut to the
 * terminal's width so they never wrap (which would break the redraw).
 */
export class LiveConsole {
  /** The counts the scheduler updates; give it to the scheduler as its `progress`. */
  readonly progress: TaskProgress;
  private shown = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(
    private readonly stdout: TerminalStream,
    private readonly stderr: TerminalStream,
    private readonly counts: RunProgress = new RunProgress(),
    private readonly redrawMs = 100,
  ) {
    const redraw = () => this.schedule();
    // Every event may change a status line; redraws are batched.
    this.progress = {
      queued: (step) => (counts.queued(step), redraw()),
      started: (step) => (counts.started(step), redraw()),
      ended: (step, ok) => (counts.ended(step, ok), redraw()),
      cloned: (step) => (counts.cloned(step), redraw()),
      quiet: (step) => counts.quiet(step),
    };
  }

  /** Prints one line above the status lines. */
  write(stream: "stdout" | "stderr", line: string): void {
    const target = stream === "stdout" ? this.stdout : this.stderr;
    // A stream that is not the terminal (stderr to a file) does not disturb the status lines.
    const onTerminal = target === this.stdout || target.isTTY === true;
    if (onTerminal) {
      this.clear();
      // A step that just finished reports before the lines that follow it (the next step's).
      this.printFinished();
    }
    target.write(`${line}\n`);
    if (onTerminal) this.draw();
  }

  /** Prints the final lines of finished steps and removes the status lines; later lines print plainly. */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.clear();
    if (!this.closed) for (const line of this.counts.finished(true)) this.stdout.write(`${line}\n`);
    this.closed = true;
  }

  private schedule(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.clear();
      this.draw();
    }, this.redrawMs);
    this.timer.unref?.();
  }

  private clear(): void {
    if (this.shown === 0) return;
    this.stdout.write(CLEAR_LINE + (UP + CLEAR_LINE).repeat(this.shown - 1));
    this.shown = 0;
  }

  private printFinished(): void {
    if (this.closed) return;
    for (const line of this.counts.finished()) this.stdout.write(`${line}\n`);
  }

  private draw(): void {
    if (this.closed) return;
    this.printFinished();
    const width = Math.max(20, (this.stdout.columns || 80) - 1);
    const lines = this.counts.lines().map((l) => (l.length > width ? `${l.slice(0, width - 1)}…` : l));
    if (lines.length === 0) return;
    this.stdout.write(lines.join("\n"));
    this.shown = lines.length;
  }
}
