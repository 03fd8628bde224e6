/**
 * The core acceptance flows on the three setups a team uses — local storage and metadata; S3 with
 * local metadata; S3 with the metadata service — each run through the real CLI and read back
 * through `openBackends`, the way another machine would see them. s3rver, PostgreSQL and the
 * service are started once for the file; in CI a missing one fails the file instead of skipping.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { LocalMetadata } from "../src/metadata/local.js";
import { ServiceMetadata } from "../src/metadata/service.js";
import { openBackends, type Backends } from "../src/backends.js";
import { SetupServers } from "./helpers/setups.js";
import { Project } from "./helpers/project.js";

const servers = new SetupServers();
before(() => servers.start());
after(() => servers.stop());
const setups = servers.setups();

const HEADER = `import * as fs from "node:fs";\nimport { createHash } from "node:crypto";\nimport { FlowSpec, step, Parameter, current, type Inputs } from "metaflow-ts";\n`;

/** The 17 MiB Buffer the Buffer flow makes (over the 16 MiB multipart threshold), rebuilt here to compare. */
function bigBuffer(): Buffer {
  const b = Buffer.alloc(17 * 2 ** 20);
  for (let i = 0; i < b.length; i += 4) b.writeUInt32LE(Math.imul(i, 2654435761) >>> 0, i);
  return b;
}

const FLOWS: Record<string, string> = {
  "hello.ts": `${HEADER}
export default class HelloFlow extends FlowSpec {
  declare message: string;
  @step start() { this.message = "hi"; console.log("starting"); console.error("to stderr"); this.next(this.end); }
  @step end() { console.log("message is " + this.message); }
}`,
  "branch.ts": `${HEADER}
export default class BranchFlow extends FlowSpec {
  declare shared: string; declare x: number; declare only: string; declare sum: number; declare kept: string;
  @step start() { this.shared = "same"; this.next(this.a, this.b); }
  @step a() { this.x = 1; this.only = "from a"; this.next(this.join); }
  @step b() { this.x = 2; this.next(this.join); }
  @step join(inputs: Inputs<BranchFlow>) {
    this.sum = inputs.a.x + inputs.b.x;
    this.mergeArtifacts(inputs, { exclude: ["x"] });
    this.next(this.end);
  }
  @step end() { this.kept = this.shared + "/" + this.only; }
}`,
  "foreach.ts": `${HEADER}
export default class ForeachFlow extends FlowSpec {
  declare items: string[]; declare label: string; declare upper: string; declare joined: string;
  @step start() { this.items = ["a", "b", "c", "d", "e"]; this.label = "L"; this.next(this.each, { foreach: "items" }); }
  @step each() { this.upper = (this.input as string).toUpperCase() + this.index; this.next(this.join); }
  @step join(inputs: Inputs<ForeachFlow>) {
    this.joined = inputs.map((i) => i.upper).join(",");
    this.mergeArtifacts(inputs, { include: ["label", "items"] });
    this.next(this.end);
  }
  @step end() {}
}`,
  "resume.ts": `${HEADER}
export default class ResumeFlow extends FlowSpec {
  factor = Parameter("factor", { default: 1 });
  declare items: number[]; declare sq: number; declare total: number; declare origin: string;
  @step start() {
    fs.appendFileSync(process.env.COUNTER!, "start\\n");
    console.log("start ran");
    this.items = [0, 1, 2, 3, 4, 5];
    this.next(this.work, { foreach: "items" });
  }
  @step work() {
    fs.appendFileSync(process.env.COUNTER!, "work " + this.input + "\\n");
    if (this.input === 3 && !process.env.FIXED) throw new Error("three is bad");
    this.sq = (this.input as number) ** 2 * this.factor;
    this.next(this.join);
  }
  @step join(inputs: Inputs<ResumeFlow>) { this.total = inputs.reduce((a, i) => a + i.sq, 0); this.next(this.end); }
  @step end() { this.origin = String(current.originRunId); }
}`,
  "buffer.ts": `${HEADER}
export default class BufferFlow extends FlowSpec {
  declare blob: Buffer; declare isBuffer: boolean; declare digest: string;
  @step start() {
    const b = Buffer.alloc(17 * 2 ** 20);
    for (let i = 0; i < b.length; i += 4) b.writeUInt32LE(Math.imul(i, 2654435761) >>> 0, i);
    this.blob = b;
    this.next(this.check);
  }
  @step check() {
    this.isBuffer = Buffer.isBuffer(this.blob);
    this.digest = createHash("sha256").update(this.blob).digest("hex");
    this.next(this.end);
  }
  @step end() {}
}`,
};

