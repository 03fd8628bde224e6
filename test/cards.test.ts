/**
 * Cards in the datastore, read back by the client (`task.cards()`) and the CLI (`metaflow card
 * list|get|view`), for tasks of a real run. The cards are stored the way the `@card` decorator
 * will store them: a CardSet whose collectors save through CardStore.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { Markdown, ProgressBar, Table } from "../src/cards/index.js";
import { Task } from "../src/client/objects.js";
import { namespace } from "../src/client/namespace.js";
import { Project } from "./helpers/project.js";
import { cardsFor } from "./helpers/ui.js";

const FLOW = `import { FlowSpec, step } from "metaflow-ts";
export default class CardsFlow extends FlowSpec {
  declare items: number[];
  @step start() { this.items = [1, 2]; this.next(this.work, { foreach: "items" }); }
  @step work() { this.next(this.join); }
  @step join(inputs: unknown) { this.next(this.end); }
  @step end() {}
}
`;

void describe("cards of a task", () => {
  const p = new Project();
  let runId = "";
  let endTask = "";
  const log: string[] = [];

  before(async () => {
    p.write("cards_flow.ts", FLOW);
    const r = await p.cli(["run", "cards_flow.ts"]);
    assert.equal(r.code, 0, r.stderr);
    runId = await p.latestRun("CardsFlow");
    endTask = (await p.metadata.listTasks("CardsFlow", runId, "end"))[0]!;
    const cards = cardsFor({ root: p.root, flow: "CardsFlow", runId, step: "end", taskId: endTask }, [{ type: "default" }, { type: "blank", id: "report" }], (l) => log.push(l));
    cards.set.get("report").append(new Markdown("# Report <script>alert(1)</script>"));
    cards.set.get("report").append(new Table([[1, 0.9]], { headers: ["epoch", "auc"] }));
    await cards.finish({ parameters: {}, artifacts: [{ name: "score", type: "number", size: 8, value: 0.5 }], graph: [{ name: "start", out: ["end"] }, { name: "end", out: [] }] });
    namespace(null);
  });
  after(() => p.cleanup());

  void it("task.cards() lists { id, type, html() } in the order of the step's cards", async () => {
    const task = await Task.get(`CardsFlow/${runId}/end/${endTask}`, { datastoreRoot: p.root });
    const cards = await task.cards();
    assert.deepEqual(
      cards.map((c) => [c.id, c.type, c.live]),
      [
        [undefined, "default", false],
        ["report", "blank", false],
      ],
    );
    const html = await cards[1]!.html();
    assert.match(html, /^<!doctype html>/);
    assert.match(html, /Report &lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.match(await cards[0]!.html(), /mf-node-current" data-step="end"/);
    assert.deepEqual(log, []);
  });

  void it("a task without cards has none", async () => {
    const task = await Task.get(`CardsFlow/${runId}/start/1`, { datastoreRoot: p.root });
    assert.deepEqual(await task.cards(), []);
  });

  void it("shows the newest live version while a task runs, then the final one replaces it", async () => {
    const [workTask] = await p.metadata.listTasks("CardsFlow", runId, "work");
    const target = { root: p.root, flow: "CardsFlow", runId, step: "work", taskId: workTask!, attempt: 0 };
    const cards = cardsFor(target, [{ type: "blank", refreshInterval: 0 }]);
    const bar = new ProgressBar({ max: 10, label: "epochs" });
    cards.set.append(bar);
    bar.update(4);
    cards.set.refresh();
    await cards.set.cards[0]!.flush();
    const task = await Task.get(`CardsFlow/${runId}/work/${workTask}`, { datastoreRoot: p.root });
    const [live] = await task.cards();
    assert.equal(live!.live, true);
    assert.match(await live!.html(), /aria-valuenow="4"/);
    bar.update(10);
    await cards.finish();
    const [final] = await task.cards();
    assert.equal(final!.live, false);
    assert.match(await final!.html(), /aria-valuenow="10"/);
    const dir = path.join(p.root, "flows", "CardsFlow", runId, "work", workTask!, "cards", "attempt-0");
    assert.deepEqual(fs.readdirSync(dir), ["0.blank.final.html"], "the live version is removed");
  });

  void it("metaflow card list / get / view", async () => {
    const pathspec = `CardsFlow/${runId}/end/${endTask}`;
    const list = await p.cli(["card", "list", pathspec]);
    assert.equal(list.code, 0, list.stderr);
    assert.equal(list.stdout, "-\tdefault\tattempt 0\tfinal\nreport\tblank\tattempt 0\tfinal\n");

    const json = await p.cli(["card", "list", `CardsFlow/${runId}/end`, "--json"]);
    assert.deepEqual(JSON.parse(json.stdout.split("\n")[1]!), { id: "report", type: "blank", attempt: 0, index: 1, live: false });

    const stdout = await p.cli(["card", "get", pathspec, "--id", "report"]);
    assert.equal(stdout.code, 0, stdout.stderr);
    assert.match(stdout.stdout, /^<!doctype html>.*Report &lt;script&gt;/s);

    const file = path.join(p.dir, "report.html");
    const toFile = await p.cli(["card", "get", pathspec, file, "--type", "default"]);
    assert.equal(toFile.code, 0, toFile.stderr);
    assert.match(fs.readFileSync(file, "utf8"), /metaflow-card-type" content="default"/);

    // No desktop here (no DISPLAY): view writes the card to a file and prints its path.
    const view = await p.cli(["card", "view", pathspec, "--id", "report"], { env: { DISPLAY: "", WAYLAND_DISPLAY: "" } });
    assert.equal(view.code, 0, view.stderr);
    const shown = view.stdout.trim();
    assert.ok(path.isAbsolute(shown) && fs.readFileSync(shown, "utf8").includes("Report &lt;script&gt;"), view.stdout);
  });

  void it("names the cards there are when the one asked for is missing or ambiguous", async () => {
    const pathspec = `CardsFlow/${runId}/end/${endTask}`;
    const missing = await p.cli(["card", "get", pathspec, "--id", "nope"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Task 'CardsFlow\/\d+\/end\/\d+' has no card with id 'nope'[\s\S]*its cards are: default, report \(blank\)/);
    const ambiguous = await p.cli(["card", "get", pathspec]);
    assert.equal(ambiguous.code, 1);
    assert.match(ambiguous.stderr, /has 2 matching cards; pick one with --id \(or --type\): default, report \(blank\)/);
    const none = await p.cli(["card", "view", `CardsFlow/${runId}/start/1`]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /has no card[\s\S]*it has no cards \(add @card to the step\)/);
  });

  void it("refuses bad pathspecs and a step with several tasks", async () => {
    const bad = await p.cli(["card", "list", "CardsFlow/../x/end/1"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /Malformed pathspec "CardsFlow\/..\/x\/end\/1"/);
    const several = await p.cli(["card", "list", `CardsFlow/${runId}/work`]);
    assert.equal(several.code, 2);
    assert.match(several.stderr, /Step CardsFlow\/\d+\/work has 2 tasks; name one, e.g. CardsFlow\/\d+\/work\/\d+/);
    const flowOnly = await p.cli(["card", "list", "CardsFlow"]);
    assert.equal(flowOnly.code, 2);
    assert.match(flowOnly.stderr, /expected Flow\/runId\/step or Flow\/runId\/step\/taskId/);
  });
});
