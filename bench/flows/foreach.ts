/** Benchmark: a foreach of N no-op tasks (N from the `n` parameter). */
import { FlowSpec, Parameter, step, type Inputs } from "metaflow-ts";

export default class ForeachBenchFlow extends FlowSpec {
  n = Parameter("n", { default: 100 });
  declare items: number[];
  declare count: number;

  @step start() {
    this.items = Array.from({ length: this.n }, (_, i) => i);
    this.next(this.work, { foreach: "items" });
  }

  @step work() {
    this.next(this.join);
  }

  @step join(inputs: Inputs<ForeachBenchFlow>) {
    this.count = inputs.length;
    this.next(this.end);
  }

  @step end() {}
}
