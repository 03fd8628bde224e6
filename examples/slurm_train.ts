/**
 * A hyperparameter sweep on a Slurm cluster. `start` makes a data set on this machine; `train`
 * fits one model per learning rate, each task a Slurm job and all of them ONE job array; `join`,
 * back on this machine, keeps the best model. See docs/slurm.md for what the cluster needs (Node
 * and metaflow-ts on the compute nodes, a datastore they reach), then, on a login node:
 *
 *   npx metaflow run examples/slurm_train.ts
 *   npx metaflow run examples/slurm_train.ts --rates '[0.001, 0.01, 0.1, 0.5]' --epochs 500
 *   npx metaflow slurm list            # while it runs: the array and its elements
 */
import * as os from "node:os";
import { FlowSpec, JSONType, Parameter, resources, slurm, step, type Inputs } from "metaflow-ts";

/** One fitted model. */
interface Model {
  readonly rate: number;
  readonly slope: number;
  readonly intercept: number;
  readonly loss: number;
  readonly where: string;
}

/** `y = 3.000x - 2.000` */
function line(m: Model): string {
  return `y = ${m.slope.toFixed(3)}x ${m.intercept < 0 ? "-" : "+"} ${Math.abs(m.intercept).toFixed(3)}`;
}

export default class SlurmTrainFlow extends FlowSpec {
  rates = Parameter("rates", {
    type: JSONType,
    default: [0.001, 0.01, 0.05, 0.1, 0.3],
    help: "learning rates to try: one Slurm task each",
  });
  epochs = Parameter("epochs", { default: 300, help: "gradient-descent epochs per model" });

  declare x: Float64Array;
  declare y: Float64Array;
  declare model: Model;
  declare best: Model;

  /** Makes y = 3x - 2 with some noise (the same every run). */
  @step start() {
    const n = 2000;
    this.x = new Float64Array(n);
    this.y = new Float64Array(n);
    let seed = 42;
    const noise = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 0.2;
    for (let i = 0; i < n; i++) {
      this.x[i] = i / n;
      this.y[i] = 3 * this.x[i]! - 2 + noise();
    }
    this.next(this.train, { foreach: "rates" });
  }

  /** Fits a line by gradient descent at one learning rate, as a Slurm job. */
  @slurm({ time: "10" })
  @resources({ cpu: 1, memory: 1024 })
  @step
  train() {
    const rate = this.input as number;
    const epochs = this.epochs as unknown as number;
    let slope = 0;
    let intercept = 0;
    const n = this.x.length;
    for (let e = 0; e < epochs; e++) {
      let gs = 0;
      let gi = 0;
      for (let i = 0; i < n; i++) {
        const err = slope * this.x[i]! + intercept - this.y[i]!;
        gs += (2 / n) * err * this.x[i]!;
        gi += (2 / n) * err;
      }
      slope -= rate * gs;
      intercept -= rate * gi;
    }
    let loss = 0;
    for (let i = 0; i < n; i++) loss += (slope * this.x[i]! + intercept - this.y[i]!) ** 2 / n;
    const job = process.env.SLURM_ARRAY_JOB_ID
      ? `${process.env.SLURM_ARRAY_JOB_ID}_${process.env.SLURM_ARRAY_TASK_ID}`
      : process.env.SLURM_JOB_ID;
    const where = `${process.env.SLURMD_NODENAME ?? os.hostname()} (Slurm job ${job ?? "none"})`;
    this.model = { rate, slope, intercept, loss, where };
    console.log(`rate ${rate}: loss ${loss.toFixed(5)}, ${line(this.model)}, on ${where}`);
    this.next(this.join);
  }

  /** Back on this machine: the model with the lowest loss. */
  @step join(inputs: Inputs<SlurmTrainFlow>) {
    this.best = inputs.map((i) => i.model).reduce((a, b) => (b.loss < a.loss ? b : a));
    this.next(this.end);
  }

  @step end() {
    const b = this.best;
    console.log(
      `Best learning rate ${b.rate}: loss ${b.loss.toFixed(5)}, ${line(b)} (trained on ${b.where})`,
    );
  }
}