/** Reads a run's results through the configured backends, as any other machine would. */
class Results {
  constructor(readonly b: Backends) {}

  async latestRun(flow: string): Promise<string> {
    const runs = await this.b.metadata.listRuns(flow);
    assert.ok(runs[0], `no runs of ${flow}`);
    return runs[0];
  }

  async taskIds(flow: string, runId: string, step: string): Promise<string[]> {
    return this.b.metadata.listTasks(flow, runId, step);
  }

  async value(flow: string, runId: string, step: string, name: string, taskId?: string): Promise<unknown> {
    const id = taskId ?? (await this.taskIds(flow, runId, step))[0];
    assert.ok(id, `no task of ${flow}/${runId}/${step}`);
    const task = await this.b.metadata.getTask(flow, runId, step, id);
    const last = task?.attempts[task.attempts.length - 1];
    const ref = last?.end?.artifacts.find((a) => a.name === name);
    assert.ok(ref, `no artifact ${name} in ${flow}/${runId}/${step}/${id}`);
    return this.b.store.getValue(ref);
  }

  async status(flow: string, runId: string): Promise<string | undefined> {
    return (await this.b.metadata.getRunEnd(flow, runId))?.status;
  }

  async log(flow: string, runId: string, step: string, taskId: string, stream: "stdout" | "stderr"): Promise<string> {
    const key = `flows/${flow}/${runId}/${step}/${taskId}/attempt-0.${stream}.log`;
    const text = await this.b.storage.get(key);
    assert.ok(text, `no log ${key} in ${this.b.storage.root}`);
    return text.toString("utf8");
  }
}

