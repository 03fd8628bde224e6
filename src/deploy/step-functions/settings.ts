/**
 * Per-step run settings of a deployed flow: what the compiler needs from a step's decorators
 * (`@retry`, `@catchError`, `@timeout`, `@resources`, `@environment`, `@batch`), validated once.
 */
import { parseBatchOptions, type BatchOptions } from "../../decorators/batch.js";
import type { TaskPlan } from "../../decorators/contract.js";
import { DeployError } from "../errors.js";

export { parseBatchOptions, type BatchOptions } from "../../decorators/batch.js";

/** How one step's tasks run on Step Functions and Batch. */
export interface StepRunSettings {
  /** Extra attempts after a failure (`@retry.times`). @default 0 */
  readonly retries: number;
  /** Seconds between attempts (`@retry.minutesBetweenRetries` × 60, at least 1). @default 120 */
  readonly retryIntervalSeconds: number;
  /** `@catchError`: after the last failed attempt, a task stores the error and the flow goes on. */
  readonly catchError: boolean;
  /** `@timeout` in seconds; undefined means the deployment's default limit. */
  readonly timeoutSeconds: number | undefined;
  readonly cpu: number;
  readonly memory: number;
  readonly gpu: number;
  /** `@environment` variables. */
  readonly env: Readonly<Record<string, string>>;
  /** `@batch` options as written (queue, image, roles, ...). */
  readonly batch: BatchOptions;
}

/** What a remote scheduler waits between attempts when `@retry` gives no wait (Metaflow's 2 minutes). */
const DEFAULT_RETRY_DELAY_MS = 120_000;

/**
 * Reads the settings of one step from its plan — the plan every decorator's parent-side hook
 * shaped (built-in or user-written, `--with` included), as `buildSetups` makes it for a local run.
 */
export function stepRunSettings(plan: TaskPlan): StepRunSettings {
  let batch: BatchOptions;
  try {
    batch = parseBatchOptions(plan.launcher.kind === "batch" ? { ...plan.launcher.options } : {});
  } catch (err) {
    throw new DeployError((err as Error).message);
  }
  return {
    retries: plan.retries,
    retryIntervalSeconds: Math.max(1, Math.round((plan.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS) / 1000)),
    catchError: plan.onFailure !== undefined,
    timeoutSeconds: plan.timeoutMs === undefined ? undefined : plan.timeoutMs / 1000,
    cpu: plan.resources.cpu ?? 1,
    memory: plan.resources.memoryMb ?? 4096,
    gpu: plan.resources.gpu ?? 0,
    env: { ...plan.env },
    batch,
  };
}
