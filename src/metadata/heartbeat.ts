/**
 * Heartbeats of local runs, as the metadata service keeps them: the process running a run touches
 * `_heartbeat.json` in the run's directory every few seconds, so a reader can tell a run whose
 * runtime died (no end recorded, heartbeat stale or its process gone) from one still running.
 */
import { promises as fs, writeFileSync } from "node:fs";
import * as os from "node:os";
import type { RunEnd } from "./types.js";

/** File name of a run's heartbeat, beside `_run.json`. */
export const HEARTBEAT_FILE = "_heartbeat.json";
/** How often a run's heartbeat is touched, at most. @default 5000 */
const MAX_INTERVAL_MS = 5000;

/** What a heartbeat file holds: who beats, and how often. */
interface Beat {
  readonly pid: number;
  readonly host: string;
  readonly intervalMs: number;
}

/** The heartbeats this process keeps, one timer per run. */
export class Heartbeats {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly intervalMs: number;

  /** @param timeoutMs how old a heartbeat may be before the run counts as dead */
  constructor(readonly timeoutMs: number) {
    this.intervalMs = Math.max(200, Math.min(MAX_INTERVAL_MS, Math.floor(timeoutMs / 3)));
  }

  /** Writes the run's heartbeat file now and touches it every interval until `stop`. */
  start(file: string): void {
    const beat: Beat = { pid: process.pid, host: os.hostname(), intervalMs: this.intervalMs };
    writeFileSync(file, JSON.stringify(beat));
    const timer = setInterval(() => {
      const now = new Date();
      // A missed beat (a busy disk, a removed directory) is covered by the next one.
      fs.utimes(file, now, now).catch(() => undefined);
    }, this.intervalMs);
    // A heartbeat must never keep a finished process alive.
    timer.unref();
    this.timers.set(file, timer);
  }

  /** Stops touching the run's heartbeat (its end is being recorded). */
  stop(file: string): void {
    clearInterval(this.timers.get(file));
    this.timers.delete(file);
  }

  /** Stops every heartbeat of this process. */
  close(): void {
    for (const t of this.timers.values()) clearInterval(t);
    this.timers.clear();
  }

  /**
   * The end a run without one reads as when its heartbeat says its runtime is gone: its process no
   * longer exists on this machine, or the beat is older than the timeout (and three of the
   * writer's intervals). Undefined while it beats, and for runs recorded before heartbeats existed.
   */
  async deadEnd(file: string, run: string): Promise<RunEnd | undefined> {
    let text: string;
    let mtimeMs: number;
    try {
      [text, mtimeMs] = await Promise.all([fs.readFile(file, "utf8"), fs.stat(file).then((s) => s.mtimeMs)]);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    let beat: Partial<Beat> = {};
    try {
      beat = JSON.parse(text) as Partial<Beat>;
    } catch {
      // A torn heartbeat file still has a meaningful modification time.
    }
    const gone = beat.host === os.hostname() && typeof beat.pid === "number" && !processExists(beat.pid);
    const limit = Math.max(this.timeoutMs, 3 * (typeof beat.intervalMs === "number" ? beat.intervalMs : MAX_INTERVAL_MS));
    if (!gone && Date.now() - mtimeMs <= limit) return undefined;
    const since = new Date(mtimeMs).toISOString();
    return {
      status: "failed",
      finishedAt: Math.round(mtimeMs),
      error: {
        name: "HeartbeatTimeout",
        code: "heartbeat-timeout",
        message: `Run ${run} has sent no heartbeat since ${since} and recorded no end: ${gone ? `its runtime (pid ${beat.pid}) is gone` : "the process running it stopped"}`,
      },
    };
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
