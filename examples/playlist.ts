/**
 * Tutorial 1, ported: a playlist of movies. Parameters, an included data file and a static branch.
 *   npx metaflow run examples/playlist.ts --genre Comedy --recommendations 3
 */
import { FlowSpec, IncludeFile, Parameter, step, type Inputs } from "metaflow-ts";
import { parseMovies, type Movie } from "./lib/movies.js";

/** Builds a playlist of movies of one genre, plus a bonus movie from another genre. */
export default class PlayListFlow extends FlowSpec {
  movieData = IncludeFile("movieData", {
    default: "examples/data/movies.csv",
    help: "The movie data (CSV)",
  });
  genre = Parameter("genre", { default: "Sci-Fi", help: "Genre of the playlist" });
  recommendations = Parameter("recommendations", {
    default: 5,
    help: "How many movies to recommend",
  });

  declare movies: Movie[];
  declare bonus: Movie;
  declare playlist: Movie[];

  /** Parse the CSV that IncludeFile stored with the run. */
  @step start() {
    this.movies = parseMovies(this.movieData);
    console.log(`read ${this.movies.length} movies`);
    this.next(this.bonusMovie, this.genreMovies);
  }

  /** A bonus movie from any other genre: the one with the highest gross. */
  @step bonusMovie() {
    const others = this.movies.filter((m) => m.genre.toLowerCase() !== this.genre.toLowerCase());
    this.bonus = others.reduce((best, m) => (m.gross > best.gross ? m : best));
    this.next(this.join);
  }

  /** The movies of the chosen genre, shuffled with a seed so the run is reproducible. */
  @step genreMovies() {
    const picked = this.movies.filter((m) => m.genre.toLowerCase() === this.genre.toLowerCase());
    let seed = 42;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = picked.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [picked[i], picked[j]] = [picked[j]!, picked[i]!];
    }
    this.playlist = picked.slice(0, this.recommendations);
    this.next(this.join);
  }

  /** Meet the two branches: take the playlist from one and the bonus from the other. */
  @step join(inputs: Inputs<PlayListFlow>) {
    this.playlist = inputs.genreMovies.playlist;
    this.bonus = inputs.bonusMovie.bonus;
    this.next(this.end);
  }

  /** Print the playlist. */
  @step end() {
    console.log(`Playlist for movies in genre '${this.genre}':`);
    this.playlist.forEach((m, i) => console.log(`  ${i + 1}. ${m.title} (${m.year})`));
    if (this.playlist.length === 0) console.log("  (no movies of that genre)");
    console.log(`Bonus pick: ${this.bonus.title} from ${this.bonus.genre}`);
  }
}
