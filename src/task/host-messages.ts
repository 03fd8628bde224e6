/**
 * Checks every message the parent receives from a worker host before acting on it: it must carry
 * the host's secret key (so user code that reaches the host's channel cannot forge one) and have
 * the shape of a `HostReply` (so a malformed one is refused, never crashes the runtime).
 */
import type { Encoding } from "../datastore/types.js";
import type { HostReply } from "./protocol.js";

/** A message as checked: the reply, or why it was refused (`forged`: it lacked the host's key). */
export type CheckedMessage = { readonly ok: true; readonly reply: HostReply } | { readonly ok: false; readonly forged: boolean; readonly reason: string };

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === "string";
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const ENCODINGS = new Set<string>(["buffer", "typed", "v8", "json", "bytes"] satisfies Encoding[]);

function isRef(v: unknown): boolean {
  return (
    isObj(v) &&
    isStr(v.name) &&
    isStr(v.hash) &&
    /^[0-9a-f]{64}$/.test(v.hash) &&
    isCount(v.size) &&
    isStr(v.encoding) &&
    ENCODINGS.has(v.encoding) &&
    isStr(v.type) &&
    (v.typedArray === undefined || isStr(v.typedArray)) &&
    (v.serializer === undefined || isStr(v.serializer)) &&
    (v.summary === undefined || isObj(v.summary))
  );
}

function isRefs(v: unknown): boolean {
  return Array.isArray(v) && v.every(isRef);
}

function isTransition(v: unknown): boolean {
  if (!isObj(v)) return false;
  switch (v.kind) {
    case "linear":
      return isStr(v.to);
    case "branch":
      return Array.isArray(v.to) && v.to.every(isStr);
    case "foreach":
      return isStr(v.to) && isCount(v.count) && isRef(v.items);
    case "switch":
      return isStr(v.to) && isStr(v.case);
    case "end":
      return true;
    default:
      return false;
  }
}

function isTimings(v: unknown): boolean {
  return isObj(v) && ["setupMs", "stepMs", "persistMs", "loadMs", "bytesWritten", "bytesLoaded"].every((k) => typeof v[k] === "number");
}

function isError(v: unknown): boolean {
  return isObj(v) && isStr(v.name) && isStr(v.message) && ["code", "headline", "stack", "location"].every((k) => v[k] === undefined || isStr(v[k]));
}

function isIdentity(v: unknown): boolean {
  return isObj(v) && isStr(v.flowName) && isStr(v.runId) && isStr(v.step) && isStr(v.taskId) && isCount(v.attempt);
}

function shapeProblem(m: Obj): string | undefined {
  switch (m.type) {
    case "ready":
      return isCount(m.pid) ? undefined : "a ready message without a pid";
    case "done": {
      if (!isStr(m.taskId) || !isCount(m.attempt) || typeof m.ok !== "boolean") return "a done message without its task, attempt or outcome";
      if (m.retiring !== undefined && typeof m.retiring !== "boolean") return "a done message with a bad retiring flag";
      if (m.ok) return isRefs(m.artifacts) && isTransition(m.transition) && isTimings(m.timings) ? undefined : "a successful done message with bad artifacts, transition or timings";
      const optional = (m.artifacts === undefined || isRefs(m.artifacts)) && (m.timings === undefined || isTimings(m.timings));
      return isError(m.error) && optional ? undefined : "a failed done message with a bad error, artifacts or timings";
    }
    case "stray":
      return isError(m.error) && (m.task === undefined || isIdentity(m.task)) && typeof m.retiring === "boolean" ? undefined : "a stray-error message of the wrong shape";
    default:
      return `a message of unknown type ${JSON.stringify(m.type)}`;
  }
}

/** Parses and checks one message frame of a host whose key is `key`. */
export function checkHostMessage(payload: Buffer, key: string): CheckedMessage {
  let m: unknown;
  try {
    m = JSON.parse(payload.toString("utf8"));
  } catch {
    return { ok: false, forged: true, reason: "a message that is not JSON" };
  }
  if (!isObj(m) || m.key !== key) return { ok: false, forged: true, reason: "a message without the host's key" };
  const problem = shapeProblem(m);
  if (problem) return { ok: false, forged: false, reason: problem };
  const { key: _key, ...reply } = m;
  return { ok: true, reply: reply as unknown as HostReply };
}
