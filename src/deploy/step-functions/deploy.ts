/**
 * `step-functions create` as a library call: from a loaded flow and the deploy settings, the
 * deployment's name, production token, run plan, state machine, job definitions and schedule —
 * printed by `--only-json`, or created on AWS (aws.ts).
 */
import * as os from "node:os";
import * as path from "node:path";
import type { Backends } from "../../backends.js";
import { loadConfig } from "../../config/index.js";
import { parseProjectOptions } from "../../decorators/project.js";
import {
  scheduleSpec,
  type ScheduleOptions,
  type ScheduleSpec,
} from "../../decorators/schedule.js";
import { storeCodePackage } from "../../datastore/code-package.js";
import type { ContentStore } from "../../datastore/cas.js";
import { buildSetups, runPlanOf } from "../../runtime/plans.js";
import type { LoadedFlow } from "../../runtime/load-flow.js";
import { flowRunTags } from "../../runtime/run-tags.js";
import { convertParameter, parameterEnvVar, resolveParameters } from "../../task/parameters.js";
import { storeRunPlan, type PlannedParameter } from "../../task/run-plan.js";
import { UsageError } from "../../errors.js";
import { DeployError } from "../errors.js";
import {
  deploymentName,
  productionNamespace,
  projectInfo,
  readKnownToken,
  resolveProductionToken,
  storeKnownToken,
  type BranchChoice,
  type DeploymentRecord,
  type ProjectInfo,
  type TokenDecision,
} from "../project.js";
import {
  batchJobSettings,
  containerSettings,
  type BatchDefaults,
} from "../../launchers/batch-jobs.js";
import { compileStateMachine, type CompiledStateMachine } from "./compile.js";
import { stepRunSettings } from "./settings.js";
import { analyseFlow } from "./structure.js";

type Env = Readonly<Record<string, string | undefined>>;

/** What `create` is asked for on the command line (and by the Deployer). */
export interface DeploymentRequest extends BranchChoice {
  /** `--with` decorators added to every step. @default [] */
  readonly with?: readonly string[];
  /** Foreach tasks running at once. @default 100 */
  readonly maxWorkers?: number;
  /** Most tasks one foreach may create. @default 100 */
  readonly maxNumSplits?: number;
  /** `--authorize TOKEN`: deploy over someone else's deployment. */
  readonly authorize?: string;
  /** `--new-token`: a new production namespace. */
  readonly newToken?: boolean;
}

/** The counts of a request, named as the Deployer and as the command line take them. */
const COUNTS = [
  ["maxWorkers", "--max-workers"],
  ["maxNumSplits", "--max-num-splits"],
] as const;

/**
 * Checks the options of a request that the flow does not decide (a count of 0 would compile to
 * MaxConcurrency 0, which Step Functions reads as unlimited); throws a UsageError naming the option.
 */
export function checkDeploymentRequest(request: DeploymentRequest): void {
  for (const [field, flag] of COUNTS) {
    const v = request[field];
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 1)) {
      throw new UsageError(
        `${field} (${flag}) must be a whole number ≥ 1, got ${typeof v === "number" ? v : JSON.stringify(v)}`,
      );
    }
  }
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

/** What deploying needs besides the flow: where tasks run and record, and as whom. */
export interface DeploySettings {
  /** `s3://bucket/prefix`: the datastore every task shares. */
  readonly datastoreRoot: string;
  readonly batch: BatchDefaults;
  /** The container environment: where tasks find the datastore and the metadata service. */
  readonly environment: Record<string, string>;
  /** Container secrets (variable name → Secrets Manager or SSM ARN). */
  readonly secrets: Record<string, string>;
  readonly user: string;
  /** Where this machine keeps the production tokens it knows (`<home>/tokens/`). */
  readonly metaflowHome: string;
  /** `METAFLOW_SFN_IAM_ROLE`. */
  readonly sfnRole: string | undefined;
  /** `METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE`. */
  readonly schedulerRole: string | undefined;
}

/**
 * Reads the deploy settings from the configuration (environment and config file); a missing or
 * unsuitable one is a DeployError naming it. With `placeholders` (`--only-json`), a missing
 * setting prints as `<NAME>` and the service token is masked.
 */
export function deploySettings(
  env: Env = process.env,
  options: { placeholders?: boolean } = {},
): DeploySettings {
  const config = loadConfig(env as NodeJS.ProcessEnv);
  const placeholder = options.placeholders === true;
  const checked = batchJobSettings(config, {
    subject: "Deployed flows",
    tasks: "deployed tasks",
    action: "Deploying to Step Functions",
    placeholders: placeholder,
  });
  if (!checked.ok) throw new DeployError(checked.problem.headline, checked.problem.message);
  const { datastoreRoot, serviceUrl, queue, image } = checked.settings;
  const d = config.deploy;
  const { environment, secrets } = containerSettings(config, {
    datastoreRoot,
    serviceUrl,
    maskToken: placeholder,
  });
  return {
    datastoreRoot,
    batch: {
      queue,
      image,
      ...(d.batchJobRole.value ? { iamRole: d.batchJobRole.value } : {}),
      ...(d.batchExecutionRole.value ? { executionRole: d.batchExecutionRole.value } : {}),
    },
    environment,
    secrets,
    user: config.user.value,
    metaflowHome: env.METAFLOW_HOME ?? path.join(os.homedir(), ".metaflowconfig"),
    sfnRole: d.sfnRole.value,
    schedulerRole: d.schedulerRole.value,
  };
}

