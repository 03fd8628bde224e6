/**
 * The Runner: a flow run from code through the same `runFlow` as `metaflow run`, handing back
 * client objects; failures, bad parameters, a live handle with logs, and kill.
 */
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { ExecutingRun, ParameterError, Run, Runner, RunnerFailedError, RunFailedError, defaultNamespace } from "../src/index.js";
import { CLIENT_FLOW } from "./fixtures/client-flow.js";
import { Project, waitFor } from "./helpers/project.js";

// Only the type of the flow is needed; the class itself lives in the project's flow file.
interface ClientTestFlow {
  n: number;
  total: number;
  items: number[];
  blob: Buffer;
}

let project: Project;
let flowFile: string;

before(async () => {
  project = new Project();
  flowFile = project.path(project.write("flow.ts", CLIENT_FLOW));
  defaultNamespace();
});

after(() => project.cleanup());

void describe("Runner.run", () => {
  void it("resolves to the finished Run, tagged, with typed artifacts", async () => {
    const run = await new Runner<ClientTestFlow>(flowFile, { datastoreRoot: project.root, tags: ["from-code"] }).run({ n: 4 });
    assert.ok(run instanceof Run);
    assert.equal(run.successful, true);
    assert.ok(run.userTags.includes("from-code"));
    const total: number = await run.data("total");
    assert.equal(total, 1 + 4 + 9 + 16);
    assert.equal(await run.data("n"), 4);
    // The same run is readable through the client like any other.
    assert.equal((await Run.get(run.pathspec, { datastoreRoot: project.root })).id, run.id);
  });

  void it("rejects with a RunnerFailedError carrying the failed Run", async () => {
    await assert.rejects(new Runner(flowFile, { datastoreRoot: project.root }).run({ fail: true }), (e: unknown) => {
      assert.ok(e instanceof RunnerFailedError);
      assert.ok(e instanceof RunFailedError);
      assert.equal(e.failedStep, "square");
      assert.equal(e.run.successful, false);
      assert.equal(e.run.failedStep, "square");
      assert.match(e.message, /failed in step 'square' .*boom in square/);
      return true;
    });
  });

  void it("rejects a bad parameter before any task starts", async () => {
    await assert.rejects(new Runner(flowFile, { datastoreRoot: project.root }).run({ n: "many" }), ParameterError);
  });
});

void describe("Runner.resume", () => {
  void it("resumes a failed run, reusing the tasks that finished, and resolves to the new Run", async () => {
    const marker = path.join(project.dir, "broken");
    const file = project.path(
      project.write(
      "flaky.ts",
      `import * as fs from "node:fs";
       import { FlowSpec, step } from "metaflow-ts";
       export default class FlakyFlow extends FlowSpec {
         declare x: number;
         @step start() { this.x = 20; this.next(this.middle); }
         @step middle() {
           if (fs.existsSync(${JSON.stringify(marker)})) throw new Error("still broken");
           this.x += 1;
           this.next(this.end);
         }
         @step end() {}
       }`,
      ),
    );
    await fs.writeFile(marker, "");
    const runner = new Runner<{ x: number }>(file, { datastoreRoot: project.root });
    const failed = await runner.run().catch((e: unknown) => (e as RunnerFailedError).run);
    assert.equal(failed.failedStep, "middle");
    await fs.rm(marker);
    const resumed = await runner.resume({ originRunId: failed.id });
    assert.notEqual(resumed.id, failed.id);
    assert.equal(resumed.originRunId, failed.id);
    assert.equal(await resumed.data("x"), 21);
    const start = await (await resumed.step("start")).task();
    assert.match(start.attempts.at(-1)?.clonedFrom ?? "", new RegExp(`FlakyFlow/${failed.id}/start/`));
  });
});

void describe("Runner.runAsync", () => {
  void it("gives the run id at once, streams log lines, and waits for the Run", async () => {
    const handle = await new Runner<ClientTestFlow>(flowFile, { datastoreRoot: project.root }).runAsync({ n: 2 });
    assert.ok(handle instanceof ExecutingRun);
    assert.match(handle.runId, /^\d+$/);
    const lines: string[] = [];
    for await (const l of handle.logs()) lines.push(l.line);
    assert.ok(lines.some((l) => l.endsWith("starting") && l.includes(`[${handle.runId}/start/`)), lines.join("\n"));
    assert.ok(lines.some((l) => l.startsWith(`Done! ClientTestFlow/${handle.runId}`)));
    const run = await handle.wait();
    assert.equal(handle.status, "completed");
    assert.equal(await run.data("total"), 5);
  });

  void it("kill() stops a running run and marks it failed", async () => {
    const gate = path.join(project.dir, "never-opened");
    const handle = await new Runner(flowFile, { datastoreRoot: project.root }).runAsync({ n: 2, gate });
    assert.equal(handle.status, "running");
    await waitFor("a square task", async () => {
      for await (const l of handle.logs()) if (l.line.includes("square 0")) return true;
      return undefined;
    });
    await handle.kill();
    assert.equal(handle.status, "failed");
    const run = await handle.wait();
    assert.equal(run.finished, true);
    assert.equal(run.successful, false);
    await assert.rejects(fs.access(gate));
  });
});
