import { test } from "node:test";
import assert from "node:assert/strict";
import { buildGraph } from "./parse.js";
import { formatGraph } from "./show.js";

void test("formats the flow as metaflow show prints it", () => {
  const source = `import { FlowSpec, step, type Inputs } from "metaflow-ts";
/**
 * Trains models.
 * Two lines of doc.
 */
export default class ShowFlow extends FlowSpec {
  /** Pick models. */
  @step start() { this.next(this.train, { foreach: "models" }); }
  // Fit one model.
  @step async train() { this.next(this.join); }
  @step join(inputs: Inputs<ShowFlow>) { this.next(this.a, this.b); }
  @step a() { this.next(this.merge); }
  @step b() { this.next(this.merge); }
  @step merge(inputs: Inputs<ShowFlow>) { this.next({ high: this.high, "very low": this.merge2 }, { condition: "level" }); }
  @step high() { this.next(this.merge2); }
  @step merge2() { this.next(this.end); }
  /** Done. */
  @step end() {}
}`;
  assert.equal(
    formatGraph(buildGraph("flow.ts", source)),
    `ShowFlow
    Trains models.
    Two lines of doc.

Step start (foreach over models)
    Pick models.
    => train

Step train
    Fit one model.
    => join

Step join (join, split)
    => a, b

Step a
    => merge

Step b
    => merge

Step merge (join, switch on level)
    => high (level = "high") | merge2 (level = "very low")

Step high
    => merge2

Step merge2
    => end

Step end
    Done.
    => end of flow
`,
  );
});

void test("a step without this.next is shown as having no next step", () => {
  const text = formatGraph(
    buildGraph("flow.ts", `export default class F extends FlowSpec { @step start() {} }`),
  );
  assert.equal(text, "F\n\nStep start\n    => (no next step)\n");
});
