/**
 * The UI and cards in a real browser: Debian's Chromium driven by playwright-core, against
 * `metaflow ui` over runs of the examples made with the real CLI. Screenshots of the main pages
 * are kept under test-output/screenshots/.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium, type Browser, type FrameLocator, type Page } from "playwright-core";
import { Project, REPO } from "./helpers/project.js";
import { CHROMIUM_ARGS, chromiumAvailability, SCREENSHOTS, startUiProcess, type UiProcess } from "./helpers/ui.js";

const EVIL_SCRIPT = `<script>window.__pwned = "script"</script>`;
const EVIL_IMG = `<img src=x onerror="window.__pwned='img'">`;

const VEGA_SPEC = {
  data: { values: [{ a: "A", b: 28 }, { a: "B", b: 55 }, { a: "C", b: 43 }] },
  mark: "bar",
  encoding: { x: { field: "a", type: "nominal" }, y: { field: "b", type: "quantitative" } },
};

const HOSTILE_FLOW = `import { FlowSpec, Parameter, step, card, current, Markdown, Table, VegaChart, Artifact } from "metaflow-ts";
export default class HostileFlow extends FlowSpec {
  note = Parameter("note", { default: ${JSON.stringify(EVIL_IMG)} });
  declare evil: string;
  @step start() {
    console.log(${JSON.stringify(`log ${EVIL_SCRIPT}`)});
    this.evil = ${JSON.stringify(`artifact ${EVIL_SCRIPT} ${EVIL_IMG}`)};
    this.next(this.end);
  }
  @card({ type: "blank", id: "report" })
  @step end() {
    const report = current.card.get("report");
    report.append(new Markdown(${JSON.stringify(`# Report ${EVIL_SCRIPT}

${EVIL_IMG} [link](javascript:window.__pwned=1)`)}));
    report.append(new Table([[${JSON.stringify(EVIL_SCRIPT)}, new Markdown(${JSON.stringify(`**${EVIL_IMG}**`)})]], { headers: ["a", "b"] }));
    report.append(new VegaChart(${JSON.stringify(VEGA_SPEC)}));
    report.append(new Artifact({ evil: ${JSON.stringify(EVIL_SCRIPT)} }, { name: "value" }));
  }
}
`;

/** A live card: its progress bar is at 3 until the file `gate` exists, then at 7 until `gate` + "2" exists. */
const WAIT_FLOW = `import * as fs from "node:fs";
import { FlowSpec, Parameter, step, card, current, ProgressBar } from "metaflow-ts";
const until = (file: string) => new Promise<void>((resolve) => { const t = setInterval(() => { if (fs.existsSync(file)) { clearInterval(t); resolve(); } }, 100); });
export default class WaitFlow extends FlowSpec {
  gate = Parameter("gate", { default: "" });
  @step start() { this.next(this.wait); }
  @card({ type: "blank", id: "progress", refreshInterval: 0 })
  @step async wait() {
    const bar = new ProgressBar({ max: 10, label: "epochs" });
    current.card.append(bar);
    bar.update(3);
    current.card.refresh();
    console.log("waiting for the gate");
    await until(this.gate);
    bar.update(7);
    current.card.refresh();
    console.log("at 7");
    await until(this.gate + "2");
    console.log("gate opened");
    this.next(this.end);
  }
  @step end() {}
}
`;

const chromiumPath = chromiumAvailability();

/** How many drawn marks a Vega chart has in a frame (0 while it is not drawn). */
async function vegaMarks(frame: FrameLocator | Page): Promise<number> {
  await frame.locator(".mf-vega[data-mf-drawn='true'] svg").waitFor({ timeout: 30_000 });
  return frame.locator(".mf-vega svg .mark-rect path").count();
}

