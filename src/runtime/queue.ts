/**
 * Tasks waiting to start, one FIFO per launcher kind: a scheduling pass offers each kind's due
 * tasks in order until that kind has no room, so a pass costs what it starts, not the whole queue.
 */

/** Anything queued: it may not start before `notBefore` (a delayed retry). */
export interface Waiting {
  readonly notBefore: number;
}

/** The ready queue. */
export class ReadyQueue<T extends Waiting> {
  private readonly byKind = new Map<string, T[]>();

  /** Adds a task at the end of its kind's line. */
  push(kind: string, task: T): void {
    let q = this.byKind.get(kind);
    if (!q) this.byKind.set(kind, (q = []));
    q.push(task);
  }

  /** Tasks waiting, of every kind. */
  get size(): number {
    let n = 0;
    for (const q of this.byKind.values()) n += q.length;
    return n;
  }

  /** Drops every waiting task. */
  clear(): void {
    for (const q of this.byKind.values()) q.length = 0;
  }

  /**
   * Offers each kind's due tasks, in order, to `start` until it returns false for that kind (no
   * room); started tasks leave the queue. Returns when the earliest task not yet due comes due
   * (Infinity when none waits).
   */
  offer(now: number, start: (kind: string, task: T) => boolean): number {
    let earliest = Infinity;
    for (const [kind, q] of this.byKind) {
      for (let i = 0; i < q.length; ) {
        const task = q[i]!;
        if (task.notBefore > now) {
          earliest = Math.min(earliest, task.notBefore);
          i++;
          continue;
        }
        if (!start(kind, task)) break;
        q.splice(i, 1);
      }
    }
    return earliest;
  }
}
