/**
 * A run as the run page shows it: its summary, parameters, the flow's graph with each step's
 * status, and every task with its times (the timeline). Finished tasks are cached: a completed
 * task never changes, so polling a running 1,000-task foreach reads only the tasks still running.
 */
import type { Run, Task } from "../client/objects.js";
import type { FlowGraph } from "../graph/types.js";
import { summarize, type RunSummary } from "./run-index.js";

/** One task on the timeline. */
export interface TaskSummary {
  readonly step: string;
  readonly id: string;
  readonly status: "running" | "completed" | "failed";
  readonly startedAt: number;
  readonly finishedAt: number | undefined;
  readonly attempts: number;
  /** Foreach position, when the task is one of a foreach. */
  readonly index: number | undefined;
}

/** Status of a step: from its tasks, or `pending` before any has started. */
export type StepStatus = "pending" | "running" | "completed" | "failed";

/** One step of the graph. */
export interface StepView {
  readonly name: string;
  readonly kind: string;
  readonly out: readonly string[];
  readonly doc: string;
  readonly status: StepStatus;
  readonly counts: { readonly total: number; readonly running: number; readonly completed: number; readonly failed: number };
}

/** Everything the run page shows. */
export interface RunView {
  readonly run: RunSummary;
  readonly parameters: Readonly<Record<string, unknown>>;
  readonly flowFile: string;
  readonly exception: { readonly name: string; readonly message: string } | undefined;
  /** Steps in source order; empty when the flow's source could not be read. */
  readonly steps: readonly StepView[];
  readonly graphProblem: string | undefined;
  readonly tasks: readonly TaskSummary[];
}

function taskSummary(t: Task): TaskSummary {
  return {
    step: t.step.name,
    id: t.id,
    status: t.status,
    startedAt: t.startedAt.getTime(),
    finishedAt: t.finishedAt?.getTime(),
    attempts: t.attempts.length,
    index: t.index,
  };
}

function stepStatus(tasks: readonly TaskSummary[], runFinished: boolean): StepStatus {
  if (tasks.length === 0) return "pending";
  if (tasks.some((t) => t.status === "running")) return "running";
  // A failed task may still be retried while the run goes on.
  if (tasks.some((t) => t.status === "failed")) return runFinished ? "failed" : "running";
  return "completed";
}

/** Builds run views, caching graphs (per run) and completed tasks. */
export class RunViews {
  private readonly graphs = new Map<string, FlowGraph | string>();
  private readonly doneTasks = new Map<string, TaskSummary>();

  private async graph(run: Run): Promise<FlowGraph | string> {
    const known = this.graphs.get(run.pathspec);
    if (known) return known;
    let g: FlowGraph | string;
    try {
      g = await (await run.code()).graph();
    } catch (err) {
      g = `The flow's graph cannot be read from the run's stored code: ${(err as Error).message}`;
    }
    this.graphs.set(run.pathspec, g);
    return g;
  }

  private async tasks(run: Run): Promise<TaskSummary[]> {
    const out: TaskSummary[] = [];
    for await (const step of run.steps()) {
      const cached = step.taskIdList.map((id) => this.doneTasks.get(`${step.pathspec}/${id}`));
      if (cached.every((c) => c !== undefined)) {
        out.push(...(cached as TaskSummary[]));
        continue;
      }
      for await (const t of step.tasks()) {
        const s = taskSummary(t);
        if (s.status === "completed") this.doneTasks.set(t.pathspec, s);
        out.push(s);
      }
    }
    return out;
  }

  /** The run page's data. */
  async view(run: Run): Promise<RunView> {
    const [graph, tasks] = await Promise.all([this.graph(run), this.tasks(run)]);
    const byStep = new Map<string, TaskSummary[]>();
    for (const t of tasks) (byStep.get(t.step) ?? byStep.set(t.step, []).get(t.step)!).push(t);
    const steps =
      typeof graph === "string"
        ? []
        : graph.steps.map((s): StepView => {
            const ts = byStep.get(s.name) ?? [];
            return {
              name: s.name,
              kind: s.kind,
              out: s.out,
              doc: s.doc,
              status: stepStatus(ts, run.finished),
              counts: {
                total: ts.length,
                running: ts.filter((t) => t.status === "running").length,
                completed: ts.filter((t) => t.status === "completed").length,
                failed: ts.filter((t) => t.status === "failed").length,
              },
            };
          });
    return {
      run: summarize(run),
      parameters: run.parameters,
      flowFile: run.flowFile,
      exception: run.exception && { name: run.exception.name, message: run.exception.message },
      steps,
      graphProblem: typeof graph === "string" ? graph : undefined,
      tasks: tasks.sort((a, b) => a.startedAt - b.startedAt),
    };
  }
}
