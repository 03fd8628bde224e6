/**
 * The system tags a flow's decorators give its runs (`runTags` hooks: `@project` names the
 * project and branch), for a local run and for a deployment alike.
 */
import { MetaflowError, DecoratorError, UsageError } from "../errors.js";
import type { LoadedFlow } from "./load-flow.js";

/** The branch a run or deployment is for: `--branch B` or `--production`. */
export interface BranchFlags {
  readonly branch?: string;
  readonly production?: boolean;
}

/**
 * Asks every flow decorator with a `runTags` hook for the tags of a run by `user`; refuses
 * `--branch`/`--production` on a flow none of whose decorators reads them.
 */
export function flowRunTags(flow: LoadedFlow, user: string, choice: BranchFlags = {}): string[] {
  const hooked = flow.flowDecorators.filter(
    (d) =>
      flow.definitions.get(d.name)?.kind === "flow" &&
      typeof (flow.definitions.get(d.name) as { runTags?: unknown }).runTags === "function",
  );
  if ((choice.branch !== undefined || choice.production) && hooked.length === 0) {
    throw new UsageError(
      `${choice.production ? "--production" : `--branch ${choice.branch}`} needs a flow decorator that names branches, such as @project({ name: "..." }) on ${flow.className}; add one, or drop the flag`,
    );
  }
  if (choice.branch !== undefined && choice.production) {
    throw new UsageError(
      `Give --branch or --production, not both: --production is the prod branch, --branch ${choice.branch} the test branch test.${choice.branch}`,
    );
  }
  const tags: string[] = [];
  for (const spec of hooked) {
    const def = flow.definitions.get(spec.name) as {
      runTags(o: unknown, r: unknown): readonly string[];
    };
    try {
      tags.push(
        ...def.runTags(spec.options, {
          flowName: flow.className,
          user,
          branch: choice.branch,
          production: choice.production === true,
        }),
      );
    } catch (err) {
      // The library's own errors (a bad --branch) already say what to fix.
      if (err instanceof MetaflowError) throw err;
      throw new DecoratorError(spec.name, "runTags", undefined, err);
    }
  }
  return tags;
}