/** The deployment's name, its project, and the system tags its runs get from the flow decorators. */
export function deploymentNames(
  flow: LoadedFlow,
  user: string,
  choice: BranchChoice,
): { name: string; project?: ProjectInfo; runTags: string[] } {
  const runTags = flowRunTags(flow, user, choice);
  const spec = flow.flowDecorators.find((d) => d.name === "project");
  const project = spec
    ? projectInfo(parseProjectOptions(spec.options), flow.className, user, choice)
    : undefined;
  return {
    name: deploymentName(flow.className, project),
    ...(project ? { project } : {}),
    runTags,
  };
}

/** The `@schedule` of a flow, as EventBridge Scheduler takes it. */
export function flowSchedule(flow: LoadedFlow): ScheduleSpec | undefined {
  const spec = flow.flowDecorators.find((d) => d.name === "schedule");
  return spec ? scheduleSpec(spec.options as ScheduleOptions) : undefined;
}

/**
 * Stores what deployed tasks run — the code package, IncludeFile contents and the run plan (with
 * the parameters and their defaults as of now) — and returns the plan's hash.
 */
export async function storeDeploymentPlan(
  flow: LoadedFlow,
  request: DeploymentRequest,
  backends: Backends,
  env: Env = process.env,
): Promise<string> {
  const setups = buildSetups(flow, request.with ?? [], "context");
  const code = await storeCodePackage(
    backends.store,
    flow.bundle,
    flow.displayFile,
    flow.className,
    path.join(backends.localDir, "bundles"),
  );
  const parameters = await plannedParameters(flow, backends.store, env);
  return storeRunPlan(backends.store, {
    ...runPlanOf(flow, setups, code.hash, request.maxNumSplits ?? 100),
    parameters,
  });
}

/** The flow's parameters with the defaults of this moment (`METAFLOW_RUN_*` included); IncludeFile contents stored. */
async function plannedParameters(
  flow: LoadedFlow,
  store: ContentStore,
  env: Env,
): Promise<PlannedParameter[]> {
  const out: PlannedParameter[] = [];
  const scheduled = flow.flowDecorators.some((d) => d.name === "schedule");
  for (const p of flow.parameters) {
    const fromEnv = env[parameterEnvVar(p.name)];
    if (p.kind === "include-file") {
      const [value] = Object.values(resolveParameters([p], {}, env));
      if (value == null) {
        if (p.required)
          throw new DeployError(
            `IncludeFile '${p.name}' has no file`,
            `IncludeFile '${p.name}' is required but has no default: a deployed flow reads its file when it is deployed. Give it a default or set ${parameterEnvVar(p.name)}.`,
          );
        out.push({ ...p });
        continue;
      }
      const hash = (
        await store.put([Buffer.isBuffer(value) ? value : Buffer.from(value as string)])
      ).hash;
      out.push({ ...p, includedHash: hash });
      continue;
    }
    const raw = fromEnv ?? p.default;
    if (raw !== undefined)
      convertParameter(p, raw, fromEnv !== undefined ? parameterEnvVar(p.name) : "the default");
    else if (p.required && scheduled) {
      throw new DeployError(
        `Parameter '${p.name}' needs a default`,
        `Parameter '${p.name}' is required and has no default, so the runs @schedule starts could not be given it. Give it a default (or set ${parameterEnvVar(p.name)} when deploying).`,
      );
    }
    out.push({ ...p, ...(raw !== undefined ? { default: raw } : {}) });
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
  planHash: string,
  existing: DeploymentRecord | undefined,
): PreparedDeployment {
  checkDeploymentRequest(request);
  const { name, project, runTags } = deploymentNames(flow, settings.user, request);
  const known = readKnownToken(settings.metaflowHome, name);
  const token = resolveProductionToken({
    deployment: name,
    user: settings.user,
    ...(existing ? { existing } : {}),
    ...(known !== undefined ? { known } : {}),
    ...(request.authorize !== undefined ? { authorize: request.authorize } : {}),
    ...(request.newToken ? { newToken: true } : {}),
  });
  const namespace = productionNamespace(token.token);
  const setups = buildSetups(flow, request.with ?? [], "context");
  const stepSettings = new Map(
    flow.graph.steps.map((s) => [s.name, stepRunSettings(setups.get(s.name)!.plan)]),
  );
  const stateMachine = compileStateMachine(analyseFlow(flow.graph), stepSettings, {
    deployment: name,
    plan: planHash,
    datastoreRoot: settings.datastoreRoot,
    systemTags: [namespace, ...runTags],
    batch: settings.batch,
    environment: settings.environment,
    secrets: settings.secrets,
    maxWorkers: request.maxWorkers ?? 100,
    maxNumSplits: request.maxNumSplits ?? 100,
  });
  const schedule = flowSchedule(flow);
  return {
    name,
    ...(project ? { project } : {}),
    token,
    namespace,
    stateMachine,
    ...(schedule ? { schedule } : {}),
  };
}

/** Remembers the token on this machine after a successful create, so the next create may reuse it. */
export function rememberToken(settings: DeploySettings, prepared: PreparedDeployment): void {
  storeKnownToken(settings.metaflowHome, prepared.name, prepared.token.token);
}
