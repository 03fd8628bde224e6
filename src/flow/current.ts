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

/**
 * What decorators add to `current` while a task runs (`current.card`, ...). Decorator modules
 * extend this interface with `declare module`, so `current.card` is typed where it is defined.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface CurrentExtensions {}

let state: CurrentTask | undefined;
let extras = new Map<string, unknown>();

/** Sets (or clears) the running task; called by the task executor only. */
export function setCurrentTask(task: CurrentTask | undefined): void {
  state = task ? Object.freeze({ ...task, tags: Object.freeze([...task.tags]) }) : undefined;
  extras = new Map();
}

/** Adds `current[key]` for the running task; called by in-task decorator hooks through the executor. */
export function setCurrentExtra(key: string, value: unknown): void {
  if (!state) throw new Error(`current.${key} can only be set while a step runs`);
  if (key in base) throw new Error(`current.${key} is built in and cannot be replaced`);
  extras.set(key, value);
}

function need<K extends keyof CurrentTask>(key: K): CurrentTask[K] {
  if (!state) {
    throw new Error(`current.${String(key)} is only available while a step runs (check current.isRunningFlow first)`);
  }
  return state[key];
}

const base = Object.freeze({
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

/**
 * The running task's identity: flow, run, step, task, attempt and more; decorators may add to it
 * (`current.card`).
 * @example console.log(`${current.pathspec} attempt ${current.retryCount}`);
 */
export const current: typeof base & CurrentExtensions = new Proxy(base, {
  get(target, key, receiver) {
    if (typeof key === "string" && !(key in target)) return extras.get(key);
    return Reflect.get(target, key, receiver);
  },
  has(target, key) {
    return key in target || (typeof key === "string" && extras.has(key));
  },
}) as typeof base & CurrentExtensions;
