/**
 * `step-functions create` as a library call: from a loaded flow and the deploy-time settings, the
 * deployment's name, production token, state machine, job definitions and schedule — printed by
 * `--only-json`, or created on AWS by {@link createDeployment}.
 */
import * as os from "node:os";
import * as path from "node:path";
import { currentUser } from "../../config.js";
import { parseOptions, parseWithFlag, type DecoratorSpec } from "../../decorators/contract.js";
import { UsageError } from "../../errors.js";
import type { LoadedFlow } from "../../runtime/load-flow.js";
import { DeployError } from "../errors.js";
import {
  deploymentName,
  productionNamespace,
  projectInfo,
  projectSystemTags,
  readKnownToken,
  resolveProductionToken,
  storeKnownToken,
  type BranchChoice,
  type DeploymentRecord,
  type ProjectInfo,
  type ProjectOptions,
  type TokenDecision,
} from "../project.js";
import { scheduleSpec, type ScheduleOptions, type ScheduleSpec } from "../schedule.js";
import type { BatchDefaults } from "./batch.js";
import { compileStateMachine, type CompiledStateMachine } from "./compile.js";
import { parseBatchOptions, stepRunSettings } from "./settings.js";
import { analyseFlow } from "./structure.js";

type Env = Readonly<Record<string, string | undefined>>;

/** What `create` is asked for on the command line (and by the Deployer). */
export interface DeploymentRequest extends BranchChoice {
  /** `@project` options of the flow (read from its flow decorators). */
  readonly project?: ProjectOptions;
  /** `@schedule` options of the flow. */
  readonly schedule?: ScheduleOptions;
  /** `--with` decorators added to every step (`batch` is implied for all). @default [] */
  readonly with?: readonly string[];
  /** @default 100 */
  readonly maxWorkers?: number;
  /** @default 100 */
  readonly maxNumSplits?: number;
  readonly authorize?: string;
  readonly newToken?: boolean;
}

/** A deployment, ready to print or to create. */
export interface PreparedDeployment {
  readonly name: string;
  readonly project?: ProjectInfo;
  readonly token: TokenDecision;
  readonly namespace: string;
  readonly stateMachine: CompiledStateMachine;
  readonly schedule?: ScheduleSpec;
}

/** Deploy-time settings from the environment (as Metaflow names them). */
export interface DeploySettings {
  readonly datastoreRoot: string;
  readonly batch: BatchDefaults;
  /** The container environment: where tasks find the datastore and the metadata service. */
  readonly environment: Record<string, string>;
  readonly user: string;
  readonly metaflowHome: string;
}

/** Reads the deploy settings; a missing one is a DeployError naming the variable. */
export function deploySettings(env: Env = process.env): DeploySettings {
  const need = (key: string, what: string): string => {
    const v = env[key]?.trim();
    if (!v)
      throw new DeployError(
        `${key} is not set`,
        `Deploying to Step Functions needs ${key}: ${what}`,
      );
    return v;
  };
  const datastoreRoot = need(
    "METAFLOW_DATASTORE_SYSROOT_S3",
    "the S3 datastore root tasks share, e.g. s3://my-bucket/metaflow",
  );
  const serviceUrl = need(
    "METAFLOW_SERVICE_URL",
    "the metadata service deployed tasks record to, e.g. https://metaflow.example.com",
  );
  const environment: Record<string, string> = {
    METAFLOW_DEFAULT_DATASTORE: "s3",
    METAFLOW_DATASTORE_SYSROOT_S3: datastoreRoot,
    METAFLOW_DEFAULT_METADATA: "service",
    METAFLOW_SERVICE_URL: serviceUrl,
    METAFLOW_USER: currentUser(env),
  };
  for (const key of ["METAFLOW_S3_REGION", "METAFLOW_S3_ENDPOINT_URL"])
    if (env[key]) environment[key] = env[key]!;
  return {
    datastoreRoot,
    batch: {
      queue: need("METAFLOW_BATCH_JOB_QUEUE", "the AWS Batch job queue tasks run in"),
      image: need(
        "METAFLOW_BATCH_CONTAINER_IMAGE",
        "a container image with Node.js 20 and metaflow-ts installed",
      ),
      ...(env.METAFLOW_ECS_S3_ACCESS_IAM_ROLE
        ? { iamRole: env.METAFLOW_ECS_S3_ACCESS_IAM_ROLE }
        : {}),
      ...(env.METAFLOW_ECS_FARGATE_EXECUTION_ROLE
        ? { executionRole: env.METAFLOW_ECS_FARGATE_EXECUTION_ROLE }
        : {}),
    },
    environment,
    user: currentUser(env),
    metaflowHome: env.METAFLOW_HOME ?? path.join(os.homedir(), ".metaflowconfig"),
  };
}

