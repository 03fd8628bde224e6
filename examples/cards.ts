/**
 * Cards: an HTML report of each task. `start` gets the default card (its artifacts, the run's
 * parameters, the graph); each `train` task fills a report of its own, live while it runs.
 *
 *   npx metaflow run examples/cards.ts
 *   npx metaflow card view CardsExampleFlow/<run-id>/start        # or: npx metaflow ui
 *   npx metaflow card list CardsExampleFlow/<run-id>/train/<task-id>
 */
import { card, current, FlowSpec, Markdown, Parameter, ProgressBar, step, Table, VegaChart, type Inputs } from "metaflow-ts";

export default class CardsExampleFlow extends FlowSpec {
  epochs = Parameter("epochs", { default: 5, help: "Epochs per model" });
  declare rates: number[];
  declare rate: number;
  declare losses: number[];
  declare best: { rate: number; loss: number };

  /** The default card shows what this step stored. */
  @card() @step start() {
    this.rates = [0.1, 0.01];
    this.next(this.train, { foreach: "rates" });
  }

  /** One report per learning rate: a progress bar while it trains, then a table and a chart. */
  @card({ type: "blank", id: "report", refreshInterval: 0.5 })
  @step async train() {
    const rate = this.input as number;
    this.rate = rate; // the join reads each task's rate from here
    const report = current.card.get("report");
    report.append(new Markdown(`# Learning rate ${rate}`));
    const bar = new ProgressBar({ max: this.epochs, label: "epochs" });
    report.append(bar);
    this.losses = [];
    for (let epoch = 1; epoch <= this.epochs; epoch++) {
      await new Promise((r) => setTimeout(r, 100)); // a stand-in for real work
      this.losses.push(1 / (1 + epoch * rate * 10));
      bar.update(epoch);
      report.refresh(); // saved at most every refreshInterval seconds: `metaflow card view` shows it live
    }
    report.append(new Table(this.losses.map((loss, i) => [i + 1, loss.toFixed(3)]), { headers: ["epoch", "loss"] }));
    report.append(
      new VegaChart({
        data: { values: this.losses.map((loss, i) => ({ epoch: i + 1, loss })) },
        mark: "line",
        encoding: { x: { field: "epoch", type: "quantitative" }, y: { field: "loss", type: "quantitative" } },
      }),
    );
    this.next(this.join);
  }

  @step join(inputs: Inputs<CardsExampleFlow>) {
    // Each input carries the rate it trained with: nothing here repeats the list in `start`.
    const results = inputs.map((i) => ({ rate: i.rate, loss: i.losses.at(-1)! }));
    this.best = results.reduce((a, b) => (b.loss < a.loss ? b : a));
    this.next(this.end);
  }

  @card() @step end() {
    console.log(`best rate ${this.best.rate} (loss ${this.best.loss.toFixed(3)})`);
  }
}