for (const setup of setups) {
  void describe(setup.name, { skip: setup.skip }, () => {
    let project: Project;
    let env: Record<string, string>;
    let results: Results;

    before(() => {
      project = new Project();
      for (const [file, text] of Object.entries(FLOWS)) project.write(file, text);
      env = setup.env(project);
      // A reader with a cache of its own, so every artifact is really read from the datastore.
      const readerEnv = { ...process.env, ...env, ...(setup.remote ? { METAFLOW_S3_CACHE_DIR: path.join(project.dir, "reader-cache") } : {}) };
      results = new Results(openBackends({ env: readerEnv, cwd: project.dir }));
    });
    after(() => {
      results?.b.close();
      project?.cleanup();
    });

    const run = async (args: string[], extraEnv: Record<string, string> = {}) => project.cli(args, { env: { ...env, ...extraEnv }, timeoutMs: 120_000 });

    void test("the run goes where the setup says", () => {
      assert.equal(results.b.storage.root.startsWith("s3://"), setup.remote, results.b.storage.root);
      assert.equal(results.b.metadata instanceof ServiceMetadata, setup.metadata === "service");
    });

    void test("hello: artifacts, status, logs and the code package in the datastore", async () => {
      const r = await run(["run", "hello.ts", "--tag", "accept"]);
      assert.equal(r.code, 0, r.stderr);
      const runId = await results.latestRun("HelloFlow");
      assert.match(r.stdout, new RegExp(`Done! HelloFlow/${runId}: 2 tasks`));
      assert.equal(await results.status("HelloFlow", runId), "completed");
      assert.equal(await results.value("HelloFlow", runId, "end", "message"), "hi");
      const record = await results.b.metadata.getRun("HelloFlow", runId);
      assert.deepEqual(record?.tags, ["accept"]);

      const [startId] = await results.taskIds("HelloFlow", runId, "start");
      const [endId] = await results.taskIds("HelloFlow", runId, "end");
      assert.match(await results.log("HelloFlow", runId, "start", startId!, "stdout"), /^\d{4}-\d\d-\d\dT[^\t]+\tstarting$/m);
      assert.match(await results.log("HelloFlow", runId, "start", startId!, "stderr"), /\tto stderr$/m);
      assert.match(await results.log("HelloFlow", runId, "end", endId!, "stdout"), /\tmessage is hi$/m);

      const manifest = JSON.parse((await results.b.store.get(record!.codePackage)).toString()) as { files: Record<string, string>; bundle: string };
      assert.ok(manifest.files["hello.ts"], JSON.stringify(manifest));
      assert.match((await results.b.store.get(manifest.files["hello.ts"]!)).toString(), /class HelloFlow/);
      assert.match((await results.b.store.get(manifest.bundle)).toString(), /HelloFlow/);

      if (setup.remote) {
        // No log or artifact landed in the local directory: they are in the bucket.
        const localLog = path.join(project.root, "flows", "HelloFlow", runId, "start", startId!, "attempt-0.stdout.log");
        assert.equal(fs.existsSync(localLog), false, "logs were written locally");
        assert.equal(fs.existsSync(path.join(project.root, "data")), false, "artifacts were written locally");
      }
      if (setup.metadata === "service") {
        assert.deepEqual(await new LocalMetadata(project.root).listRuns("HelloFlow"), [], "metadata was written locally");
        const status = await (results.b.metadata as ServiceMetadata).getRunStatus("HelloFlow", runId);
        assert.equal(status?.status, "completed");
      }
    });

    void test("the client's commands read the same run: runs, dump, logs", async () => {
      const runId = await results.latestRun("HelloFlow");
      const runs = await run(["runs", "HelloFlow"]);
      assert.equal(runs.code, 0, runs.stderr);
      assert.match(runs.stdout, new RegExp(`${runId}\\s+completed`));
      const dump = await run(["dump", `HelloFlow/${runId}/end`]);
      assert.equal(dump.code, 0, dump.stderr);
      assert.match(dump.stdout, /message: string.*=\s*'hi'|message.*'hi'/s);
      const logs = await run(["logs", `HelloFlow/${runId}/start`, "--stdout"]);
      assert.equal(logs.code, 0, logs.stderr);
      assert.match(logs.stdout, /starting/);
      assert.doesNotMatch(logs.stdout, /to stderr/);
    });

    void test("cards are stored in the setup's datastore and read back by metaflow card", async () => {
      const r = await run(["run", "hello.ts", "--with", "card"]);
      assert.equal(r.code, 0, r.stderr);
      const runId = await results.latestRun("HelloFlow");
      const [endId] = await results.taskIds("HelloFlow", runId, "end");
      const list = await run(["card", "list", `HelloFlow/${runId}/end/${endId}`]);
      assert.equal(list.code, 0, list.stderr);
      assert.equal(list.stdout, "-\tdefault\tattempt 0\tfinal\n");
      const page = await run(["card", "get", `HelloFlow/${runId}/end/${endId}`]);
      assert.match(page.stdout, /<td><span class="mf-text">message<\/span><\/td><td><span class="mf-text">string<\/span><\/td>/);
      const key = `flows/HelloFlow/${runId}/end/${endId}/cards/attempt-0/0.default.final.html`;
      assert.ok(await results.b.storage.exists(key), `no ${key} in ${results.b.storage.root}`);
      if (setup.remote) assert.equal(fs.existsSync(path.join(project.root, key)), false, "the card was written locally");
    });

    void test("branch and join with mergeArtifacts", async () => {
      const r = await run(["run", "branch.ts"]);
      assert.equal(r.code, 0, r.stderr);
      const runId = await results.latestRun("BranchFlow");
      assert.equal(await results.status("BranchFlow", runId), "completed");
      assert.equal(await results.value("BranchFlow", runId, "join", "sum"), 3);
      assert.equal(await results.value("BranchFlow", runId, "end", "kept"), "same/from a");
      await assert.rejects(results.value("BranchFlow", runId, "end", "x"), /no artifact x/);
    });

    void test("foreach and join: every split's artifact, in order", async () => {
      const r = await run(["run", "foreach.ts"]);
      assert.equal(r.code, 0, r.stderr);
      const runId = await results.latestRun("ForeachFlow");
      assert.equal(await results.status("ForeachFlow", runId), "completed");
      assert.equal(await results.value("ForeachFlow", runId, "end", "joined"), "A0,B1,C2,D3,E4");
      assert.equal(await results.value("ForeachFlow", runId, "end", "label"), "L");
      const ids = await results.taskIds("ForeachFlow", runId, "each");
      assert.equal(ids.length, 5);
      const uppers = await Promise.all(ids.map((id) => results.value("ForeachFlow", runId, "each", "upper", id)));
      assert.deepEqual([...(uppers as string[])].sort(), ["A0", "B1", "C2", "D3", "E4"]);
    });

    void test("a failed run, then resume clones the finished tasks and reruns the rest", async () => {
      const counter = path.join(project.dir, "counter.txt");
      const first = await run(["run", "resume.ts", "--factor", "2", "--max-workers", "1"], { COUNTER: counter });
      assert.equal(first.code, 1, first.stderr);
      const origin = await results.latestRun("ResumeFlow");
      assert.equal(await results.status("ResumeFlow", origin), "failed");
      assert.equal((await results.b.metadata.getRunEnd("ResumeFlow", origin))?.failedStep, "work");

      const second = await run(["resume", "resume.ts"], { COUNTER: counter, FIXED: "1" });
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stdout, /Cloned from ResumeFlow\/\d+\/start\/1/);
      const resumed = await results.latestRun("ResumeFlow");
      assert.notEqual(resumed, origin);
      assert.equal(await results.status("ResumeFlow", resumed), "completed");
      assert.equal((await results.b.metadata.getRun("ResumeFlow", resumed))?.originRunId, origin);
      assert.equal(await results.value("ResumeFlow", resumed, "end", "total"), 2 * (0 + 1 + 4 + 9 + 16 + 25));
      assert.equal(await results.value("ResumeFlow", resumed, "end", "origin"), origin);
      const lines = fs.readFileSync(counter, "utf8").split("\n");
      assert.equal(lines.filter((l) => l === "start").length, 1, "start was cloned, not rerun");
      for (const i of [0, 1, 2]) assert.equal(lines.filter((l) => l === `work ${i}`).length, 1, `work ${i} ran once`);
      assert.equal(lines.filter((l) => l === "work 3").length, 2);
      // The cloned task's log came along with it.
      const [startId] = await results.taskIds("ResumeFlow", resumed, "start");
      assert.match(await results.log("ResumeFlow", resumed, "start", startId!, "stdout"), /\tstart ran$/m);
    });

    void test("a 17 MiB Buffer artifact round-trips byte for byte", async () => {
      const r = await run(["run", "buffer.ts"]);
      assert.equal(r.code, 0, r.stderr);
      const runId = await results.latestRun("BufferFlow");
      assert.equal(await results.status("BufferFlow", runId), "completed");
      const expected = bigBuffer();
      assert.equal(await results.value("BufferFlow", runId, "check", "isBuffer"), true);
      assert.equal(await results.value("BufferFlow", runId, "check", "digest"), createHash("sha256").update(expected).digest("hex"));
      const blob = await results.value("BufferFlow", runId, "end", "blob");
      assert.ok(Buffer.isBuffer(blob), `got ${typeof blob}`);
      assert.ok(expected.equals(blob));
    });
  });
}
