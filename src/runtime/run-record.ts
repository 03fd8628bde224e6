/**
 * The run record: what a run writes when it starts (its code package, parameters, tags, id) and
 * when it ends (its status), and the summary line the console prints.
 */
import * as path from "node:path";
import type { Backends } from "../backends.js";
import { VERSION } from "../config.js";
import { artifactRef } from "../datastore/cas.js";
import { storeCodePackage } from "../datastore/code-package.js";
import type { ArtifactRef } from "../datastore/types.js";
import type { PlainError } from "../errors.js";
import type { AttemptEnd, AttemptStart, RunRecord, SplitFrame } from "../metadata/types.js";
import type { AttemptOutcome } from "../launchers/types.js";
import type { LoadedFlow } from "./load-flow.js";

/** A run as it starts. */
export interface StartedRun {
  readonly runId: string;
  readonly createdAt: number;
  readonly systemTags: readonly string[];
  readonly parameterRefs: readonly ArtifactRef[];
  /** Local path of the bundle worker hosts compile. */
  readonly bundlePath: string;
  /** Hash of the stored code package. */
  readonly codePackage: string;
  /** Hash of the stored run plan. */
  readonly runPlan: string;
}

/** What a run starts with. */
export interface RunStart {
  readonly flow: LoadedFlow;
  readonly backends: Backends;
  readonly user: string;
  readonly parameters: Readonly<Record<string, unknown>>;
  readonly tags: readonly string[];
  /** System tags besides the usual ones (from the flow decorators, e.g. `project:...`). @default [] */
  readonly runTags?: readonly string[];
  /** The run a resume continues: its parameters are reused. */
  readonly origin?: RunRecord;
  /** Called once the code and parameters are stored, before the run record exists. */
  readonly beforeRecord?: () => Promise<void>;
  /** Stores the run plan for the stored code package and returns its hash. */
  readonly storePlan: (codePackage: string) => Promise<string>;
}

/** Stores the code package and the parameters, then records the run and returns its id. */
export async function startRun(start: RunStart): Promise<StartedRun> {
  const { flow, backends, origin } = start;
  const code = await storeCodePackage(backends.store, flow.bundle, flow.displayFile, flow.className, path.join(backends.localDir, "bundles"));
  const parameterRefs: ArtifactRef[] = origin ? [...origin.parameterRefs] : [];
  for (const p of origin ? [] : flow.parameters) {
    parameterRefs.push(artifactRef(p.field, await backends.store.putValue(start.parameters[p.name])));
  }
  const runPlan = await start.storePlan(code.hash);
  await start.beforeRecord?.();
  const createdAt = Date.now();
  const systemTags = [
    `user:${start.user}`,
    `metaflow_version:${VERSION}`,
    `node_version:${process.versions.node}`,
    `runtime:dev`,
    `date:${new Date(createdAt).toISOString().slice(0, 10)}`,
    ...(start.runTags ?? []),
  ];
  const runId = await backends.metadata.newRun({
    flow: flow.className,
    user: start.user,
    createdAt,
    parameters: origin ? origin.parameters : summariseParameters(flow, start.parameters),
    parameterRefs,
    systemTags,
    tags: [...start.tags],
    codePackage: code.hash,
    flowFile: flow.displayFile,
    className: flow.className,
    ...(origin ? { originRunId: origin.runId } : {}),
    runPlan,
  });
  return { runId, createdAt, systemTags, parameterRefs, bundlePath: code.bundlePath, codePackage: code.hash, runPlan };
}

/** Records how the run ended. */
export async function finishRun(
  backends: Backends,
  flow: string,
  runId: string,
  failure: { readonly step: string; readonly error: PlainError } | undefined,
  interrupted: boolean,
): Promise<"completed" | "failed"> {
  const status = failure || interrupted ? "failed" : "completed";
  await backends.metadata.finishRun(flow, runId, {
    status,
    finishedAt: Date.now(),
    ...(failure ? { failedStep: failure.step, error: failure.error } : {}),
  });
  return status;
}

/** `Done! Flow/7: 12 tasks (and 3 cloned from run 5), 1 retried attempt in 0.42 s.` */
export function doneLine(pathspec: string, tasks: number, attempts: number, cloned: number, originRunId: string | undefined, wallMs: number): string {
  const clones = cloned > 0 ? ` (and ${cloned} cloned from run ${originRunId})` : "";
  const retried = attempts - tasks;
  const retries = retried > 0 ? `, ${retried} retried attempt${retried === 1 ? "" : "s"}` : "";
  return `Done! ${pathspec}: ${tasks} tasks${clones}${retries} in ${(wallMs / 1000).toFixed(2)} s.`;
}

function summariseParameters(flow: LoadedFlow, values: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of flow.parameters) {
    const v = values[p.name];
    if (p.kind === "include-file") {
      out[p.name] = v == null ? null : `<included file, ${(v as string | Buffer).length} ${typeof v === "string" ? "chars" : "bytes"}>`;
    } else {
      out[p.name] = v;
    }
  }
  return out;
}

/** The record of an attempt as it starts: where it ran, its parents, its split frames. */
export function attemptStart(
  flow: string,
  runId: string,
  task: { readonly attempt: number; readonly parents: readonly { step: string; taskId: string }[]; readonly frames: readonly SplitFrame[] },
  pid: number,
): AttemptStart {
  return {
    attempt: task.attempt,
    startedAt: Date.now(),
    pid,
    parents: task.parents.filter((p) => p.step !== "_parameters").map((p) => `${flow}/${runId}/${p.step}/${p.taskId}`),
    frames: task.frames,
  };
}

/** The record of an attempt as it ends: its artifacts and transition, or its error. */
export function attemptEnd(attempt: number, outcome: AttemptOutcome, error: PlainError | undefined): AttemptEnd {
  return {
    attempt,
    finishedAt: Date.now(),
    ...(outcome.ok
      ? { status: "completed", artifacts: outcome.artifacts, transition: outcome.transition }
      : { status: "failed", artifacts: outcome.artifacts ?? [], error: error ?? outcome.error }),
  };
}
