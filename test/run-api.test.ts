/** runFlow called from code (as Runner and the benchmark do): a failed start leaves no process behind. */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { after, test } from "node:test";
import * as library from "../src/index.js";
import { runFlow } from "../src/runtime/run.js";
import { Project } from "./helpers/project.js";

const project = new Project();
after(() => project.cleanup());

/** Worker hosts this process started that are still running. */
function myWorkerHosts(): number[] {
  const out: number[] = [];
  for (const pid of fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === process.pid && fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("worker.js")) out.push(Number(pid));
    } catch {
      // it ended while we looked
    }
  }
  return out;
}

void test("a run whose metadata settings are wrong fails with the setting named and stops the worker it started", async () => {
  const flow = project.write(
    "hello.ts",
    `import { FlowSpec, step } from "metaflow-ts";\nexport default class HelloFlow extends FlowSpec {\n  @step start() { this.next(this.end); }\n  @step end() {}\n}\n`,
  );
  const env = { ...process.env, METAFLOW_HOME: project.path("no-config"), METAFLOW_DEFAULT_METADATA: "service", METAFLOW_SERVICE_URL: "" };
  await assert.rejects(runFlow({ flowFile: project.path(flow), env, output: () => undefined }, library), /METAFLOW_SERVICE_URL is not set/);
  // The worker started ahead of the run is stopped (it may take a moment to exit).
  for (let i = 0; myWorkerHosts().length > 0; i++) {
    assert.ok(i < 100, `worker hosts left running: ${myWorkerHosts().join(", ")}`);
    await new Promise((r) => setTimeout(r, 50));
  }
});
