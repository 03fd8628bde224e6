/**
 * AWS Batch pieces of a deployment: the job definitions its task states submit to (one per
 * distinct image/roles/container settings), and each state's resource requests.
 */
import { createHash } from "node:crypto";
import type { BatchOptions, StepRunSettings } from "./settings.js";

/** The deployment-wide Batch settings a step's `@batch` options fall back on. */
export interface BatchDefaults {
  /** Job queue. */
  readonly queue: string;
  /** Container image with Node.js 20 and metaflow-ts installed. */
  readonly image: string;
  /** IAM role of the tasks (S3 and, if used, Secrets Manager access). */
  readonly iamRole?: string;
  /** ECS execution role. */
  readonly executionRole?: string;
}

/** A Batch job definition the deployment registers (its name carries a hash of its content). */
export interface JobDefinitionSpec {
  readonly name: string;
  readonly image: string;
  readonly jobRoleArn?: string;
  readonly executionRoleArn?: string;
  readonly sharedMemory?: number;
  readonly maxSwap?: number;
  /** Environment of every container: datastore, metadata service, user. */
  readonly environment: Readonly<Record<string, string>>;
  /** Variables read from Secrets Manager or SSM (name → ARN), e.g. the service token. */
  readonly secrets?: Readonly<Record<string, string>>;
}

/** Batch allows letters, digits, `-` and `_` in job and job-definition names, up to 128. */
export function batchName(text: string, max = 128): string {
  return text.replace(/[^A-Za-z0-9_-]/g, "-").slice(0, max);
}

/** The job definition a step's tasks use, and the queue they go to. */
export function jobDefinitionFor(
  deployment: string,
  defaults: BatchDefaults,
  batch: BatchOptions,
  environment: Readonly<Record<string, string>>,
  secrets: Readonly<Record<string, string>> = {},
): { queue: string; definition: JobDefinitionSpec } {
  const content = {
    image: batch.image ?? defaults.image,
    jobRoleArn: batch.iamRole ?? defaults.iamRole,
    executionRoleArn: batch.executionRole ?? defaults.executionRole,
    sharedMemory: batch.sharedMemory,
    maxSwap: batch.maxSwap,
    environment: Object.fromEntries(
      Object.entries(environment).sort(([a], [b]) => a.localeCompare(b)),
    ),
    ...(Object.keys(secrets).length > 0 ? { secrets: { ...secrets } } : {}),
  };
  const hash = createHash("sha256").update(JSON.stringify(content)).digest("hex").slice(0, 10);
  const name = `${batchName(deployment, 128 - 11)}-${hash}`;
  const definition: JobDefinitionSpec = Object.fromEntries(
    Object.entries({ name, ...content }).filter(([, v]) => v !== undefined),
  ) as unknown as JobDefinitionSpec;
  return { queue: batch.queue ?? defaults.queue, definition };
}

/** `ContainerOverrides.ResourceRequirements` of a step's tasks. */
export function resourceRequirements(
  s: Pick<StepRunSettings, "cpu" | "memory" | "gpu">,
): Array<{ Type: string; Value: string }> {
  const out = [
    { Type: "VCPU", Value: String(s.cpu) },
    { Type: "MEMORY", Value: String(s.memory) },
  ];
  if (s.gpu > 0) out.push({ Type: "GPU", Value: String(s.gpu) });
  return out;
}

/** The `RegisterJobDefinition` request for a spec (the SDK's input shape). */
export function registerJobDefinitionInput(
  spec: JobDefinitionSpec,
  tags: Readonly<Record<string, string>> = {},
): Record<string, unknown> {
  const linux: Record<string, number> = {};
  if (spec.sharedMemory !== undefined) linux.sharedMemorySize = spec.sharedMemory;
  if (spec.maxSwap !== undefined) {
    linux.maxSwap = spec.maxSwap;
    linux.swappiness = 60;
  }
  return {
    jobDefinitionName: spec.name,
    type: "container",
    propagateTags: true,
    tags: { ...tags },
    containerProperties: {
      image: spec.image,
      // Each state overrides the command; this one only shows up if someone submits the definition by hand.
      command: ["metaflow", "task", "--help"],
      resourceRequirements: [
        { type: "VCPU", value: "1" },
        { type: "MEMORY", value: "4096" },
      ],
      environment: Object.entries(spec.environment).map(([name, value]) => ({ name, value })),
      ...(spec.secrets
        ? {
            secrets: Object.entries(spec.secrets).map(([name, valueFrom]) => ({ name, valueFrom })),
          }
        : {}),
      ...(spec.jobRoleArn ? { jobRoleArn: spec.jobRoleArn } : {}),
      ...(spec.executionRoleArn ? { executionRoleArn: spec.executionRoleArn } : {}),
      ...(Object.keys(linux).length > 0 ? { linuxParameters: linux } : {}),
    },
  };
}
