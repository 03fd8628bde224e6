/** `@environment({ vars })`: adds environment variables to the step's `process.env`. */
import { checkKeys } from "./contract.js";
import { stepDecorator } from "./make.js";

/** Options of `@environment`. */
export interface EnvironmentOptions {
  /** Variables set in the task's `process.env`. @default {} */
  vars?: Record<string, string>;
}

/** Sets environment variables for every task of the step. */
export const environment = stepDecorator<EnvironmentOptions, { vars: Record<string, string> }>({
  name: "environment",
  help: "environment:vars={\"K\":\"v\"} adds variables to process.env of each task",
  parse(raw) {
    checkKeys("environment", raw, ["vars"]);
    let vars = raw.vars ?? {};
    if (typeof vars === "string") {
      try {
        vars = JSON.parse(vars);
      } catch {
        throw new Error(`@environment.vars must be a JSON object such as {"K":"v"}, got ${vars}`);
      }
    }
    if (typeof vars !== "object" || vars === null || Array.isArray(vars)) {
      throw new Error(`@environment.vars must be an object of strings, got ${JSON.stringify(vars)}`);
    }
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(vars)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`@environment.vars: '${k}' is not a valid variable name`);
      if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean") {
        throw new Error(`@environment.vars.${k} must be a string, got ${JSON.stringify(v)}`);
      }
      out[k] = String(v);
    }
    return { vars: out };
  },
  plan(options, plan) {
    Object.assign(plan.env, options.vars);
  },
});
