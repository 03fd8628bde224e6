/**
 * What happens after an attempt fails, decided in one place from the plan that `@retry` and
 * `@catchError` (or any decorator) shaped: run it again, go on without it, or fail the run.
 */
import type { TaskPlan } from "./contract.js";

/** The decision after a failed attempt. */
export type AfterFailure =
  /** Run the task again as attempt `attempt`, not before `delayMs` from now. */
  | { readonly kind: "retry"; readonly attempt: number; readonly delayMs: number }
  /**
   * Every attempt failed but the step recovers: attempt `attempt` stores the error in `storeIn`
   * (when given) instead of running the step, and the flow goes on.
   */
  | { readonly kind: "recover"; readonly attempt: number; readonly storeIn: string | undefined; readonly print: boolean }
  /** The task fails, and with it the run. */
  | { readonly kind: "fail" };

/**
 * Decides what follows the failure of attempt `attempt` (0-based). `recovering` is true when the
 * failed attempt was itself the one storing a caught error: that one is never retried again.
 */
export function afterFailure(plan: Pick<TaskPlan, "retries" | "retryDelayMs" | "onFailure">, attempt: number, recovering: boolean): AfterFailure {
  if (recovering) return { kind: "fail" };
  if (attempt < plan.retries) return { kind: "retry", attempt: attempt + 1, delayMs: plan.retryDelayMs ?? 0 };
  if (plan.onFailure) {
    return { kind: "recover", attempt: attempt + 1, storeIn: plan.onFailure.storeIn, print: plan.onFailure.print };
  }
  return { kind: "fail" };
}

/** The console line that announces a decision (after the task's prefix). */
export function describeDecision(decision: AfterFailure, plan: Pick<TaskPlan, "retries">): string {
  switch (decision.kind) {
    case "retry":
      return `Task failed; retrying (attempt ${decision.attempt + 1} of ${plan.retries + 1}).`;
    case "recover":
      return decision.storeIn === undefined
        ? "Task failed; @catchError lets the flow go on (no var: the error is not stored)."
        : `Task failed; @catchError stores the error in '${decision.storeIn}' and the flow goes on.`;
    case "fail":
      return "Task failed.";
  }
}
