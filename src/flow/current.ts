/** What `current` exposes about the running task. */
export interface CurrentTask {
  readonly flowName: string;
  readonly runId: string;
  readonly stepName: string;
  readonly taskId: string;
  readonly retryCount: number;
  readonly originRunId: string | undefined;
  readonly username: string;
  readonly namespace: string | null;
  readonly tags: readonly string[];
}

let state: CurrentTask | undefined;

/** Sets (or clears) the running task; called by the task executor only. */
export function setCurrentTask(task: CurrentTask | undefined): void {
  state = task ? Object.freeze({ ...task, tags: Object.freeze([...task.tags]) }) : undefined;
}

function need<K extends keyof CurrentTask>(key: K): CurrentTask[K] {
  if (!state) {
    throw new Error(`current.${String(key)} is only available while a step runs (check current.isRunningFlow first)`);
  }
  return state[key];
}

/**
 * The running task's identity: flow, run, step, task, attempt and more.
 * @example console.log(`${current.pathspec} attempt ${current.retryCount}`);
 */
export const current = Object.freeze({
  /** True inside a running step, false elsewhere (scripts, the client). */
  get isRunningFlow(): boolean {
    return state !== undefined;
  },
  get flowName(): string {
    return need("flowName");
  },
  get runId(): string {
    return need("runId");
  },
  get stepName(): string {
    return need("stepName");
  },
  get taskId(): string {
    return need("taskId");
  },
  /** 0 on the first attempt, 1 on the first retry, ... */
  get retryCount(): number {
    return need("retryCount");
  },
  /** The run this one resumed, or undefined. */
  get originRunId(): string | undefined {
    return need("originRunId");
  },
  /** `Flow/run/step/task` of the running task. */
  get pathspec(): string {
    return `${need("flowName")}/${need("runId")}/${need("stepName")}/${need("taskId")}`;
  },
  get username(): string {
    return need("username");
  },
  get namespace(): string | null {
    return need("namespace");
  },
  /** User and system tags of the run. */
  get tags(): readonly string[] {
    return need("tags");
  },
});
