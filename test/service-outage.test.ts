/**
 * The metadata service going away in the middle of a run (the real service process, stopped): the
 * runtime stops cleanly once the retry window is over — no stack trace, the resume command
 * printed — the run reads as failed, and the printed command resumes it once the service is back.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { openBackends, type Backends } from "../src/backends.js";
import { collect, Project } from "./helpers/project.js";
import { remoteAvailability, startRemoteStack, type RemoteStack } from "./helpers/remote.js";

const availability = remoteAvailability();
const skip = availability.s3 ?? availability.postgres;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const FLOW = `import * as fs from "node:fs";
import { FlowSpec, step } from "metaflow-ts";
export default class OutageFlow extends FlowSpec {
  declare value: number;
  @step start() { this.value = 7; this.next(this.wait); }
  @step async wait() {
    console.log("waiting");
    while (!fs.existsSync(process.env.GATE!)) await new Promise((r) => setTimeout(r, 50));
    this.next(this.end);
  }
  @step end() {}
}
`;

void describe("the metadata service stopped mid-run", { skip }, () => {
  let stack: RemoteStack;
  const project = new Project();
  let backends: Backends | undefined;

  before(async () => {
    stack = await startRemoteStack({ heartbeatTimeoutSeconds: 4 });
  });
  after(async () => {
    backends?.close();
    project.kill();
    await stack?.stop();
    project.cleanup();
  });

  void test("the run stops cleanly with the resume command, reads as failed, and that command resumes it", async () => {
    project.write("outage.ts", FLOW);
    const gate = path.join(project.dir, "gate");
    const env = {
      ...stack.env({ prefix: "outage", cacheDir: path.join(project.dir, "cache"), metadata: "service" }),
      METAFLOW_SERVICE_RETRY_TIMEOUT: "3",
      GATE: gate,
    };
    const child = project.spawn(["run", "outage.ts"], env);
    const done = collect(child);
    let seen = "";
    child.stdout.on("data", (d: Buffer) => (seen += d.toString()));
    for (let i = 0; !/\/wait\/\d+ .*waiting/.test(seen); i++) {
      assert.ok(i < 1200 && child.exitCode === null, `the wait step never started:\n${seen}`);
      await sleep(50);
    }
    const runId = /run-id (\d+)/.exec(seen)?.[1];
    assert.ok(runId, seen);

    await stack.service!.stop();
    fs.writeFileSync(gate, "");
    const r = await done;
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, /Run OutageFlow\/\d+ stopped: could not record task OutageFlow\/\d+\/wait\/\d+ in the metadata/);
    assert.match(r.stderr, /metadata service at http:\/\/\S+ is unavailable/);
    assert.doesNotMatch(r.stderr, /Internal error|^\s+at /m);
    const command = /To resume it: npx (metaflow resume .*)$/m.exec(r.stderr)?.[1];
    assert.ok(command, r.stderr);

    // Back up: the run, whose runtime is gone, reads as failed (its heartbeats stopped)...
    await stack.restartService();
    backends = openBackends({ env: { ...process.env, ...env }, cwd: project.dir });
    for (let i = 0; (await backends.metadata.getRunEnd("OutageFlow", runId))?.status !== "failed"; i++) {
      assert.ok(i < 300, "the run never read as failed");
      await sleep(100);
    }
    // ...and the command printed resumes it: the finished start task is cloned.
    const resumed = await project.cli(command.split(" ").slice(1), { env });
    assert.equal(resumed.code, 0, `${resumed.stdout}\n${resumed.stderr}`);
    assert.match(resumed.stdout, /\/start\/\d+\] Cloned from/);
  });
});
