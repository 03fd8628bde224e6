/** Errors the client raises: each names the object (by pathspec) and says what to do instead. */
import { MetaflowError, UsageError } from "../errors.js";

/** What a pathspec addresses. */
export type PathspecKind = "flow" | "run" | "step" | "task" | "artifact";

/** A pathspec that is not `Flow[/run[/step[/task]]]` made of plain names. */
export class MalformedPathspecError extends UsageError {
  constructor(
    readonly pathspec: string,
    readonly expected: string,
    reason: string,
  ) {
    super(`Malformed pathspec ${JSON.stringify(pathspec)}: ${reason}; expected ${expected}`);
  }
}

/** A flow, run, step or task that does not exist. */
export class ObjectNotFoundError extends MetaflowError {
  constructor(
    readonly kind: PathspecKind,
    readonly pathspec: string,
    details?: string,
    headline = `${capitalize(kind)} '${pathspec}' does not exist`,
  ) {
    super("not-found", headline, details ? `${headline}: ${details}` : undefined);
  }
}

/** An artifact name the task does not have; `available` lists the names it does have. */
export class ArtifactNotFoundError extends MetaflowError {
  constructor(
    readonly taskPathspec: string,
    readonly artifact: string,
    readonly available: readonly string[],
  ) {
    super(
      "artifact-not-found",
      `Task '${taskPathspec}' has no artifact '${artifact}'`,
      `Task '${taskPathspec}' has no artifact '${artifact}'; ${available.length ? `its artifacts are: ${available.join(", ")}` : "it stored no artifacts"}`,
    );
  }
}

/** The object exists but belongs to no run in the current namespace. */
export class NamespaceMismatchError extends MetaflowError {
  constructor(
    readonly pathspec: string,
    readonly namespace: string,
  ) {
    super(
      "namespace",
      `'${pathspec}' is not in the current namespace '${namespace}'`,
      `'${pathspec}' is not in the current namespace '${namespace}' (its run has no tag '${namespace}'); call namespace(null) (CLI: --all-namespaces) to read every run, or namespace("user:<name>") to switch`,
    );
  }
}

/** Data that exists only once a task or run finishes was asked for too early (or after a failure). */
export class NotFinishedError extends MetaflowError {
  constructor(
    readonly pathspec: string,
    message: string,
  ) {
    super("not-finished", `'${pathspec}' has no such data yet`, message);
  }
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
