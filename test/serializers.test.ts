/**
 * User serializers end to end: a model class registered in a module the flow imports is stored by
 * its serializer in every task and rebuilt as the step's own class; client code finds it by the
 * name recorded with the artifact, and says which serializer to register when it is missing; a
 * serializer that throws, or a class without one, fails the task with an error naming them, and
 * nothing of that task is stored.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";
import { Project, REPO } from "./helpers/project.js";

const FLOW = path.join(REPO, "test/fixtures/model-flow.ts");
const CLIENT = path.join(REPO, "test/fixtures/model-client.ts");
const project = new Project();
after(() => project.cleanup());

async function client(pathspec: string, mode: "register" | "bare"): Promise<Record<string, unknown>> {
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", CLIENT, project.root, pathspec, mode], { cwd: REPO });
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as Record<string, unknown>;
}

function objectExists(content: Buffer): boolean {
  const hash = createHash("sha256").update(content).digest("hex");
  return fs.existsSync(path.join(project.root, "data", hash.slice(0, 2), hash));
}

let runId: string;

void test("a model class with a registered serializer is an artifact in every task, as the step's own class", async () => {
  const r = await project.cli(["run", FLOW]);
  assert.equal(r.code, 0, r.stderr);
  runId = await project.latestRun("ModelFlow");
  assert.deepEqual(await project.value("ModelFlow", runId, "end", "checks"), { model: true, prediction: 21, data: true });
  const start = await project.artifacts("ModelFlow", runId, "start");
  const model = start.get("model")!;
  assert.deepEqual(
    { serializer: model.serializer, encoding: model.encoding, type: model.type, summary: model.summary },
    { serializer: "linear-model", encoding: "bytes", type: "LinearModel", summary: { slope: 2, intercept: 1 } },
  );
  // A serializer may return plain data instead of bytes: stored with structured clone, its name recorded.
  const data = start.get("data")!;
  assert.deepEqual([data.serializer, data.encoding, data.type], ["point-set", "v8", "PointSet"]);

  const dump = await project.cli(["dump", `ModelFlow/${runId}/start`]);
  assert.equal(dump.code, 0, dump.stderr);
  assert.match(dump.stdout, /model: LinearModel, \d+ B, serializer linear-model\n {4}slope: 2\n {4}intercept: 1/);
});

void test("client code reads the model once it registers the serializer, and is told which one when it has not", async () => {
  assert.deepEqual(await client(`ModelFlow/${runId}`, "register"), { ok: true, type: "LinearModel", prediction: 21 });
  const bare = await client(`ModelFlow/${runId}`, "bare");
  assert.equal(bare.ok, false);
  assert.equal(bare.name, "SerializerError");
  assert.equal(bare.code, "serializer-missing");
  assert.equal(bare.serializer, "linear-model");
  assert.match(
    String(bare.message),
    /artifact 'model' was stored by the serializer "linear-model", which is not registered in this process\. Register the same serializer before reading it.*registerSerializer\(\{ name: "linear-model"/i,
  );
});

void test("a serializer that throws fails the task naming it, the step and the artifact; nothing is stored", async () => {
  const r = await project.cli(["run", FLOW], { env: { MODEL_FLOW_MODE: "bomb" } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Step 'start' cannot store artifact 'bomb': the serializer "exploding" failed to encode it: Error: cannot encode a Bomb/);
  const failed = await project.latestRun("ModelFlow");
  assert.deepEqual([...(await project.artifacts("ModelFlow", failed, "start")).keys()], []);
  // The step's other artifacts, which could be stored, were not written either.
  assert.equal(objectExists(Buffer.from("written before the others bomb")), false);
});

void test("a class instance without a serializer is refused with today's message and how to register one", async () => {
  const r = await project.cli(["run", FLOW], { env: { MODEL_FLOW_MODE: "gadget" } });
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /Step 'start' cannot store artifact 'gadget': an instance of class Gadget \(store plain data: objects, arrays, Map, Set, Date, typed arrays; or register a serializer for the class in the flow module: registerSerializer\(\{ name, test, encode, decode \}\) from "metaflow-ts", see docs\/data\.md\)/,
  );
  assert.equal(objectExists(Buffer.from("written before the others gadget")), false);
});

void test("a flow module that registers a bad serializer fails before any task, naming the field", async () => {
  const flow = project.write(
    "bad_registration.ts",
    `import { FlowSpec, registerSerializer, step } from "metaflow-ts";
registerSerializer({ name: "my model", test: () => false, encode: () => Buffer.alloc(0), decode: () => null });
export default class BadRegistrationFlow extends FlowSpec {
  @step start() { this.next(this.end); }
  @step end() {}
}
`,
  );
  const r = await project.cli(["run", flow]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /registerSerializer\(\): name must be 1 to 100 letters, digits or "\.-_@\/" starting with a letter or digit, got "my model"/);
  assert.doesNotMatch(r.stdout, /Task is starting/);
});
