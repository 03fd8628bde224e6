/** The flow SPEC §2 shows runs as written: decorators, parameters, IncludeFile, foreach and join. */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { Project, REPO } from "./helpers/project.js";

const project = new Project();
after(() => project.cleanup());

void test("SPEC §2's TrainFlow runs: typed parameters, @retry @timeout @resources, foreach, join", async () => {
  fs.copyFileSync(path.join(REPO, "test/fixtures/spec-train.ts"), path.join(project.dir, "train.ts"));
  project.write("data/rows.csv", "x,y\n1,2\n");
  const missing = await project.cli(["run", "train.ts"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Parameter 'epochs' is required/);

  const r = await project.cli(["run", "train.ts", "--epochs", "3", "--alpha", "0.5"], { timeoutMs: 120000 });
  assert.equal(r.code, 0, r.stderr);
  const runId = await project.latestRun("TrainFlow");
  assert.equal(await project.value("TrainFlow", runId, "end", "score"), "c".charCodeAt(0) * 0.5);
  assert.deepEqual(await project.value("TrainFlow", runId, "end", "models"), ["a", "b", "c"]);
  assert.equal(await project.value("TrainFlow", runId, "end", "rows"), "x,y\n1,2\n");
  // @resources({ memory }) runs each train task in a process of its own.
  const trainPids = new Set([...r.stdout.matchAll(/\/train\/\d+ \(pid (\d+)\)/g)].map((m) => m[1]));
  assert.equal(trainPids.size, 3);
});
