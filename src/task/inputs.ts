/**
 * A join's `inputs` (one lazy, read-only view per incoming task, by position and by step name)
 * and `mergeArtifacts`, which carries over the artifacts the inputs agree on — all or nothing.
 */
import type { ArtifactRef } from "../datastore/types.js";
import { StepRuntimeError } from "../errors.js";
import type { MergeOptions } from "../flow/flowspec.js";
import type { ArtifactLoader, ArtifactSlots } from "./artifacts.js";
import type { ParentTask } from "./protocol.js";

const INPUT_REFS = Symbol("inputRefs");
const INPUT_STEP = Symbol("inputStep");

/** Builds the join's `inputs`: an array of the step's realm, frozen, with a view per parent. */
export function makeInputs(parents: readonly ParentTask[], loader: ArtifactLoader, array: <T>(items: readonly T[]) => T[]): unknown {
  const views = parents.map((parent) => {
    const cache = new Map<string, unknown>();
    const frame = parent.frames[parent.frames.length - 1];
    const view: Record<string, unknown> = {};
    for (const ref of parent.artifacts) {
      Object.defineProperty(view, ref.name, {
        enumerable: true,
        get() {
          if (!cache.has(ref.name)) cache.set(ref.name, loader.load(ref));
          return cache.get(ref.name);
        },
      });
    }
    const foreach = frame?.kind === "foreach" ? frame : undefined;
    Object.defineProperty(view, "input", {
      get: () => (foreach?.items ? loader.loadElement(foreach.items, foreach.index) : undefined),
    });
    Object.defineProperty(view, "index", { get: () => foreach?.index });
    Object.defineProperty(view, INPUT_REFS, { value: new Map(parent.artifacts.map((r) => [r.name, r])) });
    Object.defineProperty(view, INPUT_STEP, { value: parent.step });
    return Object.freeze(view);
  });
  // An array of the step's own realm, so `inputs instanceof Array` holds there.
  const inputs = array(views) as unknown as Record<string, unknown>;
  for (const v of views) {
    const stepName = (v as Record<symbol, string>)[INPUT_STEP]!;
    if (!(stepName in inputs)) Object.defineProperty(inputs, stepName, { value: v, enumerable: false });
  }
  return Object.freeze(inputs);
}

function names(list: Iterable<string>): string {
  return [...list].map((c) => `'${c}'`).join(", ");
}

/** Every artifact by name across the inputs (parameters excluded), or a TypeError for a wrong argument. */
function candidatesOf(inputs: unknown, slots: ArtifactSlots): Map<string, ArtifactRef[]> {
  if (!Array.isArray(inputs)) throw new TypeError("mergeArtifacts(inputs): pass the join's inputs argument");
  const candidates = new Map<string, ArtifactRef[]>();
  for (const input of inputs as ReadonlyArray<Record<symbol, Map<string, ArtifactRef> | undefined>>) {
    const refs = input?.[INPUT_REFS];
    if (!refs) throw new TypeError("mergeArtifacts(inputs): pass the join's inputs argument");
    for (const [name, ref] of refs) {
      if (slots.isParameter(name)) continue;
      const arr = candidates.get(name) ?? [];
      arr.push(ref);
      candidates.set(name, arr);
    }
  }
  return candidates;
}

/**
 * Sets on the join every artifact whose value is the same in all inputs that have it. Every
 * artifact is checked first: when any differs, nothing is set and the error names each conflict.
 */
export function mergeArtifacts(
  step: string,
  isJoin: boolean,
  flow: Record<string, unknown>,
  slots: ArtifactSlots,
  inputs: unknown,
  options: MergeOptions,
): void {
  if (!isJoin) {
    throw new StepRuntimeError("merge-not-join", `Step '${step}' is not a join`, `mergeArtifacts() can only be called in a join step`);
  }
  if (options.include !== undefined && options.exclude !== undefined) {
    throw new StepRuntimeError(
      "merge-include-exclude",
      `mergeArtifacts: include and exclude are mutually exclusive`,
      `Step '${step}': mergeArtifacts() was given both include (${names(options.include)}) and exclude (${names(options.exclude)}); give one of them`,
    );
  }
  const candidates = candidatesOf(inputs, slots);
  const exclude = new Set(options.exclude ?? []);
  const include = options.include ? new Set(options.include) : undefined;
  const missing = [...(include ?? [])].filter((name) => !candidates.has(name));
  if (missing.length > 0) {
    throw new StepRuntimeError(
      "merge-missing",
      `mergeArtifacts: ${missing.length > 1 ? "artifacts" : "artifact"} ${names(missing)} ${missing.length > 1 ? "are" : "is"} in no input`,
      `Step '${step}': mergeArtifacts({ include }) names ${names(missing)}, which no input has; inputs have: ${[...candidates.keys()].join(", ") || "(none)"}`,
    );
  }
  const agreed: ArtifactRef[] = [];
  const conflicts: string[] = [];
  for (const [name, refs] of candidates) {
    if (exclude.has(name) || (include && !include.has(name))) continue;
    // An artifact the join already set wins over the inputs'.
    if (Object.prototype.hasOwnProperty.call(flow, name) && !slots.isWiredInput(name)) continue;
    if (new Set(refs.map((r) => r.hash)).size > 1) conflicts.push(name);
    else agreed.push(refs[0]!);
  }
  if (conflicts.length > 0) {
    throw new StepRuntimeError(
      "merge-conflict",
      `mergeArtifacts: artifact${conflicts.length > 1 ? "s" : ""} ${names(conflicts)} differ between inputs`,
      `Step '${step}': the inputs disagree on ${names(conflicts)}, so nothing was merged; set ${conflicts.map((c) => `this.${c}`).join(", ")} in the join before calling mergeArtifacts, or pass { exclude: [${conflicts.map((c) => JSON.stringify(c)).join(", ")}] }`,
    );
  }
  for (const ref of agreed) slots.wire(ref);
}
