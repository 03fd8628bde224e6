/**
 * Letting a flow go on past failures with `@catchError`. Some records are malformed; their tasks
 * fail, the error is stored in the artifact `failure`, and the join reports which ones failed.
 * Run it with
 *   npx metaflow run examples/failures/catch.ts
 */
import { FlowSpec, step, catchError, retry, type Inputs } from "metaflow-ts";

/** What `@catchError` stores: the error as plain data. */
interface CaughtError {
  name: string;
  message: string;
  stack?: string;
}

/** A foreach over records, some of them broken; the flow still finishes. */
export default class CatchFlow extends FlowSpec {
  declare records: string[];
  declare parsed: { id: number; score: number };
  declare failure: CaughtError | undefined;
  declare scores: number[];
  declare failed: string[];

  /** Some of these records are not valid JSON or lack a score. */
  @step start() {
    this.records = ['{"id":1,"score":0.9}', '{"id":2,"score":', '{"id":3,"score":0.4}', '{"id":4}'];
    this.next(this.parse, { foreach: "records" });
  }

  /**
   * A malformed record throws. `@retry({ times: 1 })` tries once more (useless here, but it shows
   * the order: every retry first, then the catch), then `@catchError` stores the error in
   * `this.failure` and the task succeeds without the artifacts the step would have set.
   */
  @catchError({ var: "failure" })
  @retry({ times: 1 })
  @step parse() {
    const record = JSON.parse(this.input as string) as { id: number; score?: number };
    if (typeof record.score !== "number") throw new TypeError(`record ${record.id} has no score`);
    this.parsed = { id: record.id, score: record.score };
    this.next(this.join);
  }

  /** The catch artifact is set only on the splits that failed. */
  @step join(inputs: Inputs<CatchFlow>) {
    this.scores = inputs.filter((i) => !i.failure).map((i) => i.parsed.score);
    this.failed = inputs.filter((i) => i.failure).map((i) => `record #${i.index}: ${i.failure!.name}: ${i.failure!.message}`);
    this.next(this.end);
  }

  /** Reports the good and the bad. */
  @step end() {
    console.log(`parsed ${this.scores.length} record(s): ${this.scores.join(", ")}`);
    for (const line of this.failed) console.log(`skipped ${line}`);
  }
}