/** Each step's decorators with the `--with` ones added (a decorator written on the step wins). */
export function decoratorsWith(
  flow: LoadedFlow,
  withFlags: readonly string[],
): Map<string, DecoratorSpec[]> {
  const fromCli = withFlags.map((text) => {
    const { name, raw } = parseWithFlag(text);
    if (name === "batch")
      return { name, options: parseBatchOptions(raw) as Record<string, unknown> };
    const def = flow.definitions.get(name);
    if (!def) throw new UsageError(`--with ${text}: there is no decorator '${name}'`);
    return { name, options: parseOptions(def, raw, "cli") };
  });
  const out = new Map<string, DecoratorSpec[]>();
  for (const node of flow.graph.steps) {
    const own = [...(flow.decorators.get(node.name) ?? [])];
    out.set(node.name, [...fromCli.filter((c) => !own.some((d) => d.name === c.name)), ...own]);
  }
  return out;
}

/**
 * Prepares a deployment: names, production token (checked against `existing`, the deployment's
 * record on AWS; undefined for `--only-json` or a first create), the state machine and schedule.
 */
export function prepareDeployment(
  flow: LoadedFlow,
  request: DeploymentRequest,
  settings: DeploySettings,
  codePackage: string,
  existing: DeploymentRecord | undefined,
): PreparedDeployment {
  const project = request.project
    ? projectInfo(request.project, flow.className, settings.user, request)
    : undefined;
  if (!project && (request.branch !== undefined || request.production)) {
    throw new UsageError(
      `--branch and --production need @project on the flow; add @project({ name: "..." }) to ${flow.className}`,
    );
  }
  const name = deploymentName(flow.className, project);
  const token = resolveProductionToken({
    deployment: name,
    user: settings.user,
    ...(existing ? { existing } : {}),
    ...(readKnownToken(settings.metaflowHome, name) !== undefined
      ? { known: readKnownToken(settings.metaflowHome, name)! }
      : {}),
    ...(request.authorize !== undefined ? { authorize: request.authorize } : {}),
    ...(request.newToken ? { newToken: true } : {}),
  });
  const namespace = productionNamespace(token.token);
  const decorators = decoratorsWith(flow, request.with ?? []);
  const structure = analyseFlow(flow.graph);
  const stepSettings = new Map(
    flow.graph.steps.map((s) => [s.name, stepRunSettings(decorators.get(s.name) ?? [])]),
  );
  const stateMachine = compileStateMachine(structure, stepSettings, {
    deployment: name,
    codePackage,
    datastoreRoot: settings.datastoreRoot,
    namespace,
    systemTags: [namespace, ...(project ? projectSystemTags(project) : [])],
    ...(project
      ? {
          project: {
            name: project.projectName,
            branch: project.branchName,
            production: project.isProduction,
          },
        }
      : {}),
    batch: settings.batch,
    environment: settings.environment,
    maxWorkers: request.maxWorkers ?? 100,
    maxNumSplits: request.maxNumSplits ?? 100,
  });
  return {
    name,
    ...(project ? { project } : {}),
    token,
    namespace,
    stateMachine,
    ...(request.schedule ? { schedule: scheduleSpec(request.schedule) } : {}),
  };
}

/** Remembers the token on this machine after a successful create, so the next create may reuse it. */
export function rememberToken(settings: DeploySettings, prepared: PreparedDeployment): void {
  storeKnownToken(settings.metaflowHome, prepared.name, prepared.token.token);
}
