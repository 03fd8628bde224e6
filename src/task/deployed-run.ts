/**
 * The run of a deployed flow, from the task side: no parent process exists, so the tasks record the
 * run themselves. The start task creates it from the execution (idempotently: a retried start task
 * gets the same run), with parameters resolved as `metaflow run` resolves them; tasks write output
 * documents for the state machine to steer by; the end task finishes the run, and the run-failed
 * state records a failure.
 */
import { createHash } from "node:crypto";
import type { Backends } from "../backends.js";
import { currentUser, VERSION } from "../config.js";
import { artifactRef } from "../datastore/cas.js";
import type { ArtifactRef } from "../datastore/types.js";
import { ParameterError, UsageError } from "../errors.js";
import type { TakenTransition } from "../metadata/types.js";
import type { RunSelector, TaskOutputDocument } from "./command.js";
import { resolveParameters } from "./parameters.js";
import type { PlannedParameter, RunPlan } from "./run-plan.js";
import { startOutputKey } from "./task-ids.js";

type Env = Readonly<Record<string, string | undefined>>;

/** Who drives deployed runs (recorded in the run, which then needs no heartbeats). */
export const STEP_FUNCTIONS = "step-functions";

/** The idempotency key of an execution's run: the execution ARN is too long and has `:`. */
export function executionRunKey(executionId: string): string {
  return `sfn-${createHash("sha256").update(executionId).digest("hex").slice(0, 48)}`;
}

/**
 * Creates the run of a Step Functions execution, or returns it when a retried start task created it
 * already. A bad parameter value fails here with the message `metaflow run` gives.
 */
export async function startDeployedRun(
  backends: Backends,
  plan: RunPlan,
  planHash: string,
  selector: Extract<RunSelector, { kind: "new" }>,
  env: Env,
): Promise<string> {
  let given: unknown;
  try {
    given = JSON.parse(selector.parameters);
  } catch (err) {
    throw new UsageError(
      `metaflow task: --parameters must be a JSON object, got ${JSON.stringify(selector.parameters)}: ${(err as Error).message}`,
    );
  }
  if (typeof given !== "object" || given === null || Array.isArray(given)) {
    throw new UsageError(
      `metaflow task: --parameters must be a JSON object such as {"alpha": "0.1"}, got ${selector.parameters}`,
    );
  }
  const values = await resolvePlanned(
    backends,
    plan.parameters ?? [],
    given as Record<string, unknown>,
  );
  const parameterRefs: ArtifactRef[] = [];
  const summary: Record<string, unknown> = {};
  for (const p of plan.parameters ?? []) {
    const v = values.get(p.name);
    parameterRefs.push(artifactRef(p.field, await backends.store.putValue(v)));
    summary[p.name] =
      p.kind === "include-file" && v != null
        ? `<included file, ${(v as string | Buffer).length} ${typeof v === "string" ? "chars" : "bytes"}>`
        : v;
  }
  const user = currentUser(env);
  const createdAt = Date.now();
  return backends.metadata.newRun(
    {
      flow: plan.flowName,
      user,
      createdAt,
      parameters: summary,
      parameterRefs,
      systemTags: [
        `user:${user}`,
        `metaflow_version:${VERSION}`,
        `node_version:${process.versions.node}`,
        `runtime:${STEP_FUNCTIONS}`,
        `date:${new Date(createdAt).toISOString().slice(0, 10)}`,
        ...selector.systemTags,
      ],
      tags: [],
      codePackage: plan.codePackage,
      flowFile: plan.flowFile,
      className: plan.className,
      runPlan: planHash,
      orchestrator: STEP_FUNCTIONS,
    },
    { idempotencyKey: executionRunKey(selector.executionId) },
  );
}

/** Parameter values: given ones converted, the rest from the plan's defaults; IncludeFile contents from the datastore. */
async function resolvePlanned(
  backends: Backends,
  specs: readonly PlannedParameter[],
  given: Record<string, unknown>,
): Promise<Map<string, unknown>> {
  const plain = specs.filter((s) => s.kind !== "include-file");
  for (const s of specs) {
    if (s.kind === "include-file" && given[s.name] !== undefined) {
      throw new ParameterError(
        s.name,
        `IncludeFile '${s.name}' is read when the flow is deployed, so a run cannot be given another file; deploy again with the new file as its default`,
      );
    }
  }
  const known = new Set(plain.map((s) => s.name));
  const unknown = Object.keys(given).find((k) => !known.has(k) && !specs.some((s) => s.name === k));
  if (unknown !== undefined) {
    throw new ParameterError(
      unknown,
      `The flow has no parameter '${unknown}'; its parameters are: ${specs.map((s) => s.name).join(", ") || "(none)"}`,
    );
  }
  // Defaults (and METAFLOW_RUN_* values) were fixed when the flow was deployed: no environment here.
  const resolved = resolveParameters(plain, given, {});
  const out = new Map<string, unknown>(Object.entries(resolved));
  for (const s of specs) {
    if (s.kind !== "include-file") continue;
    if (s.includedHash === undefined) {
      out.set(s.name, null);
      continue;
    }
    const bytes = await backends.store.get(s.includedHash);
    out.set(s.name, s.isText === false ? bytes : bytes.toString("utf8"));
  }
  return out;
}

/** The output document of a task that took `transition`. */
export function outputDocument(
  runId: string,
  step: string,
  taskId: string,
  transition: TakenTransition | undefined,
): TaskOutputDocument {
  return {
    runId,
    step,
    taskId,
    ...(transition?.kind === "foreach"
      ? { splits: Array.from({ length: transition.count }, (_, i) => i) }
      : {}),
    ...(transition?.kind === "switch" ? { case: transition.case } : {}),
  };
}

/**
 * Writes an output document where the state machine reads it (a datastore key, strongly consistent
 * on S3); the key was checked with the command's flags (`outputKeyProblem`), before the run began.
 */
export async function writeOutputDocument(
  backends: Backends,
  key: string,
  doc: TaskOutputDocument,
): Promise<void> {
  await backends.storage.put(key, Buffer.from(JSON.stringify(doc)));
}

/**
 * Records the run of a failed execution as failed (when the start task created one and nothing
 * ended it yet); returns the run id, or undefined when the execution created no run.
 */
export async function recordRunFailed(
  backends: Backends,
  plan: RunPlan,
  executionId: string,
  error: string,
): Promise<string | undefined> {
  const key = startOutputKey(executionId);
  if (key === undefined) {
    throw new UsageError(
      `metaflow task: --run-failed-for takes an execution ARN (arn:aws:states:<region>:<account>:execution:<state machine>:<name>), got ${JSON.stringify(executionId)}`,
    );
  }
  const doc = await backends.storage.get(key);
  if (!doc) return undefined;
  const { runId } = JSON.parse(doc.toString("utf8")) as TaskOutputDocument;
  if (await backends.metadata.getRunEnd(plan.flowName, runId)) return runId;
  await backends.metadata.finishRun(plan.flowName, runId, {
    status: "failed",
    finishedAt: Date.now(),
    error: {
      name: error,
      code: "step-functions",
      message: `The Step Functions execution ${executionId} failed with ${error}; the failed task's logs say why (metaflow logs ${plan.flowName}/${runId}/<step>)`,
    },
  });
  return runId;
}
