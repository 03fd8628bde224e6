/**
 * `@slurm` with the team set-up: artifacts and logs in S3 (s3rver), metadata in the service
 * (PostgreSQL), on a real one-node Slurm cluster — all started by this file. The same flow shapes
 * as on a local datastore: the jobs read their inputs from S3 and record their attempts in the
 * service, the console tails their logs from S3, the client reads it all back, and the scheduler
 * records the end of a job cancelled at its @timeout in the service. Loopback URLs and local
 * metadata with S3 are refused before submission when the check is strict.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { after, before, describe, test } from "node:test";
import { listJobs, SlurmCli } from "../src/launchers/slurm/index.js";
import { assertOk, collect, Project, runIdOf, waitForOutput } from "./helpers/project.js";
import { SetupServers, type Setup } from "./helpers/setups.js";
import { slurmAvailability, startSlurm, type TestSlurm } from "./helpers/slurm.js";

const availability = slurmAvailability();
const servers = new SetupServers();
const [, s3Local, s3Service] = servers.setups() as [Setup, Setup, Setup];
const skip = "skip" in availability ? availability.skip : (s3Service.skip ?? false);
const HEADER = `import * as fs from "node:fs";\nimport { FlowSpec, step, slurm, retry, timeout, current, type Inputs } from "metaflow-ts";\n`;

let cluster: TestSlurm;
const project = new Project({ prefix: "mf-slurm-s3-" });

function env(setup: Setup, extra: Record<string, string> = {}): Record<string, string> {
  return { ...setup.env(project), ...cluster.env, METAFLOW_SLURM_POLL_INTERVAL: "0.5", ...extra };
}



void describe("@slurm with S3 and the metadata service", { skip, concurrency: true }, () => {
  before(async () => {
    if (skip) return;
    await servers.start();
    if ("bins" in availability) cluster = await startSlurm(availability.bins);
  });
  after(async () => {
    project.cleanup();
    await cluster?.stop();
    await servers.stop();
  });

  void test("a foreach on Slurm with a retry: inputs and artifacts through S3, attempts in the service, logs tailed from S3", async () => {
    const gate = project.path("gate");
    project.write(
      "team.ts",
      `${HEADER}
export default class TeamSlurmFlow extends FlowSpec {
  declare items: string[]; declare upper: string; declare joined: string; declare host: string;
  @step start() { this.items = ["a", "b", "c", "d"]; this.next(this.shout, { foreach: "items" }); }
  @retry({ times: 1 }) @slurm @step async shout() {
    console.log(\`shouting \${this.input}\`);
    if (this.input === "b" && current.retryCount === 0) throw new Error("b fails once");
    if (this.input === "d") while (!fs.existsSync(${JSON.stringify(gate)})) await new Promise((r) => setTimeout(r, 100));
    this.upper = (this.input as string).toUpperCase();
    this.next(this.join);
  }
  @step join(inputs: Inputs<TeamSlurmFlow>) { this.joined = inputs.map((i) => i.upper).join(""); this.next(this.end); }
  @step end() { console.log(\`joined \${this.joined}\`); }
}
`,
    );
    const e = env(s3Service);
    const child = project.spawn(["run", "team.ts"], e);
    const done = collect(child);
    let out = "";
    child.stdout.on("data", (t: Buffer) => (out += t.toString()));
    // Element 3 waits for the gate: its first line reaches the console from S3 while its job runs.
    await waitForOutput(() => out, /\/shout\/5 \(slurm job \d+_3\)\] shouting d/);
    const runId = runIdOf(out);
    const running = await listJobs(new SlurmCli({ env: cluster.env }), {
      flow: "TeamSlurmFlow",
      runId,
    });
    assert.ok(
      running.some((j) => j.id.endsWith("_3") && j.state === "RUNNING"),
      JSON.stringify(running),
    );
    fs.writeFileSync(gate, "");
    const r = await done;
    assertOk(r);
    assert.match(r.stderr, /\/shout\/3 \(slurm job \d+_1\)\] Error: b fails once/);
    assert.match(r.stdout, /\/shout\/3 \(slurm job \d+\)\] Task is starting\. \(retry 1\)/);
    assert.match(r.stdout, /\/end\/\d+ \(pid \d+\)\] joined ABCD/);
    const dump = await project.cli(["dump", `TeamSlurmFlow/${runId}/shout`, "--include", "upper"], {
      env: e,
    });
    assertOk(dump);
    assert.deepEqual(
      [...dump.stdout.matchAll(/upper: string, \d+ B = \W?(\w)/g)].map((m) => m[1]),
      ["A", "B", "C", "D"],
    );
    const logs = await project.cli(["logs", `TeamSlurmFlow/${runId}/shout/3`], { env: e });
    assert.equal(logs.stdout, "shouting b\n", "the latest attempt's log, from S3");
    const first = await project.cli(["logs", `TeamSlurmFlow/${runId}/shout/3`, "--attempt", "0"], {
      env: e,
    });
    assert.match(first.stderr, /Error: b fails once/);
  });

  void test("a job cancelled at its @timeout is recorded as failed in the service by the scheduler", async () => {
    project.write(
      "late.ts",
      `${HEADER}
export default class LateSlurmFlow extends FlowSpec {
  @step start() { this.next(this.late); }
  @timeout({ seconds: 2 }) @slurm @step async late() { await new Promise((r) => setTimeout(r, 120_000)); this.next(this.end); }
  @step end() {}
}
`,
    );
    const e = env(s3Service);
    const r = await project.cli(["run", "late.ts"], { env: e });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /TimeoutError: Step 'late' timed out after 2 s/);
    const dump = await project.cli(["dump", `LateSlurmFlow/${runIdOf(r.stdout)}/late`], { env: e });
    assert.match(dump.stdout, /late\/2 \(failed/, dump.stdout + dump.stderr);
  });

  void test("with a strict check, loopback URLs and local metadata beside S3 are refused before submission", async () => {
    project.write(
      "tiny.ts",
      `${HEADER}\nexport default class TinyFlow extends FlowSpec {\n  @slurm @step start() { this.next(this.end); }\n  @step end() {}\n}\n`,
    );
    const service = await project.cli(["run", "tiny.ts"], {
      env: env(s3Service, { METAFLOW_SLURM_DATASTORE_CHECK: "strict" }),
    });
    assert.equal(service.code, 1, service.stdout + service.stderr);
    assert.match(
      service.stderr,
      /METAFLOW_SERVICE_URL=http:\/\/127\.0\.0\.1:\d+ names this machine by a loopback address, which the compute nodes \(n1\) cannot reach/,
    );
    assert.match(
      service.stderr,
      /METAFLOW_S3_ENDPOINT_URL=http:\/\/127\.0\.0\.1:\d+ names this machine by a loopback address/,
    );
    const local = await project.cli(["run", "tiny.ts"], {
      env: env(s3Local, { METAFLOW_SLURM_DATASTORE_CHECK: "strict" }),
    });
    assert.equal(local.code, 1, local.stdout + local.stderr);
    assert.match(
      local.stderr,
      /The datastore is S3 but the metadata is local \(.*\), on this machine: .* Set METAFLOW_DEFAULT_METADATA=service and METAFLOW_SERVICE_URL/,
    );
    assert.doesNotMatch(service.stdout + local.stdout, /Submitted/);
  });
});
