/**
 * Shape checks for metadata records read back from storage: a record that parses as JSON but lacks
 * the fields readers rely on is as unreadable as a truncated one, and must be reported as such
 * (naming the file) rather than fail later with a `TypeError` far from its cause.
 */

/** Returns why `value` is not a usable record, or undefined when it is. */
export type ShapeCheck = (value: unknown) => string | undefined;

type Kind = "string" | "number" | "array" | "object";

function fields(
  spec: Readonly<Record<string, Kind>>,
  optional: Readonly<Record<string, Kind>> = {},
): ShapeCheck {
  return (value) => {
    if (typeof value !== "object" || value === null || Array.isArray(value))
      return "does not hold a JSON object";
    const o = value as Record<string, unknown>;
    for (const [name, kind] of Object.entries(spec)) {
      if (!isKind(o[name], kind)) return `has no ${kind} field '${name}'`;
    }
    for (const [name, kind] of Object.entries(optional)) {
      if (o[name] !== undefined && !isKind(o[name], kind))
        return `has a field '${name}' that is not a ${kind}`;
    }
    return undefined;
  };
}

function isKind(v: unknown, kind: Kind): boolean {
  if (kind === "array") return Array.isArray(v);
  if (kind === "object") return typeof v === "object" && v !== null && !Array.isArray(v);
  return typeof v === kind;
}

/** `_run.json`. */
export const runRecordShape = fields({
  flow: "string",
  runId: "string",
  user: "string",
  createdAt: "number",
  parameters: "object",
  parameterRefs: "array",
  systemTags: "array",
  tags: "array",
});

/** `_end.json`. */
export const runEndShape = fields({ status: "string", finishedAt: "number" }, { error: "object" });

/** `attempt-N.start.json`. */
export const attemptStartShape = fields({
  attempt: "number",
  startedAt: "number",
  parents: "array",
  frames: "array",
});

/** `attempt-N.end.json`. */
export const attemptEndShape = fields(
  { attempt: "number", finishedAt: "number", status: "string", artifacts: "array" },
  { error: "object" },
);

/** `_tags.json`: the run's edited user tags. */
export const tagListShape: ShapeCheck = (value) =>
  Array.isArray(value) && value.every((t) => typeof t === "string")
    ? undefined
    : "does not hold a list of tags";
