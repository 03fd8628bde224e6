/** @environment and @resources: what they change for a task, and their validation. */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { Project } from "./helpers/project.js";

const project = new Project();
after(() => project.cleanup());

const HEADER = `import { FlowSpec, step, environment, resources } from "metaflow-ts";\n`;

void test("@environment sets variables for its step only; --with environment adds them to every step", async () => {
  project.write(
    "env.ts",
    `${HEADER}
export default class EnvFlow extends FlowSpec {
  declare seen: string; declare later: string;
  @environment({ vars: { MODEL_KIND: "tree", DEPTH: "4" } })
  @step start() { this.seen = process.env.MODEL_KIND + "/" + process.env.DEPTH; this.next(this.end); }
  @step end() { this.later = String(process.env.MODEL_KIND) + "/" + String(process.env.GLOBAL_FLAG) + "/" + String(process.env.OTHER); }
}`,
  );
  const r = await project.cli(["run", "env.ts", "--with", 'environment:vars={"GLOBAL_FLAG":"on","OTHER":"x"}']);
  assert.equal(r.code, 0, r.stderr);
  const runId = await project.latestRun("EnvFlow");
  assert.equal(await project.value("EnvFlow", runId, "start", "seen"), "tree/4");
  assert.equal(await project.value("EnvFlow", runId, "end", "later"), "undefined/on/x");
});

void test("decorator options are validated when the flow loads, naming the step, the field and the value", async () => {
  project.write(
    "badres.ts",
    `${HEADER}
export default class BadResFlow extends FlowSpec {
  @resources({ memory: 10 }) @step start() { this.next(this.end); }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "badres.ts"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /step 'start': @resources\.memory must be an integer number of MiB ≥ 64, got 10/);

  project.write(
    "badenv.ts",
    `${HEADER}
export default class BadEnvFlow extends FlowSpec {
  @step start() { this.next(this.end); }
  @step end() {}
}`,
  );
  const cli = await project.cli(["run", "badenv.ts", "--with", "environment:vars=notjson"]);
  assert.equal(cli.code, 2);
  assert.match(cli.stderr, /@environment\.vars must be a JSON object/);
  const unknown = await project.cli(["run", "badenv.ts", "--with", "resources:cpus=2"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /@resources has no option 'cpus'; its options are: cpu, memory, gpu/);
});
