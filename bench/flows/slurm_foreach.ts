/** Benchmark: a foreach of N no-op tasks on Slurm (N from the `n` parameter); start, join and end run locally. */
import { FlowSpec, Parameter, slurm, step, type Inputs } from "metaflow-ts";

export default class SlurmForeachBenchFlow extends FlowSpec {
  n = Parameter("n", { default: 100 });
  declare items: number[];
  declare count: number;

  @step start() {
    this.items = Array.from({ length: this.n }, (_, i) => i);
    this.next(this.work, { foreach: "items" });
  }

  @slurm() @step work() {
    this.next(this.join);
  }

  @step join(inputs: Inputs<SlurmForeachBenchFlow>) {
    this.count = inputs.length;
    this.next(this.end);
  }

  @step end() {}
}
