/**
 * Input validation for the metadata service: every name, tag and JSON body is checked here, once,
 * at the boundary, and a bad one becomes a 4xx `HttpError` whose message names the field and value.
 */
import { MAX_ARTIFACT_NAME_LENGTH, artifactNameProblem, nameProblem } from "../graph/names.js";
import { InvalidTagError, validateTag, validateTagText } from "../metadata/tags.js";
import { SERIALIZER_NAME_PATTERN } from "../datastore/serializers.js";
import { MAX_SUMMARY_CHARS, type ArtifactRef } from "../datastore/types.js";
import type { AttemptEnd, AttemptStart, RunEnd, RunRecord } from "../metadata/types.js";

/** An error answered to the client as `{ error: { code, message } }` with HTTP `status`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Extra fields for the error body, e.g. the offending `tag`. */
    readonly detail: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/** A 400 naming the bad field. */
export function badRequest(field: string, message: string): HttpError {
  return new HttpError(400, "invalid-input", `${field} ${message}`);
}

/** Run ids are allocated by the service: decimal numbers that fit a bigint. */
export const RUN_ID_RE = /^[0-9]{1,18}$/;
/** Task ids are chosen by the scheduler: short tokens of letters, digits, `_` and `-`. */
export const TASK_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
/** Most tags (user or system) one run may carry. */
export const MAX_TAGS = 100;
/** Longest free-text field (user, file path, code hash), in characters. */
const MAX_TEXT = 4096;
/** Highest attempt number accepted; retries are capped far lower in practice. */
const MAX_ATTEMPT = 1000;
/** Deepest nesting of objects and arrays in a body; deeper ones cannot even be serialized again. */
export const MAX_JSON_DEPTH = 256;
/** Most artifact batches one attempt end may refer to (`artifactBatches`). */
export const MAX_ARTIFACT_BATCHES = 1000;
/** Timestamps before this (2000-01-01) are not from a run. */
const EARLIEST_MS = Date.UTC(2000, 0, 1);
/** How far ahead of the service's clock a client's clock may be. */
const MAX_CLOCK_SKEW_MS = 24 * 3600 * 1000;

/** A bad value as an error shows it: strings quoted and cut at 80 characters, numbers as such, objects by kind. */
const show = (v: unknown): string => {
  if (typeof v === "string") {
    const s = JSON.stringify(v);
    return s.length > 80 ? `${s.slice(0, 77)}..."` : s;
  }
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object" && v !== null) return "an object";
  return typeof v === "number" || typeof v === "boolean" || v === null || v === undefined ? String(v) : typeof v;
};

function pathName(field: string, v: string, re: RegExp, what: string): string {
  if (!re.test(v)) throw badRequest(field, `must be ${what}, got ${show(v)}`);
  return v;
}

/** Checks a flow or step name with the rule `metaflow check` applies (graph/names.ts). */
function name(field: string, v: unknown): string {
  if (typeof v !== "string") throw badRequest(field, `must be a string, got ${show(v)}`);
  const problem = nameProblem(v);
  if (problem) throw badRequest(field, `${problem}, got ${show(v)}`);
  return v;
}

/** Checks a flow name from the URL. */
export const flowName = (v: string): string => name("flow name", v);
/** Checks a step name from the URL. */
export const stepName = (v: string): string => name("step name", v);
/** Checks a run id from the URL. */
export const runId = (v: string): string => pathName("run id", v, RUN_ID_RE, "a decimal number");
/** Checks a task id from the URL. */
export const taskId = (v: string): string =>
  pathName("task id", v, TASK_ID_RE, "letters, digits, _ or - (at most 64)");
/** Checks an attempt number from the URL. */
export function attemptNo(v: string): number {
  if (!/^[0-9]{1,4}$/.test(v) || Number(v) > MAX_ATTEMPT)
    throw badRequest("attempt", `must be an integer from 0 to ${MAX_ATTEMPT}, got ${show(v)}`);
  return Number(v);
}

type Obj = Record<string, unknown>;

function object(field: string, v: unknown): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw badRequest(
      field,
      `must be a JSON object, got ${Array.isArray(v) ? "an array" : show(v)}`,
    );
  return v as Obj;
}

function text(
  field: string,
  v: unknown,
  opts: { optional?: boolean; max?: number; re?: RegExp } = {},
): void {
  if (v === undefined && opts.optional) return;
  if (typeof v !== "string") throw badRequest(field, `must be a string, got ${show(v)}`);
  const max = opts.max ?? MAX_TEXT;
  if (v.length > max) throw badRequest(field, `must be at most ${max} characters, got ${v.length}`);
  // Control characters have no business in names and would corrupt log lines.
  if (/\p{Cc}/u.test(v))
    throw badRequest(field, `must not contain control characters, got ${show(v)}`);
  if (opts.re && !opts.re.test(v)) throw badRequest(field, `has a bad format: ${show(v)}`);
}

function integer(field: string, v: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): void {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    throw badRequest(field, `must be an integer from ${min} to ${max}, got ${show(v)}`);
  }
}

