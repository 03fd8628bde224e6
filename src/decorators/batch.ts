/**
 * `@batch({ queue, image, cpu, memory, gpu, iamRole, executionRole, sharedMemory, maxSwap })`: the
 * step's tasks run as AWS Batch jobs — in a deployed flow (Step Functions) every step does, and
 * `metaflow run` sends a `@batch` step's tasks to Batch through the `batch` task launcher. Unset
 * options come from the deployment's settings (`METAFLOW_BATCH_*`); `@resources` applies too.
 */
import { checkKeys, requestResources } from "./contract.js";
import { stepDecorator } from "./make.js";

/** Options of `@batch`; unset fields come from the settings. */
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
  /** ECS execution role (pulling private images, Fargate). @default METAFLOW_ECS_FARGATE_EXECUTION_ROLE */
  readonly executionRole?: string;
  /** Size of /dev/shm in MiB. @default the Docker default */
  readonly sharedMemory?: number;
  /** Swap in MiB the container may use. @default none */
  readonly maxSwap?: number;
}

/** The option names of `@batch`. */
export const BATCH_KEYS = [
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

const TEXT_KEYS: ReadonlySet<string> = new Set(["queue", "image", "iamRole", "executionRole"]);

/**
 * Validates `@batch` options, from code or `--with batch:k=v` (strings); the error names the field.
 * @example parseBatchOptions({ cpu: "4", queue: "gpu" }); // { cpu: 4, queue: "gpu" }
 */
export function parseBatchOptions(raw: Readonly<Record<string, unknown>>): BatchOptions {
  checkKeys("batch", raw as Record<string, unknown>, BATCH_KEYS);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined) continue;
    if (TEXT_KEYS.has(k)) {
      if (typeof v !== "string" || v.trim() === "") {
        throw new Error(`@batch.${k} must be a non-empty string, got ${JSON.stringify(v)}`);
      }
      out[k] = v.trim();
      continue;
    }
    const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
    const min = k === "cpu" || k === "memory" ? 1 : 0;
    const ok =
      typeof n === "number" &&
      Number.isFinite(n) &&
      n >= min &&
      (k === "cpu" || Number.isInteger(n));
    if (!ok || (k === "cpu" && (n as number) <= 0)) {
      throw new Error(
        `@batch.${k} must be ${k === "cpu" ? "a number > 0" : `a whole number ≥ ${min}`}, got ${JSON.stringify(v)}`,
      );
    }
    out[k] = n;
  }
  return out as BatchOptions;
}

/** Runs the step's tasks as AWS Batch jobs. */
export const batch = stepDecorator<BatchOptions, BatchOptions>({
  name: "batch",
  help: "batch:queue=Q,image=I,cpu=N,memory=MiB,gpu=N runs the step's tasks as AWS Batch jobs",
  parse: (raw) => parseBatchOptions(raw),
  plan(options, plan) {
    // The larger of @batch and @resources is requested, as in Metaflow.
    requestResources(plan, { cpu: options.cpu, memoryMb: options.memory, gpu: options.gpu });
    plan.launcher = { kind: "batch", options: { ...options } };
  },
});
