/**
 * A static branch and a join: two steps run in parallel, then meet.
 *   npx metaflow run examples/branch.ts
 */
import { FlowSpec, step, type Inputs } from "metaflow-ts";

/** Trains two kinds of model side by side and keeps the better one. */
export default class BranchFlow extends FlowSpec {
  declare data: number[];
  declare model: string;
  declare score: number;
  declare scores: Record<string, number>;

  /** Make the data both branches share. */
  @step start() {
    this.data = [3, 1, 4, 1, 5, 9, 2, 6];
    this.next(this.linear, this.tree);
  }

  /** One branch. */
  @step linear() {
    this.model = "linear";
    this.score = this.data.reduce((a, b) => a + b, 0) / this.data.length;
    this.next(this.choose);
  }

  /** The other branch, running at the same time. */
  @step tree() {
    this.model = "tree";
    this.score = Math.max(...this.data) / 2;
    this.next(this.choose);
  }

  /** The join: read each branch by name, keep the best, carry over what both agree on. */
  @step choose(inputs: Inputs<BranchFlow>) {
    this.scores = { linear: inputs.linear.score, tree: inputs.tree.score };
    const best = inputs.linear.score >= inputs.tree.score ? inputs.linear : inputs.tree;
    this.model = best.model;
    this.score = best.score;
    this.mergeArtifacts(inputs, { exclude: ["model", "score"] }); // brings `data` along
    this.next(this.end);
  }

  /** Report. */
  @step end() {
    console.log(
      `scores: ${JSON.stringify(this.scores)}; best: ${this.model} (${this.score}) on ${this.data.length} points`,
    );
  }
}
