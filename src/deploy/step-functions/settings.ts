/**
 * Per-step run settings of a deployed flow: what the compiler needs from a step's decorators
 * (`@retry`, `@catchError`, `@timeout`, `@resources`, `@environment`, `@batch`), validated once.
 */
import { parseBatchOptions, type BatchOptions } from "../../decorators/batch.js";
import type { DecoratorSpec } from "../../decorators/contract.js";
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

/**
 * Reads the settings of one step from its decorators (validated options, as `LoadedFlow.decorators`
 * holds them), `--with` decorators included by the caller.
 */
export function stepRunSettings(decorators: readonly DecoratorSpec[]): StepRunSettings {
  const find = (name: string) => decorators.find((d) => d.name === name)?.options;
  const retry = find("retry");
  const timeout = find("timeout");
  const resources = find("resources");
  const environment = find("environment");
  let batch: BatchOptions;
  try {
    batch = parseBatchOptions(find("batch") ?? {});
  } catch (err) {
    throw new DeployError((err as Error).message);
  }
  const num = (o: Readonly<Record<string, unknown>> | undefined, k: string): number | undefined =>
    typeof o?.[k] === "number" ? (o[k] as number) : undefined;
  const minutes = num(retry, "minutesBetweenRetries") ?? 2;
  const memory = Math.max(
    resources?.memorySet === false ? 0 : (num(resources, "memory") ?? 0),
    batch.memory ?? 0,
  );
  return {
    retries: num(retry, "times") ?? 0,
    retryIntervalSeconds: Math.max(1, Math.round(minutes * 60)),
    catchError: find("catchError") !== undefined,
    timeoutSeconds: num(timeout, "seconds"),
    cpu: Math.max(num(resources, "cpu") ?? 1, batch.cpu ?? 1),
    memory: memory > 0 ? memory : 4096,
    gpu: Math.max(num(resources, "gpu") ?? 0, batch.gpu ?? 0),
    env: { ...((environment?.vars as Record<string, string> | undefined) ?? {}) },
    batch,
  };
}
