/**
 * `@retry({ times, minutesBetweenRetries })`: a failed task (a throw, a rejection, a crash, a
 * timeout) runs again, up to `times` more attempts. `current.retryCount` tells which attempt runs.
 */
import { checkKeys, numberOption } from "./contract.js";
import { stepDecorator } from "./make.js";

/** Options of `@retry`. */
export interface RetryOptions {
  /** Extra attempts after the first one fails, from 0 to 4. @default 3 */
  times?: number;
  /**
   * Minutes to wait before each retry. Locally the wait applies only when this is given, so a
   * local retry starts at once by default. @default 2
   */
  minutesBetweenRetries?: number;
}

/** Most retries a step may ask for. */
const MAX_TIMES = 4;

interface ParsedRetry {
  readonly times: number;
  readonly minutesBetweenRetries: number;
  readonly waitSet: boolean;
}

/** Runs a failed task again, up to `times` more attempts. */
export const retry = stepDecorator<RetryOptions, ParsedRetry>({
  name: "retry",
  help: "retry:times=N,minutesBetweenRetries=M runs a failed task again (times 0-4, default 3)",
  parse(raw) {
    checkKeys("retry", raw, ["times", "minutesBetweenRetries"]);
    const times = numberOption("retry", "times", raw.times) ?? 3;
    if (!Number.isInteger(times) || times < 0 || times > MAX_TIMES) {
      throw new Error(`@retry.times must be an integer from 0 to ${MAX_TIMES}, got ${JSON.stringify(raw.times)}`);
    }
    const minutes = numberOption("retry", "minutesBetweenRetries", raw.minutesBetweenRetries);
    if (minutes !== undefined && minutes < 0) {
      throw new Error(`@retry.minutesBetweenRetries must be a number of minutes ≥ 0, got ${JSON.stringify(raw.minutesBetweenRetries)}`);
    }
    return { times, minutesBetweenRetries: minutes ?? 2, waitSet: minutes !== undefined };
  },
  plan(options, plan) {
    plan.retries = options.times;
    // The default two minutes suit a remote compute backend; a local retry starts at once.
    plan.retryDelayMs = options.waitSet ? Math.round(options.minutesBetweenRetries * 60_000) : undefined;
  },
});
