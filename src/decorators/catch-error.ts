/**
 * `@catchError({ var, printException })`: when a task has failed every attempt (`@retry`
 * included), the task still succeeds, the error is stored in the artifact `var` and the flow goes
 * on along the step's transition — so a later step (a join) can see which tasks failed.
 */
import { checkKeys } from "./contract.js";
import { makeStepDecorator } from "./make.js";

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

/**
 * The artifact used when `var` is not given: names starting with `_` are never persisted, so the
 * flow goes on and nothing is stored.
 */
const NO_ARTIFACT = "_caughtError";

const IDENTIFIER = /^[A-Za-z$][A-Za-z0-9_$]*$/;

function parseBoolean(v: unknown): boolean | undefined {
  if (v === undefined || typeof v === "boolean") return v;
  if (v === "true" || v === "1") return true;
  if (v === "false" || v === "0") return false;
  throw new Error(`@catchError.printException must be true or false, got ${JSON.stringify(v)}`);
}

/** Turns a task that failed every attempt into a success that records the error in `var`. */
export const catchError = makeStepDecorator<CatchErrorOptions, { readonly var: string | undefined; readonly printException: boolean }>({
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
    return { var: name, printException: parseBoolean(raw.printException) ?? true };
  },
  plan(options, plan) {
    plan.catchVar = options.var ?? NO_ARTIFACT;
    plan.printCaught = options.printException;
  },
});
