/**
 * `@card` in real runs through the real CLI: the default and blank cards, several cards per step
 * by id, `current.card` in a foreach, components and card types that throw (the task still
 * succeeds; the error shows in the card and on the console), hostile strings, cards of failed and
 * retried attempts, live cards while a task runs, and bad `@card` options. Read back with the
 * client (`task.cards()`) and `metaflow card list|get|view`.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { Task } from "../src/client/objects.js";
import { namespace } from "../src/client/namespace.js";
import { Project, REPO, waitFor, waitForOutput } from "./helpers/project.js";

const EVIL = `<script>window.__pwned=1</script><img src=x onerror=alert(1)>`;

/** The rows of every table of a card page, each cell as its (still escaped) text. */
function tableRows(html: string): string[][] {
  return [...html.matchAll(/<tr>(.*?)<\/tr>/gs)].map((row) => [...row[1]!.matchAll(/<t[dh]>(.*?)<\/t[dh]>/gs)].map((cell) => cell[1]!.replace(/<[^>]*>/g, "")));
}

/** The row of `rows` whose first cell is `name`. */
function row(rows: string[][], name: string): string[] | undefined {
  return rows.find((r) => r[0] === name);
}

const FLOW = `import { FlowSpec, Parameter, step, card, current, retry, CardComponent, Markdown, Table, registerCardType } from "metaflow-ts";

class Broken extends CardComponent {
  override render(): string { throw new Error("this component always breaks"); }
}
registerCardType({ type: "explodes", help: "always throws", render() { throw new Error("the card type broke"); } });
registerCardType({
  type: "score",
  help: "the score in big letters",
  render: (data, components) => [new Markdown("# Score " + String(data.artifacts?.find((a) => a.name === "score")?.value)), ...components],
});

export default class CardsFlow extends FlowSpec {
  note = Parameter("note", { default: ${JSON.stringify(EVIL)} });
  declare items: number[];
  declare evil: string;
  declare big: Buffer;
  declare scores: Map<string, number>;
  declare score: number;

  @card() @step start() {
    this.items = [1, 2];
    this.evil = ${JSON.stringify(`artifact ${EVIL}`)};
    this.big = Buffer.alloc(2 * 1024 * 1024, 7);
    this.scores = new Map([["auc", 0.93]]);
    this.next(this.work, { foreach: "items" });
  }

  @card({ type: "blank", id: "report" }) @card({ id: "facts" })
  @step work() {
    const report = current.card.get("report");
    report.append(new Markdown("# Item " + this.input + " ${EVIL.replace(/"/g, '\\"')}"));
    report.extend([new Table([[this.input, (this.input as number) / 2]], { headers: ["item", "half"] }), "plain <b>text</b>"]);
    current.card.get("nope").append(new Markdown("lost"));
    current.card.append(new Markdown("which card?"));
    this.score = (this.input as number) * 10;
    this.next(this.join);
  }

  @card({ type: "blank" }) @retry({ times: 1 })
  @step join(inputs: any) {
    if (current.retryCount === 0) {
      current.card.append(new Markdown("first attempt"));
      throw new Error("the first attempt fails");
    }
    current.card.append(new Broken());
    current.card.append(new Markdown("after the broken one"));
    this.score = inputs.map((i: any) => i.score).reduce((a: number, b: number) => a + b, 0);
    this.next(this.end);
  }

  @card({ type: "explodes" }) @card({ type: "score", id: "score" }) @step end() { current.card.get("score").append(new Markdown("from the step")); }
}
`;

