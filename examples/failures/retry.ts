/**
 * Retrying flaky work with `@retry`. The `fetch` step talks to a "service" that fails the first
 * time each shard asks; the retry succeeds, and the run completes. Run it with
 *   npx metaflow run examples/failures/retry.ts
 * then look at both attempts of a retried task:
 *   npx metaflow logs RetryFlow/<run-id>/fetch --attempt 0
 */
import { FlowSpec, step, retry, current, type Inputs } from "metaflow-ts";

/** Pretends to call a service that is briefly unavailable for the odd shards. */
async function flakyService(shard: number): Promise<number[]> {
  await new Promise((resolve) => setTimeout(resolve, 50));
  // A real service fails at random; this one fails on the first attempt, so the lesson is repeatable.
  if (shard % 2 === 1 && current.retryCount === 0) {
    throw new Error(`service unavailable for shard ${shard} (HTTP 503)`);
  }
  return Array.from({ length: 3 }, (_, i) => shard * 10 + i);
}

/** A foreach whose tasks fail once and pass on retry. */
export default class RetryFlow extends FlowSpec {
  declare shards: number[];
  declare rows: number[];
  declare attempts: number;
  declare total: number;
  declare retried: number;

  /** Splits the work into shards. */
  @step start() {
    this.shards = [0, 1, 2, 3];
    this.next(this.fetch, { foreach: "shards" });
  }

  /**
   * Each shard may fail; `@retry` runs it again (at once locally, as `minutesBetweenRetries` is not
   * given). Only the successful attempt's artifacts are kept.
   */
  @retry({ times: 2 })
  @step async fetch() {
    console.log(`shard ${this.input}, attempt ${current.retryCount}`);
    this.rows = await flakyService(this.input as number);
    this.attempts = current.retryCount + 1;
    this.next(this.join);
  }

  /** Every shard arrives here after its successful attempt. */
  @step join(inputs: Inputs<RetryFlow>) {
    this.total = inputs.reduce((sum, i) => sum + i.rows.length, 0);
    this.retried = inputs.filter((i) => i.attempts > 1).length;
    this.next(this.end);
  }

  /** Reports what happened. */
  @step end() {
    console.log(`${this.total} rows fetched; ${this.retried} shard(s) needed a retry`);
  }
}
