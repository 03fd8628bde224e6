/**
 * AWS Batch pieces shared by a deployment (whose task states submit jobs) and the `batch` launcher
 * (which submits them from `metaflow run`): the job definitions (one per distinct image, roles and
 * container settings), the container's environment, resource requests, and the thin calls to the
 * Batch API (the official SDK client, loaded on first use; nothing here can be tested without AWS).
 */
import { createHash } from "node:crypto";
import type { MetaflowConfig } from "../config/index.js";
import type { BatchOptions } from "../decorators/batch.js";
import { remoteTaskEnvironment } from "./remote-task.js";

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
export function resourceRequirements(s: {
  readonly cpu: number;
  readonly memory: number;
  readonly gpu: number;
}): Array<{ Type: string; Value: string }> {
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

/** What a Batch job of a step is given from the settings: where it records, and where it runs. */
export interface BatchJobSettings {
  /** `s3://bucket/prefix`: the datastore every task shares. */
  readonly datastoreRoot: string;
  readonly serviceUrl: string;
  readonly queue: string;
  readonly image: string;
}

/** A setting a Batch job needs that is missing or unsuitable, and how to set it. */
export interface BatchSettingProblem {
  /** The setting to configure, e.g. `METAFLOW_DEFAULT_DATASTORE`. */
  readonly key: string;
  readonly headline: string;
  readonly message: string;
}

/** Who asks for the Batch settings, for the words of a problem, and what it already has. */
export interface BatchSettingsRequest {
  /** Who needs them, as a headline's subject: "Deployed flows". */
  readonly subject: string;
  /** Whose tasks record to the metadata service: "deployed tasks". */
  readonly tasks: string;
  /** What a missing setting stops: "Deploying to Step Functions". */
  readonly action: string;
  /** A step's own `@batch` queue and image, which come before the settings. @default none */
  readonly step?: Pick<BatchOptions, "queue" | "image">;
  /** A local directory the run opened whatever the settings say (`--datastore-root`). @default none */
  readonly localDatastore?: string;
  /**
   * Print, not run (`--only-json`): a missing value reads `<NAME>` and a local datastore or local
   * metadata passes. @default false
   */
  readonly placeholders?: boolean;
}

/**
 * Checks what a Batch job needs from the configuration — the S3 datastore, the metadata service,
 * a queue and an image — and returns them, or the first that is missing with how to set it. The
 * one check a deployment and the `batch` launcher (its preflight and each submission) share.
 */
export function batchJobSettings(
  config: MetaflowConfig,
  request: BatchSettingsRequest,
):
  | { readonly ok: true; readonly settings: BatchJobSettings }
  | { readonly ok: false; readonly problem: BatchSettingProblem } {
  const placeholder = request.placeholders === true;
  if (!placeholder && (request.localDatastore !== undefined || config.datastore.value !== "s3")) {
    const where =
      config.datastore.value !== "s3"
        ? `local (METAFLOW_DEFAULT_DATASTORE=${config.datastore.value}, from ${config.datastore.origin})`
        : `the local directory ${request.localDatastore} (the run was given it)`;
    return {
      ok: false,
      problem: {
        key: "METAFLOW_DEFAULT_DATASTORE",
        headline: `${request.subject} need the S3 datastore`,
        message: `The datastore is ${where}; AWS Batch tasks cannot read a directory on this machine. Set METAFLOW_DEFAULT_DATASTORE=s3 and METAFLOW_DATASTORE_SYSROOT_S3=s3://bucket/prefix (see docs/production.md).`,
      },
    };
  }
  if (!placeholder && config.metadata.value !== "service") {
    return {
      ok: false,
      problem: {
        key: "METAFLOW_DEFAULT_METADATA",
        headline: `${request.subject} need the metadata service`,
        message: `Metadata is local (METAFLOW_DEFAULT_METADATA=${config.metadata.value}, from ${config.metadata.origin}); ${request.tasks} record to the metadata service. Set METAFLOW_DEFAULT_METADATA=service and METAFLOW_SERVICE_URL (see docs/admin.md).`,
      },
    };
  }
  const wanted: Array<[keyof BatchJobSettings, string, string | undefined, string, string]> = [
    [
      "datastoreRoot",
      "METAFLOW_DATASTORE_SYSROOT_S3",
      config.s3Root.value,
      "the S3 datastore root tasks share, e.g. s3://my-bucket/metaflow",
      "",
    ],
    [
      "serviceUrl",
      "METAFLOW_SERVICE_URL",
      config.serviceUrl.value,
      `the metadata service ${request.tasks} record to`,
      "",
    ],
    [
      "queue",
      "METAFLOW_BATCH_JOB_QUEUE",
      request.step?.queue ?? config.deploy.batchQueue.value,
      "the AWS Batch job queue tasks run in",
      "queue",
    ],
    [
      "image",
      "METAFLOW_BATCH_CONTAINER_IMAGE",
      request.step?.image ?? config.deploy.batchImage.value,
      "a container image with Node.js 20 and metaflow-ts installed",
      "image",
    ],
  ];
  const settings: Partial<Record<keyof BatchJobSettings, string>> = {};
  for (const [field, key, value, what, option] of wanted) {
    if (value !== undefined) settings[field] = value;
    else if (placeholder)
      settings[field] = key === "METAFLOW_DATASTORE_SYSROOT_S3" ? `s3://<${key}>` : `<${key}>`;
    else {
      const orStep = request.step && option ? `, or give the step @batch({ ${option} })` : "";
      return {
        ok: false,
        problem: {
          key,
          headline: `${key} is not set`,
          message: `${request.action} needs ${key}: ${what} (set it in the environment or in ${config.configFile}${orStep})`,
        },
      };
    }
  }
  return { ok: true, settings: settings as BatchJobSettings };
}

/** What a container needs to reach the datastore and the metadata service, and as whom it runs. */
export interface ContainerSettings {
  readonly environment: Record<string, string>;
  /** Variables read from Secrets Manager or SSM (name → ARN). */
  readonly secrets: Record<string, string>;
}

/**
 * The container environment of a task: what every remote task is given (`remoteTaskEnvironment`:
 * the S3 datastore and its settings, the metadata service, the user), with the service token as a
 * Batch secret when `METAFLOW_BATCH_SERVICE_TOKEN_ARN` is set, else as a variable.
 */
export function containerSettings(
  config: MetaflowConfig,
  values: { datastoreRoot: string; serviceUrl: string; maskToken?: boolean },
): ContainerSettings {
  const arn = config.deploy.batchServiceTokenArn.value;
  const environment = remoteTaskEnvironment(config, {
    kind: "container",
    datastoreRoot: values.datastoreRoot,
    serviceUrl: values.serviceUrl,
    token: arn ? "omit" : values.maskToken ? "mask" : "reveal",
  });
  return { environment, secrets: arn ? { METAFLOW_SERVICE_AUTH_TOKEN: arn } : {} };
}

type BatchSdk = typeof import("@aws-sdk/client-batch");
type Batch = { m: BatchSdk; client: InstanceType<BatchSdk["BatchClient"]> };
let batch: Promise<Batch> | undefined;

/**
 * The process's Batch client, made on first use (the SDK is loaded then). Region, endpoint and
 * credentials are the SDK's.
 */
export function batchClient(): Promise<Batch> {
  batch ??= import("@aws-sdk/client-batch").then(
    (m) => ({ m, client: new m.BatchClient({}) }),
    (err: unknown) => {
      batch = undefined;
      throw err;
    },
  );
  return batch;
}

/**
 * Job definitions this process found or registered, by name (the name carries a hash of the
 * content): a foreach of many tasks asks Batch once, and first attempts submitted together share
 * one registration instead of each registering a duplicate.
 */
const definitions = new Map<string, Promise<string>>();

/** The job definition `spec` names: the active one when it exists, else newly registered. */
export function ensureJobDefinition(spec: JobDefinitionSpec): Promise<string> {
  let known = definitions.get(spec.name);
  if (!known) {
    known = findOrRegister(spec);
    definitions.set(spec.name, known);
    // A failure is not kept: the next attempt asks Batch again.
    known.catch(() => definitions.delete(spec.name));
  }
  return known;
}

async function findOrRegister(spec: JobDefinitionSpec): Promise<string> {
  const { m, client } = await batchClient();
  const found = await client.send(
    new m.DescribeJobDefinitionsCommand({ jobDefinitionName: spec.name, status: "ACTIVE" }),
  );
  if ((found.jobDefinitions ?? []).length > 0) return spec.name;
  await client.send(new m.RegisterJobDefinitionCommand(registerJobDefinitionInput(spec) as never));
  return spec.name;
}
