/**
 * Two decorators written by a user, with the same contract as the built-in ones (SPEC §6):
 * `@timed()` stores how long each task's step took, and `@owner({ team })` is a flow decorator
 * that labels every task and adds `current.team`.
 */
import { flowDecorator, stepDecorator } from "metaflow-ts";

/** Options of `@timed`. */
export interface TimedOptions {
  /** Artifact that receives the seconds. @default "stepSeconds" */
  artifact?: string;
}

/** `@timed()`: stores how long the step took, in seconds, in an artifact (`stepSeconds` by default). */
export const timed = stepDecorator<TimedOptions, { artifact: string }>({
  name: "timed",
  help: "timed:artifact=NAME stores how long each task's step took, in seconds",
  parse(raw) {
    const artifact = raw.artifact ?? "stepSeconds";
    if (typeof artifact !== "string" || !/^[A-Za-z]\w*$/.test(artifact)) {
      throw new Error(`@timed.artifact must be an artifact name such as "seconds", got ${JSON.stringify(raw.artifact)}`);
    }
    for (const k of Object.keys(raw)) if (k !== "artifact") throw new Error(`@timed has no option '${k}'; its options are: artifact`);
    return { artifact };
  },
  async runStep(task, next, options) {
    const t0 = performance.now();
    await next();
    task.set(options.artifact, (performance.now() - t0) / 1000);
  },
});

declare module "metaflow-ts" {
  interface CurrentExtensions {
    /** The team `@owner` names. */
    team: string;
  }
}

/** `@owner({ team })`: every task knows its team as `current.team` and in the `OWNER_TEAM` variable. */
export const owner = flowDecorator<{ team: string }>({
  name: "owner",
  parse(raw) {
    if (typeof raw.team !== "string" || raw.team === "") throw new Error(`@owner.team must be a non-empty string, got ${JSON.stringify(raw.team)}`);
    return { team: raw.team };
  },
  plan(options, plan) {
    plan.env.OWNER_TEAM = options.team;
  },
  async runStep(task, next, options) {
    task.setCurrent("team", options.team);
    await next();
  },
});
