/**
 * Bounding a step's time with `@timeout`. The first attempt of `lookup` hangs (a request with no
 * answer), the timeout stops it, and `@retry` runs it again; `spin` is a synchronous busy loop that
 * never ends, and `@catchError` records its timeout so the flow goes on. Run it with
 *   npx metaflow run examples/failures/timeout.ts
 */
import { FlowSpec, step, timeout, retry, catchError, current, type Inputs } from "metaflow-ts";

/** A branch with a step that hangs once and one that never finishes. */
export default class TimeoutFlow extends FlowSpec {
  declare answer: string;
  declare spun: number;
  declare failure: { name: string; message: string } | undefined;
  declare report: string[];

  /** Starts two branches. */
  @step start() {
    this.next(this.lookup, this.spin);
  }

  /** Each attempt gets 2 seconds; the first one hangs and is stopped, the retry answers at once. */
  @timeout({ seconds: 2 })
  @retry({ times: 1 })
  @step async lookup() {
    if (current.retryCount === 0) {
      console.log("waiting for an answer that never comes...");
      await new Promise(() => undefined);
    }
    this.answer = "42";
    this.next(this.join);
  }

  /** A loop that never yields is stopped too: the task's process is killed at the limit. */
  @catchError({ var: "failure" })
  @timeout({ seconds: 1 })
  @step spin() {
    let n = 0;
    for (;;) n += 1;
    this.spun = n;
    this.next(this.join);
  }

  /** Reports both branches. */
  @step join(inputs: Inputs<TimeoutFlow>) {
    this.report = [`lookup answered ${inputs.lookup.answer}`, `spin: ${inputs.spin.failure?.name}: ${inputs.spin.failure?.message}`];
    this.next(this.end);
  }

  /** Prints the report. */
  @step end() {
    for (const line of this.report) console.log(line);
  }
}