/** A time in milliseconds since the epoch, between 2000 and a day ahead of the service's clock. */
function timestamp(field: string, v: unknown): void {
  const latest = Date.now() + MAX_CLOCK_SKEW_MS;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < EARLIEST_MS || v > latest) {
    throw badRequest(
      field,
      `must be an integer time in milliseconds since 1970, from ${EARLIEST_MS} (2000-01-01) to ${latest} (a day from now), got ${typeof v === "number" ? v : show(v)}`,
    );
  }
}

/** Throws a 400 when `v` nests objects and arrays deeper than `MAX_JSON_DEPTH` (checked without recursion). */
export function checkDepth(v: unknown): void {
  const stack: Array<[unknown, number]> = [[v, 1]];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [value, depth] = item;
    if (typeof value !== "object" || value === null) continue;
    if (depth > MAX_JSON_DEPTH) {
      throw badRequest("body", `nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep`);
    }
    for (const child of Object.values(value)) stack.push([child, depth + 1]);
  }
}

function array(field: string, v: unknown, max: number): unknown[] {
  if (!Array.isArray(v)) throw badRequest(field, `must be an array, got ${show(v)}`);
  if (v.length > max) throw badRequest(field, `must have at most ${max} elements, got ${v.length}`);
  return v;
}

function oneOf(field: string, v: unknown, allowed: readonly string[]): void {
  if (typeof v !== "string" || !allowed.includes(v))
    throw badRequest(field, `must be one of ${allowed.join(", ")}, got ${show(v)}`);
}

/**
 * Checks one tag with the same rules as every other provider (non-empty, bounded, printable; a
 * user tag also outside the system-tag namespaces).
 */
export function tag(field: string, v: unknown, kind: "user" | "system" = "user"): string {
  if (typeof v !== "string") throw badRequest(field, `must be a string, got ${show(v)}`);
  try {
    if (kind === "user") validateTag(v);
    else validateTagText(v);
  } catch (err) {
    if (err instanceof InvalidTagError)
      throw badRequest(field, `is not a valid tag: ${err.message}`);
    throw err;
  }
  return v;
}

/** Checks a list of tags and returns it without duplicates, in first-seen order. */
export function tagList(field: string, v: unknown, kind: "user" | "system" = "user"): string[] {
  const list = array(field, v, MAX_TAGS).map((t, i) => tag(`${field}[${i}]`, t, kind));
  return [...new Set(list)];
}

/** The encodings readers know how to decode (`Encoding` in datastore/types.ts). */
const ENCODINGS = ["buffer", "typed", "v8", "json", "bytes"] as const;
/** A content hash: sha256 as lowercase hex, as the content-addressed store computes it. */
const HASH_RE = /^[0-9a-f]{64}$/;

/** Artifact refs are produced by the runtime; check the fields readers rely on. */
function artifactRefs(field: string, v: unknown): void {
  array(field, v, 100_000).forEach((r, i) => {
    const at = `${field}[${i}]`;
    const o = object(at, r);
    text(`${at}.name`, o.name, { max: MAX_ARTIFACT_NAME_LENGTH });
    const problem = artifactNameProblem(o.name as string);
    if (problem) throw badRequest(`${at}.name`, problem);
    if (typeof o.hash !== "string" || !HASH_RE.test(o.hash))
      throw badRequest(`${at}.hash`, `must be a sha256 hash (64 lowercase hex digits), got ${show(o.hash)}`);
    integer(`${at}.size`, o.size);
    oneOf(`${at}.encoding`, o.encoding, ENCODINGS);
    text(`${at}.type`, o.type, { max: 1024 });
    text(`${at}.typedArray`, o.typedArray, { optional: true, max: 64 });
    if (o.serializer === undefined) {
      if (o.encoding === "bytes")
        throw badRequest(`${at}.serializer`, `must name the serializer that wrote an artifact with encoding "bytes", got none`);
    } else if (typeof o.serializer !== "string" || !SERIALIZER_NAME_PATTERN.test(o.serializer)) {
      throw badRequest(
        `${at}.serializer`,
        `must be 1 to 100 letters, digits or ".-_@/" starting with a letter or digit, got ${show(o.serializer)}`,
      );
    }
    if (o.summary !== undefined) {
      object(`${at}.summary`, o.summary);
      const chars = JSON.stringify(o.summary).length;
      if (chars > MAX_SUMMARY_CHARS)
        throw badRequest(`${at}.summary`, `must be at most ${MAX_SUMMARY_CHARS} characters as JSON, got ${chars}`);
    }
  });
}

function plainError(field: string, v: unknown): void {
  if (v === undefined) return;
  const o = object(field, v);
  text(`${field}.name`, o.name, { max: 1024 });
  if (typeof o.message !== "string")
    throw badRequest(`${field}.message`, `must be a string, got ${show(o.message)}`);
}

