/**
 * The movie statistics tutorial with the data in Arrow tables and the per-genre work in DuckDB.
 * The CSV becomes one Arrow table; a foreach gives each genre to a DuckDB query; the per-genre
 * results are Arrow tables, gathered in the join; DuckDB writes the top movies as a Parquet file that
 * the next step reads back through S3 (on the team setup) or a local folder.
 *   npx metaflow run examples/movies_arrow.ts
 *   npx metaflow run examples/playlist_arrow.ts     # then: a playlist from the results, via the client
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Table, Utf8, makeVector, vectorFromArray } from "apache-arrow";
import { FlowSpec, IncludeFile, Parameter, S3, loadConfig, step, type Inputs } from "metaflow-ts";
import { insertArrow, queryArrow, withDuckDB } from "./lib/duckdb.js";
import { parseMovies } from "./lib/movies.js";

/** Computes the quartiles of movie gross for every genre, in parallel, in DuckDB. */
export default class MovieStatsArrowFlow extends FlowSpec {
  movieData = IncludeFile("movieData", { default: "examples/data/movies.csv", help: "The movie data (CSV)" });
  top = Parameter("top", { default: 3, help: "How many top-grossing movies to keep per genre" });

  /** title, year (int32), genre (dictionary-encoded), gross (float64): one row per movie. */
  declare movies: Table;
  declare genres: string[];
  declare genre: string;
  /** One row: genre, count, q25, median, q75. */
  declare stats: Table;
  declare topMovies: Table;
  /** One row per genre: genre, count, q25, median, q75. */
  declare genre_stats: Table;
  /** The top movies of every genre: title, year, genre, gross. */
  declare top_movies: Table;
  /** Where the join left the top movies as Parquet: `s3://...` or `file://...`. */
  declare parquetUrl: string;
  declare parquetRows: number;

  /** Parse the CSV into one Arrow table and list the genres to fan out over. */
  @step start() {
    const movies = parseMovies(this.movieData);
    this.movies = new Table({
      title: vectorFromArray(movies.map((m) => m.title), new Utf8()),
      year: makeVector(Int32Array.from(movies, (m) => m.year)),
      // Strings without a type given become a dictionary: each genre is stored once.
      genre: vectorFromArray(movies.map((m) => m.genre)),
      gross: makeVector(Float64Array.from(movies, (m) => m.gross)),
    });
    // The genre column is dictionary-encoded: its dictionary is the list of distinct genres.
    const distinct = [...(this.movies.getChild("genre")!.data[0]!.dictionary! as Iterable<string>)];
    this.genres = distinct.filter((g) => !/^\d+$/.test(g)).sort();
    console.log(`${this.movies.numRows} movies in ${this.genres.length} genres`);
    this.next(this.computeStatistics, { foreach: "genres" });
  }

  /** One task per genre: DuckDB computes the quartiles of its movies' gross and picks the top ones. */
  @step async computeStatistics() {
    this.genre = this.input as string;
    await withDuckDB(async (db) => {
      await insertArrow(db, "movies", this.movies);
      this.stats = await queryArrow(
        db,
        `SELECT $genre AS genre, count(*)::INTEGER AS count, quantile_cont(gross, 0.25) AS q25,
                quantile_cont(gross, 0.5) AS median, quantile_cont(gross, 0.75) AS q75
         FROM movies WHERE genre = $genre`,
        { genre: this.genre },
      );
      this.topMovies = await queryArrow(
        db,
        `SELECT title, year, genre, gross FROM movies WHERE genre = $genre ORDER BY gross DESC, title LIMIT $top`,
        { genre: this.genre, top: this.top },
      );
    });
    this.next(this.join);
  }

  /** Gather the per-genre tables into one, and leave the top movies as a Parquet file. */
  @step async join(inputs: Inputs<MovieStatsArrowFlow>) {
    const [first, ...rest] = inputs;
    this.genre_stats = first!.stats.concat(...rest.map((i) => i.stats));
    this.top_movies = first!.topMovies.concat(...rest.map((i) => i.topMovies));
    this.mergeArtifacts(inputs, { include: ["movies"] });
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "movies-")), "top_movies.parquet");
    await withDuckDB(async (db) => {
      await insertArrow(db, "top_movies", this.top_movies);
      await db.run(`COPY top_movies TO '${file}' (FORMAT parquet)`);
    });
    if (loadConfig().datatoolsS3Root.value !== undefined) {
      // The team setup: the file goes to S3, under this run's prefix.
      await using s3 = new S3({ run: this });
      this.parquetUrl = (await s3.putMany([{ key: "top_movies.parquet", path: file }]))[0]!;
      fs.rmSync(path.dirname(file), { recursive: true });
    } else {
      this.parquetUrl = `file://${file}`;
    }
    this.next(this.end);
  }

  /** Read the Parquet file back with DuckDB, and show the table. */
  @step async end() {
    let file = this.parquetUrl.replace(/^file:\/\//, "");
    await using s3 = this.parquetUrl.startsWith("s3://") ? new S3({ run: this }) : undefined;
    if (s3) file = (await s3.get("top_movies.parquet")).path;
    await withDuckDB(async (db) => {
      const back = await queryArrow(db, `SELECT count(*)::INTEGER AS n FROM read_parquet('${file}')`);
      this.parquetRows = back.getChild("n")!.get(0) as number;
    });
    console.log(`${this.parquetRows} top movies read back from ${this.parquetUrl}`);
    if (!s3) fs.rmSync(path.dirname(file), { recursive: true, force: true });
    for (const row of this.genre_stats) {
      const r = row.toJSON() as { genre: string; count: number; median: number };
      console.log(`${r.genre.padEnd(12)} n=${String(r.count).padStart(4)} median gross ${Math.round(r.median).toLocaleString("en-US")}`);
    }
  }
}
