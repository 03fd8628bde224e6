/** Errors the parent gives a task it stopped. */
import type { PlainError } from "../errors.js";

/** The error of an attempt stopped at its time limit. */
export function timeoutError(step: string, timeoutMs: number): PlainError {
  return {
    name: "TimeoutError",
    code: "timeout",
    message: `Step '${step}' timed out after ${timeoutMs / 1000} s (its @timeout limit) and was stopped`,
  };
}

/** The error of an attempt the runtime stopped because the whole run was stopping. */
export function cancelledError(step: string, why: string): PlainError {
  return { name: "Cancelled", code: "cancelled", message: `Step '${step}' was stopped because ${why}` };
}
