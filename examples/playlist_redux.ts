/**
 * Tutorial 4, ported ("playlist redux"): a flow that reads another flow's results. It takes the
 * latest successful MovieStatsFlow run through the client, picks the genre whose movies have the
 * highest median gross, and builds a playlist from it.
 *   npx metaflow run examples/movies.ts            # first, once
 *   npx metaflow run examples/playlist_redux.ts --recommendations 3
 */
import { Flow, FlowSpec, Parameter, step, type Inputs } from "metaflow-ts";
import type { Movie } from "./lib/movies.js";
// Only the type: reading the results needs the class's artifact names, not its code.
import type MovieStatsFlow from "./movies.js";
import type { GenreStats } from "./movies.js";

/** A playlist from the best-grossing genre, according to the latest movie statistics. */
export default class PlayListReduxFlow extends FlowSpec {
  recommendations = Parameter("recommendations", {
    default: 5,
    help: "How many movies to recommend",
  });

  declare statsRun: string;
  declare movies: Movie[];
  declare genre_stats: Record<string, GenreStats>;
  declare genre: string;
  declare playlist: Movie[];
  declare bonus: Movie;

  /** Read the latest successful MovieStatsFlow run: its per-genre table and its movies. */
  @step async start() {
    const run = await new Flow<MovieStatsFlow>("MovieStatsFlow").latestSuccessfulRun();
    this.statsRun = run.pathspec;
    this.genre_stats = await run.data("genre_stats");
    this.movies = await (await (await run.step("start")).task()).data("movies");
    console.log(
      `using ${run.pathspec} (${this.movies.length} movies, ${Object.keys(this.genre_stats).length} genres)`,
    );
    this.next(this.bonusMovie, this.genreMovies);
  }

  /** A bonus movie from any other genre: the one with the highest gross. */
  @step bonusMovie() {
    const best = topGenre(this.genre_stats);
    const others = this.movies.filter((m) => m.genre !== best);
    this.bonus = others.reduce((top, m) => (m.gross > top.gross ? m : top));
    this.next(this.join);
  }

  /** The genre with the highest median gross, and its best-grossing movies. */
  @step genreMovies() {
    this.genre = topGenre(this.genre_stats);
    this.playlist = this.movies
      .filter((m) => m.genre === this.genre)
      .sort((a, b) => b.gross - a.gross)
      .slice(0, this.recommendations);
    this.next(this.join);
  }

  /** Meet the two branches: take each one's result, and carry the statistics on. */
  @step join(inputs: Inputs<PlayListReduxFlow>) {
    this.genre = inputs.genreMovies.genre;
    this.playlist = inputs.genreMovies.playlist;
    this.bonus = inputs.bonusMovie.bonus;
    this.genre_stats = inputs.genreMovies.genre_stats;
    this.statsRun = inputs.genreMovies.statsRun;
    this.next(this.end);
  }

  /** Print the playlist. */
  @step end() {
    const median = Math.round(this.genre_stats[this.genre]!.median).toLocaleString("en-US");
    console.log(`Top genre by median gross in ${this.statsRun}: ${this.genre} (${median})`);
    this.playlist.forEach((m, i) => console.log(`  ${i + 1}. ${m.title} (${m.year})`));
    console.log(`Bonus pick: ${this.bonus.title} from ${this.bonus.genre}`);
  }
}

/** The genre whose median gross is highest. */
function topGenre(stats: Record<string, GenreStats>): string {
  const [genre] = Object.entries(stats).reduce((best, e) =>
    e[1].median > best[1].median ? e : best,
  );
  return genre;
}
