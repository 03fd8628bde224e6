/**
 * `@timeout({ seconds, minutes, hours })`: an attempt still running after the summed limit is
 * stopped (its process is killed, so a synchronous busy loop stops too) and fails with a
 * TimeoutError naming the limit; `@retry` and `@catchError` treat it like any failure.
 */
import { checkKeys, numberOption } from "./contract.js";
import { stepDecorator } from "./make.js";

/** Options of `@timeout`; the three are added up, and the total must be more than zero. */
export interface TimeoutOptions {
  /** Seconds. @default 0 */
  seconds?: number;
  /** Minutes. @default 0 */
  minutes?: number;
  /** Hours. @default 0 */
  hours?: number;
}

const FIELDS = ["seconds", "minutes", "hours"] as const;
const UNIT_SECONDS = { seconds: 1, minutes: 60, hours: 3600 } as const;

/** Stops an attempt that runs longer than the limit and fails it with a TimeoutError. */
export const timeout = stepDecorator<TimeoutOptions, { readonly seconds: number }>({
  name: "timeout",
  help: "timeout:seconds=S,minutes=M,hours=H stops a task that runs longer than the sum",
  parse(raw) {
    checkKeys("timeout", raw, FIELDS);
    let total = 0;
    for (const field of FIELDS) {
      const v = numberOption("timeout", field, raw[field]);
      if (v === undefined) continue;
      if (v < 0) throw new Error(`@timeout.${field} must be a number ≥ 0, got ${JSON.stringify(raw[field])}`);
      total += v * UNIT_SECONDS[field];
    }
    if (total <= 0) {
      throw new Error(`@timeout needs a limit greater than zero: give seconds, minutes or hours, e.g. @timeout({ minutes: 5 })`);
    }
    return { seconds: total };
  },
  plan(options, plan) {
    plan.timeoutMs = Math.round(options.seconds * 1000);
  },
});