void describe("the UI in a browser", { skip: "skip" in chromiumPath ? chromiumPath.skip : false }, () => {
  const p = new Project();
  let ui: UiProcess;
  let browser: Browser;
  const dialogs: string[] = [];
  const ids: Record<string, string> = {};

  const shot = async (page: Page, name: string) => {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
  };

  const newPage = async (): Promise<Page> => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    return page;
  };

  /** Neither the page nor any of its frames ran injected script. */
  const assertNothingRan = async (page: Page, frames: FrameLocator[] = []) => {
    assert.equal(await page.evaluate("typeof window.__pwned"), "undefined", "script ran in the page");
    for (const frame of frames) assert.equal(await frame.locator("body").evaluate("typeof window.__pwned"), "undefined", "script ran in a card");
    assert.deepEqual(dialogs, []);
  };

  before(async () => {
    for (const example of ["foreach.ts", "branch.ts"]) fs.copyFileSync(path.join(REPO, "examples", example), path.join(p.dir, example));
    p.write("hostile.ts", HOSTILE_FLOW);
    p.write("wait.ts", WAIT_FLOW);
    for (const [name, ...args] of [["nightly", "foreach.ts", "--tag", "nightly"], ["foreach", "foreach.ts"], ["branch", "branch.ts"], ["hostile", "hostile.ts", "--tag", EVIL_IMG]]) {
      const r = await p.cli(["run", ...args]);
      assert.equal(r.code, 0, r.stderr);
      ids[name!] = await p.latestRun(/^(\w+)Flow/.exec(r.stdout.split("Done! ")[1] ?? "")?.[0] ?? "");
    }
    ids.hostile = await p.latestRun("HostileFlow");
    ui = await startUiProcess(p.dir);
    browser = await chromium.launch({ executablePath: (chromiumPath as { path: string }).path, args: CHROMIUM_ARGS });
  });
  after(async () => {
    await browser?.close();
    await ui?.stop();
    p.cleanup();
  });

  void it("lists flows and runs, and filters runs by tag", async () => {
    const page = await newPage();
    await page.goto(ui.url);
    await page.getByRole("link", { name: "ForeachFlow" }).waitFor();
    await shot(page, "flows");
    await page.getByRole("link", { name: "ForeachFlow" }).click();
    await page.getByTestId("run-count").filter({ hasText: "of 2" }).waitFor();
    await page.getByTestId("filter-tag").fill("nightly");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.getByTestId("run-count").filter({ hasText: "Runs 1–1 of 1" }).waitFor();
    assert.deepEqual(await page.locator("[data-testid=runs] tbody tr td:first-child").allTextContents(), [ids.nightly]);
    await shot(page, "runs-filtered");
    await page.close();
  });

  void it("opens a run and shows its graph and timeline", async () => {
    const page = await newPage();
    await page.goto(`${ui.url}/#/runs/ForeachFlow/${ids.foreach}`);
    await page.locator("[data-testid=graph] [data-step=end][data-status=completed]").waitFor();
    assert.deepEqual(await page.locator("[data-testid=graph] [data-step]").evaluateAll((els) => els.map((e) => e.getAttribute("data-step"))), ["start", "square", "join", "end"]);
    assert.match((await page.locator("[data-step=square]").textContent())!, /3\/3/);
    assert.equal(await page.locator("[data-testid=timeline] .tl-row").count(), 6);
    await shot(page, "run");
    await page.close();
  });

  void it("opens a task: its logs, artifacts and cards, with a Vega chart drawn", async () => {
    const page = await newPage();
    await page.goto(`${ui.url}/#/tasks/HostileFlow/${ids.hostile}/start/1`);
    await page.getByTestId("logs").filter({ hasText: "log <script>" }).waitFor();
    await page.locator("[data-artifact=evil] button").click();
    await page.locator("[data-artifact=evil] pre").waitFor();
    assert.equal(await page.locator("[data-artifact=evil] pre").textContent(), `artifact ${EVIL_SCRIPT} ${EVIL_IMG}`);
    await shot(page, "task");
    await page.goto(`${ui.url}/#/tasks/HostileFlow/${ids.hostile}/end/2`);
    const frame = page.frameLocator("iframe[title='card report']");
    assert.ok((await vegaMarks(frame)) >= 3, "the bar chart has a mark per bar");
    assert.match((await frame.locator(".mf-markdown h1").first().textContent())!, /Report <script>/);
    await shot(page, "task-cards");
    await assertNothingRan(page, [frame]);
    await page.close();
  });

  void it("shows hostile tags, parameters, log lines and artifacts as text and runs nothing", async () => {
    const page = await newPage();
    await page.goto(`${ui.url}/#/runs/HostileFlow/${ids.hostile}`);
    await page.getByTestId("run-tags").filter({ hasText: EVIL_IMG }).waitFor();
    assert.equal(await page.getByTestId("parameters").locator("td").first().textContent(), EVIL_IMG);
    await page.goto(`${ui.url}/#/flows/HostileFlow`);
    await page.locator("[data-testid=runs] .tag").filter({ hasText: EVIL_IMG }).waitFor();
    await page.goto(`${ui.url}/#/tasks/HostileFlow/${ids.hostile}/start/1`);
    await page.getByTestId("logs").filter({ hasText: `log ${EVIL_SCRIPT}` }).waitFor();
    await page.locator("[data-artifact=evil] button").click();
    await page.locator("[data-artifact=evil] pre").waitFor();
    await page.waitForTimeout(300);
    assert.equal(await page.locator("img").count(), 0, "no <img> element was made from a value");
    await assertNothingRan(page);
    await page.close();
  });

  void it("opens a card file from disk offline and draws its chart", async () => {
    const file = path.join(p.dir, "report.html");
    const r = await p.cli(["card", "get", `HostileFlow/${ids.hostile}/end/2`, file, "--id", "report"]);
    assert.equal(r.code, 0, r.stderr);
    const context = await browser.newContext({ offline: true });
    const requests: string[] = [];
    context.on("request", (req) => requests.push(req.url()));
    const page = await context.newPage();
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(`file://${file}`);
    assert.ok((await vegaMarks(page)) >= 3);
    assert.deepEqual(requests.filter((u) => !u.startsWith("file:") && !u.startsWith("data:")), [], "the card loads nothing from the network");
    await shot(page, "card-file");
    await assertNothingRan(page);
    await context.close();
  });

  void it("follows a running flow: step statuses and a live card change without reloading", async () => {
    const gate = path.join(p.dir, "gate");
    const child = p.spawn(["run", "wait.ts", "--gate", gate]);
    const closed = new Promise((r) => child.once("close", r));
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    try {
      while (!/waiting for the gate/.test(out)) await new Promise((r) => setTimeout(r, 50));
      const runId = await p.latestRun("WaitFlow");
      const [taskId] = await p.metadata.listTasks("WaitFlow", runId, "wait");

      const page = await newPage();
      await page.goto(`${ui.url}/#/runs/WaitFlow/${runId}`);
      await page.locator("[data-step=wait][data-status=running]").waitFor();
      await shot(page, "run-live");
      await page.evaluate("window.__sameDocument = true");
      await page.goto(`${ui.url}/#/tasks/WaitFlow/${runId}/wait/${taskId}`);
      await page.getByTestId("logs").filter({ hasText: "waiting for the gate" }).waitFor();
      const bar = page.frameLocator("iframe[title='card progress']").locator("[role=progressbar]");
      let probeError = "";
      const valueNow = async () =>
        bar.getAttribute("aria-valuenow", { timeout: 5000 }).catch((err: unknown) => {
          probeError = String((err as Error).message).split("\n").slice(0, 4).join(" | ");
          return null;
        });
      // On failure, say what the page and the API showed.
      const state = async () => {
        await shot(page, "task-live-card-failed");
        return `progress ${await valueNow()} (${probeError}); frames ${page.frames().map((f) => f.url()).join(", ")}; task ${JSON.stringify(await (await fetch(`${ui.url}/api/tasks/WaitFlow/${runId}/wait/${taskId}`)).json())}`;
      };
      await waitUntil(async () => (await valueNow()) === "3", state);
      fs.writeFileSync(gate, "go");
      await page.getByTestId("logs").filter({ hasText: "at 7" }).waitFor();
      await waitUntil(async () => (await valueNow()) === "7", state);
      await shot(page, "task-live-card");

      fs.writeFileSync(`${gate}2`, "go");
      await page.getByTestId("logs").filter({ hasText: "gate opened" }).waitFor();
      await page.goto(`${ui.url}/#/runs/WaitFlow/${runId}`);
      await page.locator("[data-step=end][data-status=completed]").waitFor({ timeout: 60_000 });
      assert.equal(await page.evaluate("window.__sameDocument"), true, "the page was never reloaded");
      await page.close();
    } finally {
      fs.writeFileSync(gate, "go");
      fs.writeFileSync(`${gate}2`, "go");
      await closed;
    }
  });
});

/** Polls `check` until it holds; on a timeout the error says what `state` reports. */
async function waitUntil(check: () => Promise<boolean>, state: () => Promise<string>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${await state()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
