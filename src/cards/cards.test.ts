import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BasicRenderContext, renderChild } from "./component.js";
import { Artifact, CardCollector, CardComponent, cardTypeNames, createCardSet, ErrorComponent, Image, Markdown, parseCardOptions, ProgressBar, registerCardType, renderCard, Table, VegaChart } from "./index.js";
import type { CardData, CardSaveRequest } from "./index.js";

const HOSTILE = [
  `<script>window.__pwned=1</script>`,
  `<img src=x onerror="window.__pwned=1">`,
  `"><svg onload=alert(1)>`,
  `</script><script>alert(1)</script>`,
  `' onmouseover='alert(1)`,
];

/** A tag (not escaped text) with an event-handler attribute, or a script element that is not a JSON data block. */
function assertInert(html: string): void {
  const tag = /<([a-z][a-z0-9-]*)((?:\s+[^\s"'>/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'>]+))?)*)\s*\/?>/gi;
  for (const m of html.matchAll(tag)) {
    const names = [...(m[2] ?? "").matchAll(/\s+([^\s"'>/=]+)(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'>]+))?/g)].map((a) => a[1]!.toLowerCase());
    assert.ok(!names.some((n) => n.startsWith("on")), `an element with an on* attribute: ${m[0]}`);
  }
  assert.doesNotMatch(html, /<script(?![^>]*type="application\/json")/i, "a <script> element");
  assert.doesNotMatch(html, /href\s*=\s*"\s*javascript:/i, "a javascript: link");
  assert.doesNotMatch(html, /<svg[^>]*onload/i);
}

const render = (c: unknown) => renderChild(c, new BasicRenderContext());

const data = (final = true): CardData => ({
  task: { flow: "F", runId: "1", step: "train", taskId: "2", attempt: 0, status: final ? "completed" : "running", startedAt: new Date(0), finishedAt: final ? new Date(1500) : undefined },
  parameters: { alpha: 0.1, note: HOSTILE[0] },
  artifacts: [
    { name: "score", type: "number", size: 8, value: 0.93 },
    { name: "evil", type: "string", size: 40, value: HOSTILE[1] },
    { name: "alpha", type: "number", size: 8, value: 0.1 },
  ],
  graph: [
    { name: "start", out: ["train"] },
    { name: "train", out: ["end"] },
    { name: "end", out: [] },
  ],
  final,
});

void describe("card components escape every value", () => {
  for (const s of HOSTILE) {
    void it(`keeps ${JSON.stringify(s)} inert in Markdown, Table, Artifact, Error and plain values`, () => {
      for (const c of [new Markdown(`# Title ${s}\n\n${s} [x](javascript:alert(1)) ![i](javascript:alert(1))`), new Table([[s, new Markdown(s)]], { headers: [s] }), new Artifact({ s }, { name: s }), new ErrorComponent(new Error(s), { title: s }), s, { nested: [s] }]) {
        const html = render(c);
        assertInert(html);
      }
    });
  }

  void it("keeps the text of a hostile Markdown string visible", () => {
    const html = render(new Markdown("<b>bold?</b> **yes**"));
    assert.match(html, /&lt;b&gt;bold\?&lt;\/b&gt; <strong>yes<\/strong>/);
  });

  void it("writes a chart spec that cannot close its script block", () => {
    const ctx = new BasicRenderContext();
    const html = new VegaChart({ title: HOSTILE[3], mark: "bar", data: { values: [{ a: HOSTILE[0] }] } }).render(ctx);
    assert.equal(ctx.vega, true);
    assert.equal((html.match(/<\/script>/g) ?? []).length, 1, "only the block's own closing tag");
    assertInert(html.replace(/<script type="application\/json"[^>]*>[\s\S]*?<\/script>/, ""));
  });

  void it("shows an SVG (even one with a script) only as an image", () => {
    const html = render(Image.fromBuffer(Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), { label: HOSTILE[1] }));
    assert.match(html, /<img src="data:image\/svg\+xml;base64,/);
    assertInert(html);
  });

  void it("recognises PNG bytes and refuses unknown ones with an error box", () => {
    const png = Buffer.from("89504e470d0a1a0a0000000d49484452", "hex");
    assert.match(render(new Image(png)), /data:image\/png;base64,/);
    assert.match(render(new Image(Buffer.from("hello"))), /mf-error/);
  });

  void it("draws an image of a Vega-Lite chart as SVG in Node", async () => {
    const img = await Image.fromChart({ mark: "bar", data: { values: [{ a: "x", b: 2 }] }, encoding: { x: { field: "a", type: "nominal" }, y: { field: "b", type: "quantitative" } } });
    const src = /src="data:image\/svg\+xml;base64,([^"]+)"/.exec(render(img))?.[1];
    assert.ok(src);
    assert.match(Buffer.from(src, "base64").toString("utf8"), /^<svg/);
  });

  void it("moves a progress bar and checks its numbers", () => {
    const bar = new ProgressBar({ max: 10, label: "epochs" });
    bar.update(3);
    assert.match(render(bar), /aria-valuenow="3"/);
    bar.update(99);
    assert.match(render(bar), /aria-valuenow="10"/);
    assert.throws(() => new ProgressBar({ max: 0 }), /ProgressBar.max must be a number above 0, got 0/);
    assert.throws(() => bar.update(Number.NaN), /ProgressBar.update expects a number/);
  });

  void it("shows an Arrow table (duck-typed, as the flow's own apache-arrow makes it) given to new Table or Table.fromArrow", () => {
    // The shape of an apache-arrow Table: numRows, schema.fields, get(i) returning a row with toJSON().
    const rows = [
      { id: 1, name: HOSTILE[0] },
      { id: 2, name: "b" },
      { id: 3, name: "c" },
    ];
    const arrow = { numRows: 3, schema: { fields: [{ name: "id" }, { name: "name" }] }, get: (i: number) => ({ toJSON: () => rows[i]! }) };
    const html = render(new Table(arrow, { maxRows: 2 }));
    assert.match(html, /<thead><tr><th>id<\/th><th>name<\/th><\/tr><\/thead>/);
    assert.match(html, /<td><span class="mf-value">1<\/span><\/td><td><span class="mf-text">&lt;script&gt;/);
    assert.match(html, /1 more row not shown/);
    assertInert(html);
    assert.equal(render(Table.fromArrow(arrow)), render(new Table(arrow)));
    assert.match(render(new Table(arrow, { headers: ["ID", "Name"] })), /<th>ID<\/th><th>Name<\/th>/);
    assert.throws(() => new Table({ numRows: 1 } as never), /Table expects an array of rows or an Arrow table, got object/);
    assert.throws(() => Table.fromArrow([[1]] as never), /Table.fromArrow expects an Apache Arrow Table/);
  });

  void it("refuses a maxRows that is not a whole number from 1", () => {
    for (const [bad, shown] of [
      [-1, "-1"],
      [0, "0"],
      [Number.NaN, "NaN"],
      [2.5, "2.5"],
      [Infinity, "Infinity"],
      ["10", '"10"'],
    ] as const) {
      assert.throws(() => new Table([[1]], { maxRows: bad as number }), (err: Error) => err instanceof RangeError && err.message === `Table.maxRows must be a whole number ≥ 1, got ${shown}`, String(bad));
      assert.throws(() => Table.fromRecords([{ a: 1 }], { maxRows: bad as number }), /Table.maxRows must be a whole number ≥ 1/);
    }
    assert.match(render(new Table([[1], [2]], { maxRows: 1 })), /1 more row not shown/);
  });

  void it("turns a component that throws into an error box in its place", () => {
    class Broken extends CardComponent {
      override render(): string {
        throw new Error(`boom ${HOSTILE[0]}`);
      }
    }
    const ctx = new BasicRenderContext();
    const html = new Table([[new Broken(), "fine"]]).render(ctx);
    assert.match(html, /Broken failed to render/);
    assert.match(html, /fine/);
    assert.equal(ctx.errors.length, 1);
    assertInert(html);
  });
});

void describe("renderCard", () => {
  void it("renders the default card: task, parameters, artifacts, graph with the step marked", () => {
    const { html, problems } = renderCard({ type: "default" }, data(), [new Markdown("extra")]);
    assert.deepEqual(problems, []);
    assert.match(html, /^<!doctype html>/);
    assert.match(html, /Content-Security-Policy" content="default-src &#39;none&#39;;[^"]*script-src &#39;none&#39;/);
    assert.match(html, /<g class="mf-node mf-node-current" data-step="train">/);
    assert.match(html, /F\/1\/train\/2/);
    assert.match(html, /<td><span class="mf-text">score<\/span><\/td>/);
    assert.match(html, /extra/);
    assertInert(html);
  });

  void it("inlines the chart runtime, allowed by its hash, only when a chart is drawn", () => {
    const { html } = renderCard({ type: "blank", id: "charts" }, data(), [new VegaChart({ mark: "point" })]);
    const hash = /script-src &#39;(sha256-[A-Za-z0-9+/=]+)&#39;/.exec(html)?.[1];
    assert.ok(hash, "the policy names the runtime's hash");
    assert.equal((html.match(/<script>/g) ?? []).length, 1);
    assert.doesNotMatch(renderCard({ type: "blank" }, data(), [new Markdown("x")]).html, /<script>/);
  });

  void it("shows an unknown card type as an error card, without throwing", () => {
    const { html, problems } = renderCard({ type: "nope" }, data(), []);
    assert.match(html, /there is no card type &#39;nope&#39;/);
    assert.match(problems[0]!, /card type 'nope' failed/);
  });

  void it("lists the built-in types without registering them by import; a type of one's own is added, a built-in name refused", () => {
    assert.deepEqual(cardTypeNames().filter((n) => n === "default" || n === "blank"), ["blank", "default"]);
    assert.throws(() => registerCardType({ type: "default", help: "", render: () => [] }), /Card type 'default' is built in; give your card type another name/);
    assert.throws(() => registerCardType({ type: "bad name", help: "", render: () => [] }), /A card type name is 1-64 letters, digits, _ or -, got "bad name"/);
    registerCardType({ type: "shout", help: "the step's name, loudly", render: (d, components) => [new Markdown(`# ${d.task.step.toUpperCase()}`), ...components] });
    assert.ok(cardTypeNames().includes("shout"));
    assert.match(renderCard({ type: "shout" }, data(), ["after"]).html, /<h1>TRAIN<\/h1>[\s\S]*after/);
  });
});

void describe("CardCollector", () => {
  const spec = { type: "blank", id: "report", refreshInterval: 0.05 };
  const make = (saves: CardSaveRequest[], log: string[] = [], save?: () => Promise<void>) =>
    new CardCollector(spec, {
      index: 0,
      save: save ?? (async (c) => void saves.push(c)),
      liveData: () => data(false),
      log: (l) => log.push(l),
    });

  void it("merges refreshes within the interval into one live save, then saves the final card", async () => {
    const saves: CardSaveRequest[] = [];
    const c = make(saves);
    const bar = new ProgressBar({ max: 10 });
    c.append(bar);
    for (let i = 1; i <= 10; i++) {
      bar.update(i);
      c.refresh();
    }
    await new Promise((r) => setTimeout(r, 120));
    await c.flush();
    assert.equal(saves.length, 2, "one at once, one at the end of the interval");
    assert.equal(saves[0]!.final, false);
    assert.match(saves[1]!.html, /aria-valuenow="10"/);
    await c.finish(data(true));
    assert.equal(saves.length, 3);
    assert.equal(saves[2]!.final, true);
    c.refresh();
    c.append(new Markdown("late"));
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(saves.length, 3, "nothing is saved after the final card");
  });

  void it("logs a failing save and never throws into the step", async () => {
    const log: string[] = [];
    const c = make([], log, async () => {
      throw new Error("disk full");
    });
    c.append("x");
    c.refresh();
    await c.flush();
    await c.finish(data(true));
    assert.equal(log.length, 1, "the same problem is logged once");
    assert.match(log[0]!, /card 'report' \(blank\) could not be saved: disk full/);
  });

  void it("gives current.card the only card, and get(id) by id, warning once for unknown ids", () => {
    const log: string[] = [];
    const set = createCardSet([{ type: "default" }, { type: "blank", id: "report" }], { save: async () => undefined, liveData: () => data(false), log: (l) => log.push(l) });
    set.append("to the default card");
    assert.equal(set.cards[0]!.components.length, 1);
    set.get("report").append("to the report");
    assert.equal(set.cards[1]!.components.length, 1);
    set.get("typo").append("dropped");
    set.get("typo").append("dropped");
    assert.equal(log.length, 1);
    assert.match(log[0]!, /no card with that id; its card ids are: report/);
    const two = createCardSet([{ type: "blank", id: "a" }, { type: "blank", id: "b" }], { save: async () => undefined, liveData: () => data(false), log: (l) => log.push(l) });
    two.append("x");
    assert.match(log[1]!, /has 2 cards, so say which: current.card.get\(id\) \(ids: a, b\)/);
  });
});

void describe("parseCardOptions", () => {
  void it("fills defaults and names the bad field", () => {
    assert.deepEqual(parseCardOptions({}), { type: "default", options: {} });
    assert.deepEqual(parseCardOptions({ type: "blank", id: "r1", refreshInterval: "2" }), { type: "blank", id: "r1", options: {}, refreshInterval: 2 });
    assert.throws(() => parseCardOptions({ id: "a b" }), /@card.id must be 1-64 letters, digits or _, got "a b"/);
    assert.throws(() => parseCardOptions({ type: "<x>" }), /@card.type must be a card type name/);
    assert.throws(() => parseCardOptions({ refreshInterval: -1 }), /@card.refreshInterval must be a number of seconds ≥ 0, got -1/);
    assert.throws(() => parseCardOptions({ colour: 1 }), /@card has no option 'colour'/);
  });
});