/** The body of `POST /runs`: a run record without its id (the service allocates it). */
export function newRunBody(flow: string, v: unknown): Omit<RunRecord, "runId"> {
  const o = object("body", v);
  if (o.flow !== undefined && o.flow !== flow)
    throw badRequest("body.flow", `must match the flow in the URL (${flow}), got ${show(o.flow)}`);
  text("body.user", o.user, { max: 256 });
  if ((o.user as string).length === 0) throw badRequest("body.user", "must not be empty");
  timestamp("body.createdAt", o.createdAt);
  object("body.parameters", o.parameters);
  artifactRefs("body.parameterRefs", o.parameterRefs);
  tagList("body.systemTags", o.systemTags, "system");
  tagList("body.tags", o.tags);
  text("body.codePackage", o.codePackage, { max: 256 });
  text("body.flowFile", o.flowFile);
  name("body.className", o.className);
  text("body.originRunId", o.originRunId, { optional: true, re: RUN_ID_RE });
  text("body.runPlan", o.runPlan, { optional: true, max: 256 });
  // Its presence alone exempts the run from the heartbeat timeout, so `null` must not slip through.
  text("body.orchestrator", o.orchestrator, { optional: true, max: 64, re: /^[a-z0-9][a-z0-9_-]*$/ });
  return { ...(o as unknown as Omit<RunRecord, "runId">), flow };
}

/** The body of `PUT .../end`: how the run ended. */
export function runEndBody(v: unknown): RunEnd {
  const o = object("body", v);
  oneOf("body.status", o.status, ["completed", "failed"]);
  timestamp("body.finishedAt", o.finishedAt);
  if (o.failedStep !== undefined) name("body.failedStep", o.failedStep);
  plainError("body.error", o.error);
  return o as unknown as RunEnd;
}

/** A body object whose `attempt` matches the attempt number in the URL. */
function attemptObject(attempt: number, v: unknown): Record<string, unknown> {
  const o = object("body", v);
  integer("body.attempt", o.attempt, 0, MAX_ATTEMPT);
  if (o.attempt !== attempt) {
    throw badRequest(
      "body.attempt",
      `must match the attempt in the URL (${attempt}), got ${show(o.attempt)}`,
    );
  }
  return o;
}

/** The body of `PUT .../attempts/<n>/start`. */
export function attemptStartBody(attempt: number, v: unknown): AttemptStart {
  const o = attemptObject(attempt, v);
  timestamp("body.startedAt", o.startedAt);
  integer("body.pid", o.pid);
  array("body.parents", o.parents, 100_000).forEach((p, i) =>
    text(`body.parents[${i}]`, p, { max: 1024 }),
  );
  array("body.frames", o.frames, 1000).forEach((f, i) => object(`body.frames[${i}]`, f));
  return o as unknown as AttemptStart;
}

/** The body of `PUT .../attempts/<n>/end`, including the artifact index. */
export function attemptEndBody(attempt: number, v: unknown): AttemptEnd {
  const o = attemptObject(attempt, v);
  timestamp("body.finishedAt", o.finishedAt);
  oneOf("body.status", o.status, ["completed", "failed"]);
  artifactRefs("body.artifacts", o.artifacts);
  if (o.artifactBatches !== undefined) integer("body.artifactBatches", o.artifactBatches, 1, MAX_ARTIFACT_BATCHES);
  if (o.transition !== undefined)
    oneOf("body.transition.kind", object("body.transition", o.transition).kind, [
      "linear",
      "branch",
      "foreach",
      "switch",
      "end",
    ]);
  plainError("body.error", o.error);
  text("body.clonedFrom", o.clonedFrom, { optional: true, max: 1024 });
  return o as unknown as AttemptEnd;
}

/** The body of `PUT .../attempts/<n>/artifacts/<batch>`: part of an attempt's artifact index, sent before its end. */
export function artifactBatchBody(v: unknown): ArtifactRef[] {
  const o = object("body", v);
  artifactRefs("body.artifacts", o.artifacts);
  return o.artifacts as ArtifactRef[];
}

/** Checks a batch number from the URL. */
export function batchNo(v: string): number {
  if (!/^[0-9]{1,4}$/.test(v) || Number(v) >= MAX_ARTIFACT_BATCHES)
    throw badRequest("batch", `must be an integer from 0 to ${MAX_ARTIFACT_BATCHES - 1}, got ${show(v)}`);
  return Number(v);
}

/** Checks the Idempotency-Key header of `POST /runs` (absent is fine): the rule of `NewRunOptions.idempotencyKey`. */
export function idempotencyKey(v: string | string[] | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !/^[A-Za-z0-9_-]{8,128}$/.test(v)) {
    throw badRequest(
      "Idempotency-Key header",
      `must be 8 to 128 letters, digits, _ or - (one per request, e.g. a UUID), got ${typeof v === "string" ? show(v) : "several"}`,
    );
  }
  return v;
}

/** The body of `POST .../tags`: tags to add and to remove, applied atomically. */
export function tagUpdateBody(v: unknown): { add: string[]; remove: string[] } {
  const o = object("body", v);
  const add = o.add === undefined ? [] : tagList("body.add", o.add);
  // Any tag may be named for removal: a system tag gets its own refusal, and a user tag made
  // before the system namespaces were reserved must be removable.
  const remove = o.remove === undefined ? [] : tagList("body.remove", o.remove, "system");
  return { add, remove };
}
