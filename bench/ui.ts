/**
 * UI figures (issue 12): the runs page of a flow with 10,000 runs, in Chromium, against a temp
 * datastore whose runs are written straight through `LocalMetadata` (running 10,000 flows would
 * measure the runtime). Time to first content is from navigation to the first rows on screen.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ContentStore } from "../src/datastore/cas.js";
import { LocalStorage } from "../src/datastore/local.js";
import { LocalMetadata } from "../src/metadata/local.js";
import { CLI, type BenchRow } from "./common.js";

const RUNS = 10_000;
const FLOW = "BenchUiFlow";


async function populate(root: string): Promise<void> {
  const metadata = new LocalMetadata(root);
  const store = new ContentStore(new LocalStorage(root));
  const code = (await store.put([Buffer.from(JSON.stringify({ flowFile: "bench.ts", className: FLOW, bundle: "", sourceMap: "", files: {} }))])).hash;
  for (let i = 0; i < RUNS; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, RUNS - i) }, async (_, k) => {
        const n = i + k;
        const runId = await metadata.newRun({
          flow: FLOW,
          user: `user${n % 7}`,
          createdAt: Date.now(),
          parameters: { n },
          parameterRefs: [],
          systemTags: [`user:user${n % 7}`],
          tags: n % 10 === 0 ? ["nightly"] : [],
          codePackage: code,
          flowFile: "bench.ts",
          className: FLOW,
        });
        await metadata.finishRun(FLOW, runId, { status: n % 13 === 0 ? "failed" : "completed", finishedAt: Date.now() });
      }),
    );
  }
}

function startUi(dir: string): Promise<{ url: string; stop: () => void }> {
  const child = spawn(process.execPath, [CLI, "ui", "--port", "0"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  return new Promise((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /Metaflow UI on (http:\/\/\S+?)\/? /.exec(out);
      if (m) resolve({ url: m[1]!, stop: () => child.kill("SIGTERM") });
    });
    child.once("exit", () => reject(new Error(`metaflow ui exited:\n${out}`)));
  });
}

/** Measures the runs page; returns rows for `npm run bench` (or one note when Chromium is missing). */
export async function benchUi(report: (row: BenchRow) => void): Promise<void> {
  const browserPath = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => fs.existsSync(p));
  if (!browserPath) {
    report({ name: "UI runs page, 10,000 runs", value: Number.NaN, unit: "ms", note: "skipped: apt-get install -y chromium" });
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mf-bench-ui-"));
  const root = path.join(dir, ".metaflow");
  fs.mkdirSync(root);
  const t0 = performance.now();
  await populate(root);
  report({ name: "UI: writing 10,000 runs (setup)", value: (performance.now() - t0) / 1000, unit: "s" });
  const ui = await startUi(dir);
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath: browserPath, args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
  try {
    const page = await browser.newPage();
    const firstRows = async (hash: string, expect: RegExp): Promise<number> => {
      const start = performance.now();
      await page.goto(`${ui.url}/${hash}`);
      await page.getByTestId("run-count").filter({ hasText: expect }).waitFor({ timeout: 120_000 });
      await page.locator("[data-testid=runs] tbody tr").first().waitFor();
      return performance.now() - start;
    };
    const cold = await firstRows(`#/flows/${FLOW}`, /of 10,000/);
    report({ name: "UI runs page, 10,000 runs: first content", value: cold, unit: "ms", target: "≤ 1000 ms", ok: cold <= 1000, note: "fresh server, browser navigation to the first 50 rows" });
    await page.goto("about:blank");
    const warm = await firstRows(`#/flows/${FLOW}?page=100`, /of 10,000/);
    report({ name: "  page 100 (runs 4,951–5,000)", value: warm, unit: "ms" });
    await page.goto("about:blank");
    const filterCold = await firstRows(`#/flows/${FLOW}?tag=nightly`, /of 1,000/);
    report({ name: "  filtered by tag, first time", value: filterCold, unit: "ms", note: "every run is read in the background once the first page shows" });
    await page.goto("about:blank");
    const filterWarm = await firstRows(`#/flows/${FLOW}?status=failed&user=user3`, /of \d/);
    report({ name: "  filtered by status and user, cached", value: filterWarm, unit: "ms", target: "≤ 1000 ms", ok: filterWarm <= 1000 });
  } finally {
    await browser.close();
    ui.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
