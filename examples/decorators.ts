/**
 * Your own decorators: `@timed()` (a step decorator) measures each step, `@owner` (a flow
 * decorator) tags every task with a team, and a built-in step decorator written on the class
 * (`@retry`) applies to every step.
 *
 *   npx metaflow run examples/decorators.ts
 *   npx metaflow run examples/decorators.ts --with timed:artifact=seconds   # every step
 *   npx metaflow dump DecoratorsFlow/<run-id>/train
 */
import { current, FlowSpec, retry, step } from "metaflow-ts";
import { owner, timed } from "./lib/decorators.js";

@owner({ team: "recsys" })
@retry({ times: 1 })
export default class DecoratorsFlow extends FlowSpec {
  declare stepSeconds: number;
  declare team: string;

  @step start() {
    this.team = current.team;
    this.next(this.train);
  }

  /** Trains for a moment; @timed stores how long it took. */
  @timed()
  @step async train() {
    await new Promise((resolve) => setTimeout(resolve, 50));
    this.next(this.end);
  }

  @step end() {
    console.log(`team ${this.team} (env ${process.env.OWNER_TEAM}); train took ${this.stepSeconds.toFixed(3)} s`);
  }
}
