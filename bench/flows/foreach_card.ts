/** Benchmark: the foreach of `foreach.ts` with a default `@card` on each of its N tasks. */
import { FlowSpec, Parameter, card, step, type Inputs } from "metaflow-ts";

export default class ForeachCardBenchFlow extends FlowSpec {
  n = Parameter("n", { default: 100 });
  declare items: number[];
  declare count: number;

  @step start() {
    this.items = Array.from({ length: this.n }, (_, i) => i);
    this.next(this.work, { foreach: "items" });
  }

  @card() @step work() {
    this.next(this.join);
  }

  @step join(inputs: Inputs<ForeachCardBenchFlow>) {
    this.count = inputs.length;
    this.next(this.end);
  }

  @step end() {}
}
