/**
 * A foreach: one task per element of a list, then a join that sees them all.
 *   npx metaflow run examples/foreach.ts --size 10
 */
import { FlowSpec, Parameter, step, type Inputs } from "metaflow-ts";

/** Sums the squares of 1..size, one task per number. */
export default class ForeachFlow extends FlowSpec {
  size = Parameter("size", { default: 3, help: "How many numbers" });
  declare numbers: number[];
  declare total: number;

  /** Make the list to fan out over. */
  @step start() {
    this.numbers = Array.from({ length: this.size }, (_, i) => i + 1);
    this.next(this.square, { foreach: "numbers" });
  }

  /** One task per element: `this.input` is the element, `this.index` its position. */
  @step square() {
    this.total = (this.input as number) ** 2;
    this.next(this.join);
  }

  /** Every split arrives here, in order. */
  @step join(inputs: Inputs<ForeachFlow>) {
    this.total = inputs.map((i) => i.total).reduce((a, b) => a + b, 0);
    this.next(this.end);
  }

  /** Report. */
  @step end() {
    console.log(`sum of squares: ${this.total}`);
  }
}
