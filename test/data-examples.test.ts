/**
 * The Arrow examples and Arrow/serializer artifacts on the two setups: locally, and on S3 + the
 * metadata service (s3rver and PostgreSQL started here; in CI a missing one fails instead of
 * skipping). The movie statistics computed by DuckDB are checked against a computation of their own
 * here, from the CSV.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { Table } from "apache-arrow";
import type { ArtifactRef } from "../src/datastore/types.js";
import { openBackends, type Backends } from "../src/backends.js";
import { Project, REPO, runCli } from "./helpers/project.js";
import { remoteAvailability, startRemoteStack, type RemoteStack } from "./helpers/remote.js";

interface GenreExpectation {
  readonly count: number;
  readonly q25: number;
  readonly median: number;
  readonly q75: number;
  /** Titles of the three best-grossing movies, highest first (ties by title). */
  readonly top: string[];
}

/** The statistics of every genre, computed here from the CSV: sorted gross, linear interpolation. */
function expectedStats(): Map<string, GenreExpectation> {
  const csv = fs.readFileSync(path.join(REPO, "examples/data/movies.csv"), "utf8");
  const byGenre = new Map<string, Array<{ title: string; gross: number }>>();
  for (const line of csv.split(/\r?\n/).slice(1)) {
    if (line.trim() === "") continue;
    // Only the title may hold commas (then it is quoted): the last three fields are year, genre, gross.
    const parts = line.split(",");
    const [gross, genre, year] = [parts.pop()!, parts.pop()!, parts.pop()!];
    const title = parts.join(",").replace(/^"(.*)"$/, "$1").replace(/""/g, '"');
    if (!Number.isFinite(Number(year)) || !Number.isFinite(Number(gross)) || /^\d+$/.test(genre)) continue;
    const list = byGenre.get(genre) ?? [];
    list.push({ title, gross: Number(gross) });
    byGenre.set(genre, list);
  }
  const q = (sorted: number[], p: number): number => {
    const pos = (sorted.length - 1) * p;
    const lo = Math.floor(pos);
    return sorted[lo]! + (sorted[Math.ceil(pos)]! - sorted[lo]!) * (pos - lo);
  };
  const out = new Map<string, GenreExpectation>();
  for (const [genre, movies] of byGenre) {
    const gross = movies.map((m) => m.gross).sort((a, b) => a - b);
    const top = [...movies].sort((a, b) => b.gross - a.gross || (a.title < b.title ? -1 : 1)).slice(0, 3).map((m) => m.title);
    out.set(genre, { count: gross.length, q25: q(gross, 0.25), median: q(gross, 0.5), q75: q(gross, 0.75), top });
  }
  return out;
}

/** Reads what a run of movies_arrow stored, and checks it against `expectedStats`. */
async function checkMovieStats(b: Backends, runId: string): Promise<string> {
  const refOf = async (step: string, name: string): Promise<ArtifactRef> => {
    const [taskId] = await b.metadata.listTasks("MovieStatsArrowFlow", runId, step);
    const task = await b.metadata.getTask("MovieStatsArrowFlow", runId, step, taskId!);
    return task!.attempts.at(-1)!.end!.artifacts.find((a) => a.name === name)!;
  };
  const expected = expectedStats();
  const statsRef = await refOf("end", "genre_stats");
  assert.deepEqual([statsRef.serializer, statsRef.type, (statsRef.summary as { rows: number }).rows], ["arrow", "Table", expected.size]);
  const stats = (await b.store.getValue(statsRef)) as Table;
  assert.ok(stats instanceof Table);
  const got = new Map([...stats].map((r) => [r.genre as string, r.toJSON() as { count: number; q25: number; median: number; q75: number }]));
  assert.deepEqual([...got.keys()].sort(), [...expected.keys()].sort());
  for (const [genre, e] of expected) {
    const g = got.get(genre)!;
    assert.equal(g.count, e.count, genre);
    for (const k of ["q25", "median", "q75"] as const) assert.ok(Math.abs(g[k] - e[k]) <= 1e-6 * Math.abs(e[k]), `${genre} ${k}: ${g[k]} vs ${e[k]}`);
  }
  const top = (await b.store.getValue(await refOf("end", "top_movies"))) as Table;
  for (const [genre, e] of expected) {
    assert.deepEqual([...top].filter((r) => r.genre === genre).map((r) => r.title), e.top, genre);
  }
  const parquetRows = await b.store.getValue(await refOf("end", "parquetRows"));
  assert.equal(parquetRows, [...expected.values()].reduce((n, e) => n + e.top.length, 0));
  return (await b.store.getValue(await refOf("end", "parquetUrl"))) as string;
}

