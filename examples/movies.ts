/**
 * Tutorial 2, ported: statistics of movie gross per genre. A foreach over genres, one task each,
 * and a join that builds a per-genre table.
 *   npx metaflow run examples/movies.ts
 */
import { FlowSpec, IncludeFile, step, type Inputs } from "metaflow-ts";
import { parseMovies, quantile, type Movie } from "./lib/movies.js";

/** Quartiles of gross for one genre. */
export interface GenreStats {
  readonly count: number;
  readonly quartiles: readonly [number, number, number];
  readonly median: number;
}

/** Computes the quartiles of movie gross for every genre, in parallel. */
export default class MovieStatsFlow extends FlowSpec {
  movieData = IncludeFile("movieData", {
    default: "examples/data/movies.csv",
    help: "The movie data (CSV)",
  });

  declare movies: Movie[];
  declare genres: string[];
  declare genre: string;
  declare stats: GenreStats;
  declare genre_stats: Record<string, GenreStats>;

  /** Parse the data and list the genres to fan out over. */
  @step start() {
    this.movies = parseMovies(this.movieData);
    this.genres = [...new Set(this.movies.map((m) => m.genre))]
      .filter((g) => !/^\d+$/.test(g))
      .sort();
    console.log(`${this.movies.length} movies in ${this.genres.length} genres`);
    this.next(this.computeStatistics, { foreach: "genres" });
  }

  /** One task per genre: the quartiles of its movies' gross. */
  @step computeStatistics() {
    this.genre = this.input as string;
    const gross = this.movies
      .filter((m) => m.genre === this.genre)
      .map((m) => m.gross)
      .sort((a, b) => a - b);
    const q = [0.25, 0.5, 0.75].map((p) => quantile(gross, p)) as [number, number, number];
    this.stats = { count: gross.length, quartiles: q, median: q[1] };
    this.next(this.join);
  }

  /** Gather the per-genre results into one table. */
  @step join(inputs: Inputs<MovieStatsFlow>) {
    this.genre_stats = Object.fromEntries(inputs.map((i) => [i.genre, i.stats]));
    this.next(this.end);
  }

  /** Show the table. */
  @step end() {
    for (const [genre, s] of Object.entries(this.genre_stats)) {
      console.log(
        `${genre.padEnd(12)} n=${String(s.count).padStart(4)} median gross ${Math.round(s.median).toLocaleString("en-US")}`,
      );
    }
  }
}
