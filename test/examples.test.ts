/** The examples a user learns from run as the README says, from the repository root. */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { ContentStore } from "../src/datastore/cas.js";
import { LocalStorage } from "../src/datastore/local.js";
import { LocalMetadata } from "../src/metadata/local.js";
import { REPO, runCli } from "./helpers/project.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "mf-examples-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));
const env = { METAFLOW_DATASTORE_SYSROOT_LOCAL: root };
const metadata = new LocalMetadata(root);
const store = new ContentStore(new LocalStorage(root));

async function endValue(flow: string, name: string): Promise<unknown> {
  const [runId] = await metadata.listRuns(flow);
  const [taskId] = await metadata.listTasks(flow, runId!, "end");
  const task = await metadata.getTask(flow, runId!, "end", taskId!);
  const ref = task!.attempts.at(-1)!.end!.artifacts.find((a) => a.name === name);
  assert.ok(ref, `${flow} end has ${name}`);
  return store.getValue(ref);
}

const run = (args: string[]) => runCli(["run", ...args], { cwd: REPO, env });

void test("helloworld, branch, foreach and switch run and compute what they say", async () => {
  const hello = await run(["examples/helloworld.ts"]);
  assert.equal(hello.code, 0, hello.stderr);
  assert.match(hello.stdout, /Metaflow\.ts says: Hi there!/);

  const branch = await run(["examples/branch.ts"]);
  assert.equal(branch.code, 0, branch.stderr);
  assert.equal(await endValue("BranchFlow", "model"), "tree");
  assert.deepEqual(await endValue("BranchFlow", "data"), [3, 1, 4, 1, 5, 9, 2, 6]);

  const foreach = await run(["examples/foreach.ts", "--size", "10"]);
  assert.equal(foreach.code, 0, foreach.stderr);
  assert.equal(await endValue("ForeachFlow", "total"), 385);

  const sw = await run(["examples/switch.ts", "--target", "20"]);
  assert.equal(sw.code, 0, sw.stderr);
  assert.equal(await endValue("SwitchFlow", "verdict"), "32 is just past 20");
});

void test("the playlist tutorial: parameters, an included file and a branch", async () => {
  const r = await run(["examples/playlist.ts", "--genre", "Comedy", "--recommendations", "3"]);
  assert.equal(r.code, 0, r.stderr);
  const playlist = (await endValue("PlayListFlow", "playlist")) as Array<{ genre: string; title: string }>;
  assert.equal(playlist.length, 3);
  assert.ok(playlist.every((m) => m.genre === "Comedy"));
  const bonus = (await endValue("PlayListFlow", "bonus")) as { genre: string; title: string };
  assert.notEqual(bonus.genre, "Comedy");
  assert.match(r.stdout, /Playlist for movies in genre 'Comedy':/);
  // The included CSV is stored with the run as a versioned artifact.
  const csv = (await endValue("PlayListFlow", "movieData")) as string;
  assert.equal(csv, fs.readFileSync(path.join(REPO, "examples/data/movies.csv"), "utf8"));
});

void test("the movie statistics tutorial: a foreach over genres and a per-genre table", async () => {
  const r = await run(["examples/movies.ts"]);
  assert.equal(r.code, 0, r.stderr);
  const stats = (await endValue("MovieStatsFlow", "genre_stats")) as Record<string, { count: number; median: number }>;
  const [runId] = await metadata.listRuns("MovieStatsFlow");
  const genres = Object.keys(stats);
  assert.equal((await metadata.listTasks("MovieStatsFlow", runId!, "computeStatistics")).length, genres.length);
  assert.ok(genres.includes("Drama") && genres.includes("Sci-Fi"));
  assert.ok(stats.Drama!.count > 700 && stats.Drama!.count < 800, JSON.stringify(stats.Drama));
  assert.ok(stats["Sci-Fi"]!.median > 0);
});

void test("show prints steps, transitions and doc comments; check accepts every example", async () => {
  const show = await runCli(["show", "examples/playlist.ts"], { cwd: REPO, env });
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, /Step start/);
  assert.match(show.stdout, /Parse the CSV that IncludeFile stored with the run\./);
  assert.match(show.stdout, /=> bonusMovie, genreMovies/);
  for (const f of ["helloworld", "branch", "foreach", "switch", "playlist", "movies"]) {
    const check = await runCli(["check", `examples/${f}.ts`], { cwd: REPO, env });
    assert.equal(check.code, 0, `${f}: ${check.stderr}`);
  }
});

void test("examples/cards.ts stores a default card and a report per foreach task", async () => {
  const r = await run(["examples/cards.ts", "--epochs", "2"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /best rate 0.1 \(loss 0.333\)/);
  const [runId] = await metadata.listRuns("CardsExampleFlow");
  const cards = (step: string, taskId: string) => fs.readdirSync(path.join(root, "flows", "CardsExampleFlow", runId!, step, taskId, "cards", "attempt-0"));
  const [start] = await metadata.listTasks("CardsExampleFlow", runId!, "start");
  assert.deepEqual(cards("start", start!), ["0.default.final.html"]);
  for (const taskId of await metadata.listTasks("CardsExampleFlow", runId!, "train")) assert.deepEqual(cards("train", taskId), ["0.blank.report.final.html"]);
});
