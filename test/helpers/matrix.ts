/**
 * The test matrix, as Metaflow's own `test/core` crosses graphs × contexts × checkers: every graph
 * fixture (test/fixtures/graphs.ts) run through the real CLI on each setup (local; S3 + local
 * metadata; S3 + the service) and each isolation (a context in a shared host; a process per
 * task), then checked twice — with the CLI's `dump` and with the client API in a process of its
 * own. The cross product runs where it is cheap (local: every graph × both isolations); on the S3
 * setups every graph runs in contexts and a covering subset in processes (COVER below).
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { inspect } from "node:util";
import { after, before, describe, test } from "node:test";
import { GRAPHS, type GraphFixture } from "../fixtures/graphs.js";
import { collect, DIST_INDEX, Project } from "./project.js";
import { SetupServers, type Setup } from "./setups.js";

/** On the S3 setups, the graphs that also run with a process per task. */
const COVER: Readonly<Record<string, readonly string[]>> = {
  "S3 + local metadata": ["nestedForeach", "catchInForeach"],
  "S3 + service": ["branchInForeach", "retryOnce"],
};

/** How `dump` prints a value; the client checker renders values the same way to compare. */
const INSPECT = { depth: 4, maxArrayLength: 20, maxStringLength: 400, breakLength: 100, colors: false } as const;

/** Per step, one record per task of artifact name → rendered value, sorted so order does not matter. */
export type Observed = Record<string, Array<Record<string, string>>>;

function normalise(tasks: ReadonlyArray<Readonly<Record<string, unknown>>>, render: (v: unknown) => string): string[] {
  return tasks.map((t) => JSON.stringify(Object.entries(t).map(([k, v]) => [k, render(v)]))).sort();
}

export function expected(g: GraphFixture): Record<string, string[]> {
  return Object.fromEntries(Object.entries(g.expect).map(([step, tasks]) => [step, normalise(tasks, (v) => inspect(v, INSPECT))]));
}

export function observed(o: Observed): Record<string, string[]> {
  return Object.fromEntries(Object.entries(o).map(([step, tasks]) => [step, normalise(tasks, (v) => v as string)]));
}

/** Artifact names to read per step. */
function wanted(g: GraphFixture): Record<string, string[]> {
  return Object.fromEntries(Object.entries(g.expect).map(([step, tasks]) => [step, [...new Set(tasks.flatMap((t) => Object.keys(t)))]]));
}

/** The `dump` checker: `metaflow dump Flow/run/step --include ...` for each step, parsed. */
export async function viaDump(project: Project, env: Record<string, string>, g: GraphFixture, runId: string): Promise<Observed> {
  const out: Observed = {};
  for (const [step, names] of Object.entries(wanted(g))) {
    const r = await project.cli(["dump", `${g.flow}/${runId}/${step}`, "--include", names.join(",")], { env });
    assert.equal(r.code, 0, `dump ${step}: ${r.stderr}`);
    const tasks: Array<Record<string, string>> = [];
    for (const block of r.stdout.split(/\n(?=\S)/)) {
      if (!block.trim()) continue;
      const record: Record<string, string> = {};
      for (const m of block.matchAll(/^ {2}(\w+): [^=\n]* = (.*)$/gm)) record[m[1]!] = m[2]!;
      tasks.push(record);
    }
    out[step] = tasks;
  }
  return out;
}

const CLIENT_CHECKER = `
import { inspect } from "node:util";
import { Run, namespace } from ${JSON.stringify(DIST_INDEX)};
namespace(null);
const [pathspec, wantedJson, inspectJson] = process.argv.slice(2);
const run = await Run.get(pathspec);
const out = { steps: {}, attempts: {} };
for (const [step, names] of Object.entries(JSON.parse(wantedJson))) {
  const tasks = [];
  for await (const task of (await run.step(step)).tasks()) {
    const record = {};
    for (const name of names) record[name] = inspect(await task.data(name), JSON.parse(inspectJson));
    tasks.push(record);
  }
  out.steps[step] = tasks;
}
for await (const step of run.steps()) for await (const task of step.tasks()) out.attempts[step.name] = Math.max(out.attempts[step.name] ?? 0, task.attempts.length);
out.successful = run.successful;
console.log(JSON.stringify(out));
`;

/** The client checker: the client API in a process of its own, with the setup's environment. */
async function viaClient(project: Project, env: Record<string, string>, g: GraphFixture, runId: string) {
  const { spawn } = await import("node:child_process");
  const child = spawn(process.execPath, [project.path("check.mjs"), `${g.flow}/${runId}`, JSON.stringify(wanted(g)), JSON.stringify(INSPECT)], {
    cwd: project.dir,
    env: { ...process.env, ...env },
  });
  const r = await collect(child);
  assert.equal(r.code, 0, `client checker: ${r.stderr}`);
  return JSON.parse(r.stdout) as { steps: Observed; attempts: Record<string, number>; successful: boolean };
}

/**
 * Defines the matrix tests of one setup (one test file per setup, so the three run side by side).
 * @param setupName "local", "S3 + local metadata" or "S3 + service"
 */
export function defineMatrix(setupName: string): void {
  const servers = new SetupServers();
  if (setupName !== "local") {
    before(() => servers.start());
    after(() => servers.stop());
  }
  const setup = servers.setups().find((s) => s.name === setupName);
  if (!setup) throw new Error(`no setup ${setupName}`);
  void describe(setup.name, { skip: setup.skip }, () => {
    let project: Project;
    let env: Record<string, string>;
    before(() => {
      project = new Project({ prefix: "mf-matrix-" });
      env = setup.env(project);
      project.write("check.mjs", CLIENT_CHECKER);
      for (const g of Object.values(GRAPHS)) project.write(`${g.flow}.ts`, g.source);
    });
    after(() => project.cleanup());

    for (const isolation of ["context", "process"] as const) {
      for (const [name, g] of Object.entries(GRAPHS)) {
        if (!runsHere(setup, isolation, name)) continue;
        void test(`${name}, ${isolation} isolation: dump and the client agree with the fixture`, async () => {
          const idFile = project.path(`${g.flow}-${isolation}.runid`);
          const r = await project.cli(["run", `${g.flow}.ts`, "--isolation", isolation, "--run-id-file", idFile], { env });
          assert.equal(r.code, 0, r.stdout + r.stderr);
          const runId = fs.readFileSync(idFile, "utf8").trim();
          const want = expected(g);
          assert.deepEqual(observed(await viaDump(project, env, g, runId)), want, "dump");
          const client = await viaClient(project, env, g, runId);
          assert.equal(client.successful, true);
          assert.deepEqual(observed(client.steps), want, "client");
          for (const step of g.retried ?? []) assert.equal(client.attempts[step], 2, `${step} ran twice`);
        });
      }
    }
  });
}

function runsHere(setup: Setup, isolation: string, graph: string): boolean {
  return setup.name === "local" || isolation === "context" || (COVER[setup.name] ?? []).includes(graph);
}
