/**
 * Routing, as pure functions of data: which steps a finished task leads to (with the split
 * frames each new task inherits), and the join barrier that waits for every branch of a split.
 */
import type { RecordedTransition } from "../flow/flowspec.js";
import type { StepNode } from "../graph/types.js";
import type { SplitFrame, TakenTransition } from "../metadata/types.js";
import type { ParentTask } from "../task/protocol.js";

/** A finished task as routing sees it. */
export interface FinishedTask {
  readonly step: string;
  readonly taskId: string;
  readonly frames: readonly SplitFrame[];
}

/** One step a finished task leads to, and the frames the new task runs inside. */
export interface Successor {
  readonly step: string;
  readonly frames: readonly SplitFrame[];
}

/** The steps a task's transition leads to: one per branch and one per foreach element. */
export function successors(task: FinishedTask, t: TakenTransition): Successor[] {
  switch (t.kind) {
    case "end":
      return [];
    case "linear":
    case "switch":
      return [{ step: t.to, frames: task.frames }];
    case "branch":
      return t.to.map((step, index) => ({
        step,
        frames: [...task.frames, { kind: "branch", step: task.step, taskId: task.taskId, index, count: t.to.length }],
      }));
    case "foreach":
      return Array.from({ length: t.count }, (_, index) => ({
        step: t.to,
        frames: [...task.frames, { kind: "foreach", step: task.step, taskId: task.taskId, index, count: t.count, items: t.items }],
      }));
  }
}

/** A join whose every input has arrived: its parents in split order, and the frames it runs in. */
export interface ReadyJoin {
  readonly step: string;
  readonly parents: readonly ParentTask[];
  readonly frames: readonly SplitFrame[];
}

/** Collects the tasks that arrive at joins; a join is ready when every branch of its split has. */
export class JoinBarrier {
  private readonly pending = new Map<string, { arrived: Array<ParentTask | undefined>; count: number }>();

  /** Records `parent` arriving at join `step` inside `frames`; returns the join once it is complete. */
  arrive(step: string, parent: ParentTask, frames: readonly SplitFrame[]): ReadyJoin | undefined {
    const top = frames[frames.length - 1];
    if (!top) throw new Error(`internal: join ${step} reached outside a split`);
    const outer = frames.slice(0, -1);
    const key = `${step}|${outer.map((f) => `${f.taskId}.${f.index}`).join("/")}|${top.taskId}`;
    let entry = this.pending.get(key);
    if (!entry) {
      entry = { arrived: new Array<ParentTask | undefined>(top.count), count: 0 };
      this.pending.set(key, entry);
    }
    if (entry.arrived[top.index] === undefined) entry.count += 1;
    entry.arrived[top.index] = { ...parent, frames };
    if (entry.count < top.count) return undefined;
    this.pending.delete(key);
    return { step, parents: entry.arrived as ParentTask[], frames: outer };
  }

  /** How many joins are still waiting for inputs. */
  get waiting(): number {
    return this.pending.size;
  }
}

/** The transition a step is written with: where a task that recovered from a failure goes. */
export function staticTransition(node: StepNode): RecordedTransition | undefined {
  const n = node.next;
  switch (n.kind) {
    case "linear":
      return { kind: "linear", to: n.to };
    case "branch":
      return { kind: "branch", to: [...n.to] };
    case "foreach":
      return { kind: "foreach", to: n.to, foreach: n.foreach };
    case "switch":
      return { kind: "switch", cases: { ...n.cases }, condition: n.condition };
    case "end":
      return undefined;
  }
}
