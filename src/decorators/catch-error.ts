/**
 * `@catchError({ var, printException })`: when a task has failed every attempt (`@retry`
 * included), the task still succeeds, the error is stored in the artifact `var` and the flow goes
 * on along the step's transition — so a later step (a join) can see which tasks failed.
 */
import { booleanOption, checkKeys } from "./contract.js";
import { stepDecorator } from "./make.js";

/** Options of `@catchError`. */
export interface CatchErrorOptions {
  /**
   * Artifact that receives the error as plain data `{ name, message, stack, code? }`; without it
   * the error is not stored (the failed attempt's metadata and logs still hold it). @default undefined
   */
  var?: string;
  /** Print the caught error on the console. @default true */
  printException?: boolean;
}

const IDENTIFIER = /^[A-Za-z$][A-Za-z0-9_$]*$/;

/** Turns a task that failed every attempt into a success that records the error in `var`. */
export const catchError = stepDecorator<CatchErrorOptions, { readonly var: string | undefined; readonly printException: boolean }>({
  name: "catchError",
  help: "catchError:var=NAME stores the error of a task that failed every attempt in artifact NAME and goes on",
  parse(raw) {
    checkKeys("catchError", raw, ["var", "printException"]);
    const name = raw.var;
    if (name !== undefined && (typeof name !== "string" || !IDENTIFIER.test(name))) {
      throw new Error(
        `@catchError.var must be an artifact name (a JavaScript identifier not starting with _), got ${JSON.stringify(name)}`,
      );
    }
    return { var: name, printException: booleanOption("catchError", "printException", raw.printException) ?? true };
  },
  plan(options, plan) {
    plan.onFailure = { storeIn: options.var, print: options.printException };
  },
});