void describe("@card in a run", () => {
  const p = new Project();
  let runId = "";
  let out = "";
  const task = (step: string, id: string) => Task.get(`CardsFlow/${runId}/${step}/${id}`, { datastoreRoot: p.root });
  const taskIds: Record<string, string[]> = {};

  before(async () => {
    p.write("cards_flow.ts", FLOW);
    const r = await p.cli(["run", "cards_flow.ts"]);
    out = r.stdout + r.stderr;
    assert.equal(r.code, 0, out);
    runId = await p.latestRun("CardsFlow");
    for (const step of ["start", "work", "join", "end"]) taskIds[step] = await p.metadata.listTasks("CardsFlow", runId, step);
    namespace(null);
  });
  after(() => p.cleanup());

  void it("makes the default card: task, parameters, artifacts with type and preview, the graph with this step marked", async () => {
    const cards = await (await task("start", taskIds.start![0]!)).cards();
    assert.deepEqual(cards.map((c) => [c.id, c.type, c.live, c.attempt]), [[undefined, "default", false, 0]]);
    const html = await cards[0]!.html();
    assert.match(html, /^<!doctype html>/);
    assert.match(html, new RegExp(`CardsFlow/${runId}/start/${taskIds.start![0]}`));
    assert.match(html, /mf-status-completed/);
    assert.match(html, /<h2>Parameters<\/h2>/);
    const rows = tableRows(html);
    assert.deepEqual(row(rows, "note"), ["note", "&lt;script&gt;window.__pwned=1&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"]);
    assert.deepEqual(row(rows, "evil")?.slice(0, 2), ["evil", "string"]);
    assert.equal(row(rows, "evil")?.[3], "artifact &lt;script&gt;window.__pwned=1&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;");
    assert.deepEqual(row(rows, "big"), ["big", "Buffer", "2.0 MB", "(too large to preview)"]);
    assert.deepEqual(row(rows, "scores")?.slice(0, 2), ["scores", "Map"]);
    assert.equal(row(rows, "scores")?.[3], "Map(1) { &#39;auc&#39; =&gt; 0.93 }");
    assert.equal(row(rows, "Status")?.[1], "completed");
    assert.match(html, /mf-node mf-node-current" data-step="start"/);
    assert.deepEqual([...html.matchAll(/data-step="(\w+)"/g)].map((m) => m[1]), ["start", "work", "join", "end"]);
    assert.doesNotMatch(html, /<script>window/);
  });

  void it("keeps several cards per step apart by id, in the order they are written, for each foreach task", async () => {
    assert.equal(taskIds.work!.length, 2);
    const seen: string[] = [];
    for (const id of taskIds.work!) {
      const cards = await (await task("work", id)).cards();
      assert.deepEqual(cards.map((c) => [c.id, c.type, c.index]), [["report", "blank", 0], ["facts", "default", 1]]);
      const report = await cards[0]!.html();
      const item = /<h1>Item (\d)/.exec(report)?.[1];
      assert.ok(item, report);
      seen.push(item);
      assert.match(report, /Item \d &lt;script&gt;window.__pwned=1&lt;\/script&gt;/);
      assert.deepEqual(tableRows(report), [["item", "half"], [item, String(Number(item) / 2)]]);
      assert.match(report, /plain &lt;b&gt;text&lt;\/b&gt;/);
      assert.doesNotMatch(report, /lost|which card\?/);
      const facts = row(tableRows(await cards[1]!.html()), "score");
      assert.deepEqual([facts?.[0], facts?.[1], facts?.[3]], ["score", "number", String(Number(item) * 10)]);
    }
    assert.deepEqual(seen.sort(), ["1", "2"]);
  });

  void it("warns once on the task's console for an unknown id or an ambiguous current.card, and goes on", () => {
    for (const id of taskIds.work!) {
      assert.match(out, new RegExp(`/work/${id} \\(pid \\d+\\)\\] current.card.get\\("nope"\\): the step has no card with that id; its card ids are: report, facts`));
      assert.match(out, new RegExp(`/work/${id} \\(pid \\d+\\)\\] current.card.append\\(\\): the step has 2 cards, so say which: current.card.get\\(id\\) \\(ids: report, facts\\)`));
    }
    assert.equal(out.match(/current.card.get\("nope"\)/g)?.length, 2, "one warning per task");
  });

  void it("a component or card type that throws never fails the task: the card and the console show the error", async () => {
    const [join] = await (await task("join", taskIds.join![0]!)).cards();
    assert.equal(join!.attempt, 1);
    const html = await join!.html();
    assert.match(html, /mf-error-title">Broken failed to render/);
    assert.match(html, /this component always breaks/);
    assert.match(html, /after the broken one/);
    assert.match(out, new RegExp(`/join/${taskIds.join![0]} \\(pid \\d+\\)\\] card 'blank': Broken failed to render: this component always breaks`));

    const [end, score] = await (await task("end", taskIds.end![0]!)).cards();
    const endHtml = await end!.html();
    assert.deepEqual([score!.id, score!.type], ["score", "score"]);
    assert.match(await score!.html(), /<h1>Score 30<\/h1>[\s\S]*from the step/);
    assert.match(endHtml, /The explodes card failed to render/);
    assert.match(endHtml, /the card type broke/);
    assert.match(out, /card 'explodes': card type 'explodes' failed: the card type broke/);
    assert.match(out, /Done! CardsFlow\/\d+: 5 tasks, 1 retried attempt/);
  });

  void it("keeps the card of a failed attempt, marked failed, beside the retry's", async () => {
    const dir = path.join(p.root, "flows", "CardsFlow", runId, "join", taskIds.join![0]!, "cards");
    assert.deepEqual(fs.readdirSync(dir).sort(), ["attempt-0", "attempt-1"]);
    const first = fs.readFileSync(path.join(dir, "attempt-0", "0.blank.final.html"), "utf8");
    assert.match(first, /mf-status-failed">failed/);
    assert.match(first, /first attempt/);
  });

  void it("metaflow card list / get / view", async () => {
    const pathspec = `CardsFlow/${runId}/work/${taskIds.work![0]}`;
    const list = await p.cli(["card", "list", pathspec]);
    assert.equal(list.code, 0, list.stderr);
    assert.equal(list.stdout, "report\tblank\tattempt 0\tfinal\nfacts\tdefault\tattempt 0\tfinal\n");

    const json = await p.cli(["card", "list", `CardsFlow/${runId}/start`, "--json"]);
    assert.deepEqual(JSON.parse(json.stdout.trim()), { type: "default", attempt: 0, index: 0, live: false });

    const stdout = await p.cli(["card", "get", pathspec, "--id", "report"]);
    assert.equal(stdout.code, 0, stdout.stderr);
    assert.match(stdout.stdout, /^<!doctype html>.*Item \d &lt;script&gt;/s);

    const file = path.join(p.dir, "facts.html");
    const toFile = await p.cli(["card", "get", pathspec, file, "--type", "default"]);
    assert.equal(toFile.code, 0, toFile.stderr);
    assert.match(fs.readFileSync(file, "utf8"), /metaflow-card-type" content="default"/);

    // No desktop here (no DISPLAY): view writes the card to a file and prints its path.
    const view = await p.cli(["card", "view", pathspec, "--id", "report"], { env: { DISPLAY: "", WAYLAND_DISPLAY: "" } });
    assert.equal(view.code, 0, view.stderr);
    const shown = view.stdout.trim();
    assert.ok(path.isAbsolute(shown) && fs.readFileSync(shown, "utf8").includes("Item "), view.stdout);
  });

  void it("names the cards there are when the one asked for is missing or ambiguous", async () => {
    const pathspec = `CardsFlow/${runId}/work/${taskIds.work![0]}`;
    const missing = await p.cli(["card", "get", pathspec, "--id", "nope"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Task 'CardsFlow\/\d+\/work\/\d+' has no card with id 'nope'[\s\S]*its cards are: report \(blank\), facts \(default\)/);
    const ambiguous = await p.cli(["card", "get", pathspec]);
    assert.equal(ambiguous.code, 1);
    assert.match(ambiguous.stderr, /has 2 matching cards; pick one with --id \(or --type\): report \(blank\), facts \(default\)/);
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

const LIVE_FLOW = `import * as fs from "node:fs";
import { FlowSpec, Parameter, step, card, current, ProgressBar } from "metaflow-ts";
const gate = (file: string) => new Promise<void>((resolve) => { const t = setInterval(() => { if (fs.existsSync(file)) { clearInterval(t); resolve(); } }, 50); });
export default class LiveFlow extends FlowSpec {
  dir = Parameter("dir", { default: "." });
  @step start() { this.next(this.train); }
  @card({ type: "blank", id: "progress", refreshInterval: 0 })
  @step async train() {
    const bar = new ProgressBar({ max: 10, label: "epochs" });
    current.card.append(bar);
    for (const [value, file] of [[3, "gate1"], [7, "gate2"]] as const) {
      bar.update(value);
      current.card.refresh();
      console.log("at " + value);
      await gate(this.dir + "/" + file);
    }
    bar.update(10);
    this.next(this.end);
  }
  @step end() {}
}
`;

void describe("a live card", () => {
  const p = new Project();
  after(() => p.cleanup());

  void it("is saved by refresh() while the task runs, seen by card get and task.cards(), then replaced by the final one", async () => {
    p.write("live.ts", LIVE_FLOW);
    const child = p.spawn(["run", "live.ts", "--dir", p.dir]);
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const closed = new Promise<number | null>((resolve) => child.once("close", resolve));
    try {
      await waitForOutput(() => out, /at 3/);
      const runId = await p.latestRun("LiveFlow");
      const [taskId] = await p.metadata.listTasks("LiveFlow", runId, "train");
      const pathspec = `LiveFlow/${runId}/train/${taskId}`;
      const shown = async (want: string) =>
        waitFor(`card at ${want}`, async () => {
          const r = await p.cli(["card", "get", pathspec]);
          return new RegExp(`aria-valuenow="${want}"`).test(r.stdout) ? r.stdout : undefined;
        });
      assert.match(await shown("3"), / · live</);
      const list = await p.cli(["card", "list", pathspec]);
      assert.equal(list.stdout, "progress\tblank\tattempt 0\tlive\n");
      fs.writeFileSync(path.join(p.dir, "gate1"), "");
      await waitForOutput(() => out, /at 7/);
      await shown("7");
      const [live] = await (await Task.get(pathspec, { datastoreRoot: p.root })).cards();
      assert.equal(live!.live, true);
      fs.writeFileSync(path.join(p.dir, "gate2"), "");
      assert.equal(await closed, 0, out);
      const [final] = await (await Task.get(pathspec, { datastoreRoot: p.root })).cards();
      assert.equal(final!.live, false);
      assert.match(await final!.html(), /aria-valuenow="10"/);
      const dir = path.join(p.root, "flows", "LiveFlow", runId, "train", taskId!, "cards", "attempt-0");
      assert.deepEqual(fs.readdirSync(dir), ["0.blank.progress.final.html"], "the live version is removed");
    } finally {
      for (const gate of ["gate1", "gate2"]) fs.writeFileSync(path.join(p.dir, gate), "");
      await closed;
    }
  });
});

void describe("@card options and --with card", () => {
  const p = new Project();
  after(() => p.cleanup());
  const flow = (decorators: string) => `import { FlowSpec, step, card } from "metaflow-ts";
export default class OptFlow extends FlowSpec {
  ${decorators} @step start() { this.next(this.end); }
  @step end() {}
}
`;

  void it("refuses two cards with one id on a step, and bad options, naming the step and field", async () => {
    p.write("dup.ts", flow(`@card({ id: "a" }) @card({ type: "blank", id: "a" })`));
    const dup = await p.cli(["run", "dup.ts"]);
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /step 'start' has two @card decorators with id 'a'; give each card its own id/);
    assert.doesNotMatch(dup.stdout, /Task is starting/);

    p.write("bad.ts", flow(`@card({ refreshInterval: -1 })`));
    const bad = await p.cli(["run", "bad.ts"]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /step 'start': @card.refreshInterval must be a number of seconds ≥ 0, got -1/);

    // An unknown type stops the run before any task, instead of an error card in every task.
    p.write("typo.ts", flow(`@card({ type: "sumary" })`));
    const typo = await p.cli(["run", "typo.ts"]);
    assert.notEqual(typo.code, 0);
    assert.match(typo.stderr, /@card failed in its plan hook in step 'start': there is no card type 'sumary'; the types are: blank, default\. A type of your own is added with registerCardType/);
    assert.doesNotMatch(typo.stdout, /Task is starting/);

    p.write("id.ts", flow(`@card({ id: "no spaces" })`));
    assert.match((await p.cli(["run", "id.ts"])).stderr, /@card.id must be 1-64 letters, digits or _, got "no spaces"/);

    p.write("plain.ts", flow(""));
    const opt = await p.cli(["run", "plain.ts", "--with", "card:type=<b>"]);
    assert.equal(opt.code, 2);
    assert.match(opt.stderr, /--with card:type=<b>: @card.type must be a card type name such as "default" or "blank", got "<b>"/);
    const unknown = await p.cli(["run", "plain.ts", "--with", "card:type=nope"]);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /there is no card type 'nope'; the types are: blank, default/);
    const key = await p.cli(["run", "plain.ts", "--with", "card:colour=red"]);
    assert.match(key.stderr, /@card has no option 'colour'; its options are: type, id, options, timeout, refreshInterval/);
    assert.deepEqual(await p.metadata.listRuns("OptFlow"), [], "no run was recorded");
  });

  void it("--with card adds a default card to every step; a step's own @card() is not doubled", async () => {
    p.write("with.ts", flow(`@card() @card({ type: "blank", id: "extra" })`));
    const r = await p.cli(["run", "with.ts", "--with", "card"]);
    assert.equal(r.code, 0, r.stderr);
    const runId = await p.latestRun("OptFlow");
    namespace(null);
    const start = await (await Task.get(`OptFlow/${runId}/start/1`, { datastoreRoot: p.root })).cards();
    assert.deepEqual(start.map((c) => [c.id, c.type]), [[undefined, "default"], ["extra", "blank"]]);
    const end = await (await Task.get(`OptFlow/${runId}/end/2`, { datastoreRoot: p.root })).cards();
    assert.deepEqual(end.map((c) => [c.id, c.type]), [[undefined, "default"]]);
  });
});

void describe("examples/cards.ts", () => {
  const p = new Project();
  after(() => p.cleanup());

  void it("stores each train task's rate, and the join reads the best one from its inputs", async () => {
    p.write("cards_example.ts", fs.readFileSync(path.join(REPO, "examples", "cards.ts"), "utf8"));
    const r = await p.cli(["run", "cards_example.ts", "--epochs", "2"]);
    assert.equal(r.code, 0, r.stderr);
    const runId = await p.latestRun("CardsExampleFlow");
    namespace(null);
    const opts = { datastoreRoot: p.root };
    const rates = await Promise.all(
      (await p.metadata.listTasks("CardsExampleFlow", runId, "train")).map(async (id) => {
        const t = await Task.get(`CardsExampleFlow/${runId}/train/${id}`, opts);
        return [await t.data("rate"), ((await t.data("losses")) as number[]).at(-1)] as [number, number];
      }),
    );
    assert.deepEqual(rates.map(([rate]) => rate).sort(), [0.01, 0.1]);
    const [best] = [...rates].sort((a, b) => a[1] - b[1]);
    const [joinId] = await p.metadata.listTasks("CardsExampleFlow", runId, "join");
    const join = await Task.get(`CardsExampleFlow/${runId}/join/${joinId}`, opts);
    assert.deepEqual(await join.data("best"), { rate: best![0], loss: best![1] });
    assert.match(r.stdout, new RegExp(`best rate ${best![0]} \\(loss`));
  });
});