void describe("the Arrow examples, locally", () => {
  const work = new Project({ prefix: "mf-data-examples-" });
  after(() => work.cleanup());
  const env = { METAFLOW_DATASTORE_SYSROOT_LOCAL: work.root, METAFLOW_HOME: path.join(work.dir, "no-config") };

  void test("movies_arrow: DuckDB's per-genre statistics match a computation from the CSV; Parquet goes step to step", async () => {
    const r = await runCli(["run", "examples/movies_arrow.ts"], { cwd: REPO, env, timeoutMs: 180_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /3750 movies in 21 genres/);
    const b = openBackends({ env: { ...process.env, ...env }, cwd: work.dir });
    const runId = (await b.metadata.listRuns("MovieStatsArrowFlow"))[0]!;
    const url = await checkMovieStats(b, runId);
    assert.match(url, /^file:\/\/.*top_movies\.parquet$/);
    assert.equal(fs.existsSync(url.slice("file://".length)), false, "the end step removed the local Parquet file");
  });

  void test("playlist_arrow reads the tables through the client and picks the genre with the highest median", async () => {
    const r = await runCli(["run", "examples/playlist_arrow.ts"], { cwd: REPO, env });
    assert.equal(r.code, 0, r.stderr);
    const [genre, e] = [...expectedStats()].reduce((best, x) => (x[1].median > best[1].median ? x : best));
    assert.match(r.stdout, new RegExp(`Top genre by median gross in MovieStatsArrowFlow/\\d+: ${genre} `));
    for (const [i, title] of e.top.entries()) assert.ok(r.stdout.includes(`${i + 1}. ${title}\n`), `${title} in\n${r.stdout}`);
    for (const f of ["movies_arrow", "playlist_arrow"]) {
      const check = await runCli(["check", `examples/${f}.ts`], { cwd: REPO, env });
      assert.equal(check.code, 0, `${f}: ${check.stderr}`);
    }
  });
});

const availability = remoteAvailability();
const skip = availability.s3 ?? availability.postgres;

void describe("Arrow and user serializers on S3 + the metadata service", { ...(skip ? { skip } : {}) }, () => {
  let stack: RemoteStack;
  const work = new Project({ prefix: "mf-data-remote-" });
  let env: Record<string, string>;
  let b: Backends;
  before(async () => {
    stack = await startRemoteStack();
    env = stack.env({ prefix: `data-${path.basename(work.dir)}`, cacheDir: path.join(work.dir, "s3cache"), metadata: "service" });
    b = openBackends({ env: { ...process.env, ...env }, cwd: work.dir });
  });
  after(async () => {
    work.cleanup();
    await stack?.stop();
  });

  void test("movies_arrow writes Parquet to S3 in one step and reads it in the next; the results match", async () => {
    const r = await runCli(["run", path.join(REPO, "examples/movies_arrow.ts"), "--movieData", path.join(REPO, "examples/data/movies.csv")], {
      cwd: work.dir,
      env,
      timeoutMs: 180_000,
    });
    assert.equal(r.code, 0, r.stderr);
    const runId = (await b.metadata.listRuns("MovieStatsArrowFlow"))[0]!;
    const url = await checkMovieStats(b, runId);
    assert.match(url, new RegExp(`^s3://${stack.s3.bucket}/.*/MovieStatsArrowFlow/${runId}/top_movies\\.parquet$`));
    assert.match(r.stdout, new RegExp(`\\d+ top movies read back from s3://`));
    assert.equal(fs.existsSync(path.join(work.root, "data")), false, "no artifact landed in the local directory");
  });

  void test("tables through a foreach and join, and a user's model class, read back through the service", async () => {
    const arrow = await runCli(["run", path.join(REPO, "test/fixtures/arrow-flow.ts"), "--rows", "300000"], { cwd: work.dir, env, timeoutMs: 120_000 });
    assert.equal(arrow.code, 0, arrow.stderr);
    const runId = (await b.metadata.listRuns("ArrowFlow"))[0]!;
    const [endId] = await b.metadata.listTasks("ArrowFlow", runId, "end");
    const refs = (await b.metadata.getTask("ArrowFlow", runId, "end", endId!))!.attempts.at(-1)!.end!.artifacts;
    const big = refs.find((a) => a.name === "big")!;
    assert.deepEqual(big.summary, { rows: 300000, columns: ["x: Float64", "n: Int32", "cat: Dictionary<Int32, Utf8>"] });
    const table = (await b.store.getValue(big)) as Table;
    assert.equal(table.numRows, 300000);
    assert.equal(table.getChild("x")!.get(299999), 299999 / 2);
    const checks = (await b.store.getValue(refs.find((a) => a.name === "checks")!)) as { tables: boolean; counts: number[] };
    assert.deepEqual([checks.tables, checks.counts], [true, [100000, 100000, 100000]]);
    const dump = await runCli(["dump", `ArrowFlow/${runId}/end`, "--include", "big"], { cwd: work.dir, env });
    assert.equal(dump.code, 0, dump.stderr);
    assert.match(dump.stdout, /big: Table, [\d.]+ MB, serializer arrow\n {4}rows: 300000\n/);

    const model = await runCli(["run", path.join(REPO, "test/fixtures/model-flow.ts")], { cwd: work.dir, env });
    assert.equal(model.code, 0, model.stderr);
    const modelRun = (await b.metadata.listRuns("ModelFlow"))[0]!;
    const [modelEnd] = await b.metadata.listTasks("ModelFlow", modelRun, "end");
    const endRefs = (await b.metadata.getTask("ModelFlow", modelRun, "end", modelEnd!))!.attempts.at(-1)!.end!.artifacts;
    assert.equal(endRefs.find((a) => a.name === "model")!.serializer, "linear-model");
    assert.deepEqual(await b.store.getValue(endRefs.find((a) => a.name === "checks")!), { model: true, prediction: 21, data: true });
  });
});
