/** Pathspecs: `Flow/run/step/task[/artifact]`, the address of every object the client reads. */
import { MalformedPathspecError, type PathspecKind } from "./errors.js";

const DEPTH: Record<PathspecKind, number> = { flow: 1, run: 2, step: 3, task: 4, artifact: 5 };
const SHAPE: Record<PathspecKind, string> = {
  flow: "Flow",
  run: "Flow/runId",
  step: "Flow/runId/step",
  task: "Flow/runId/step/taskId",
  artifact: "Flow/runId/step/taskId/artifact",
};
// Parts become directory names, so anything that could climb out of the datastore is refused.
const PART = /^[A-Za-z0-9_][A-Za-z0-9_.:-]*$/;

/** Splits `pathspec` into its parts; the count must fit one of `kinds`. */
export function parsePathspec(pathspec: unknown, ...kinds: PathspecKind[]): string[] {
  const expected = kinds.map((k) => SHAPE[k]).join(" or ");
  if (typeof pathspec !== "string") {
    throw new MalformedPathspecError(String(pathspec), expected, `a pathspec is a string, got ${typeof pathspec}`);
  }
  const parts = pathspec.split("/");
  if (!kinds.some((k) => DEPTH[k] === parts.length)) {
    throw new MalformedPathspecError(pathspec, expected, `it has ${parts.length} part${parts.length === 1 ? "" : "s"}`);
  }
  const bad = parts.find((p) => !PART.test(p));
  if (bad !== undefined) {
    throw new MalformedPathspecError(
      pathspec,
      expected,
      bad === "" ? "it has an empty part" : `${JSON.stringify(bad)} is not a name (letters, digits, _ . : -)`,
    );
  }
  return parts;
}

/** The kind of object a pathspec with `parts` parts addresses. */
export function kindOfDepth(parts: number): PathspecKind | undefined {
  return (Object.keys(DEPTH) as PathspecKind[]).find((k) => DEPTH[k] === parts);
}
