/**
 * Per-step run settings of a deployed flow: what the compiler needs from a step's decorators
 * (`@retry`, `@catchError`, `@timeout`, `@resources`, `@environment`, `@batch`), validated once.
 */
import type { DecoratorSpec } from "../../decorators/contract.js";
import { DeployError } from "../errors.js";

/** Options of `@batch` (a step's AWS Batch job); unset fields come from the deployment's defaults. */
export interface BatchOptions {
  /** Batch job queue name or ARN. @default METAFLOW_BATCH_JOB_QUEUE */
  readonly queue?: string;
  /** Container image with Node.js 20 and metaflow-ts installed. @default METAFLOW_BATCH_CONTAINER_IMAGE */
  readonly image?: string;
  /** vCPUs; the larger of this and `@resources.cpu` is requested. @default 1 */
  readonly cpu?: number;
  /** Memory in MiB; the larger of this and `@resources.memory`. @default 4096 */
  readonly memory?: number;
  /** GPUs; the larger of this and `@resources.gpu`. @default 0 */
  readonly gpu?: number;
  /** IAM role the task assumes (S3 access). @default METAFLOW_ECS_S3_ACCESS_IAM_ROLE */
  readonly iamRole?: string;
  /** ECS execution role (pulling private images, Fargate). @default none */
  readonly executionRole?: string;
  /** Size of /dev/shm in MiB. @default the Docker default */
  readonly sharedMemory?: number;
  /** Swap in MiB the container may use. @default none */
  readonly maxSwap?: number;
}

const BATCH_KEYS = [
  "queue",
  "image",
  "cpu",
  "memory",
  "gpu",
  "iamRole",
  "executionRole",
  "sharedMemory",
  "maxSwap",
] as const;

/** Validates `@batch` options (from code, or `--with batch:k=v` strings); errors name the field. */
export function parseBatchOptions(raw: Readonly<Record<string, unknown>>): BatchOptions {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (!(BATCH_KEYS as readonly string[]).includes(k)) {
      throw new DeployError(
        `@batch has no option '${k}'`,
        `@batch has no option '${k}'; its options are: ${BATCH_KEYS.join(", ")}`,
      );
    }
    if (v === undefined) continue;
    if (k === "queue" || k === "image" || k === "iamRole" || k === "executionRole") {
      if (typeof v !== "string" || v.trim() === "")
        throw badField(`@batch.${k} must be a non-empty string, got ${JSON.stringify(v)}`);
      out[k] = v.trim();
    } else {
      const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
      const min = k === "cpu" || k === "memory" ? 1 : 0;
      if (
        typeof n !== "number" ||
        !Number.isFinite(n) ||
        n < min ||
        (k !== "cpu" && !Number.isInteger(n))
      ) {
        throw badField(
          `@batch.${k} must be ${k === "cpu" ? "a number > 0" : `a whole number ≥ ${min}`}, got ${JSON.stringify(v)}`,
        );
      }
      out[k] = n;
    }
  }
  return out as BatchOptions;
}

function badField(message: string): DeployError {
  return new DeployError(message.split(",")[0]!, message);
}

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
  const batch = parseBatchOptions(find("batch") ?? {});
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
