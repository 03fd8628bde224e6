/**
 * Playlist redux, on Arrow tables: a flow that reads another flow's results through the client. It
 * takes the Arrow tables of the latest successful MovieStatsArrowFlow run, picks the genre with the
 * highest median gross, and builds a playlist from that genre's top movies. The tables arrive as
 * Arrow tables (their columns read in place), not as an object per row.
 *   npx metaflow run examples/movies_arrow.ts          # first, once
 *   npx metaflow run examples/playlist_arrow.ts
 */
import type { Table } from "apache-arrow";
import { Flow, FlowSpec, Parameter, step } from "metaflow-ts";
// Only the type: reading the results needs the class's artifact names, not its code.
import type MovieStatsArrowFlow from "./movies_arrow.js";

/** A playlist from the best-grossing genre, according to the latest movie statistics (Arrow). */
export default class PlayListArrowFlow extends FlowSpec {
  recommendations = Parameter("recommendations", { default: 3, help: "How many movies to recommend" });

  declare statsRun: string;
  declare genre: string;
  declare median: number;
  declare playlist: string[];

  /** Read the latest successful MovieStatsArrowFlow run's tables and pick the top genre. */
  @step async start() {
    const run = await new Flow<MovieStatsArrowFlow>("MovieStatsArrowFlow").latestSuccessfulRun();
    this.statsRun = run.pathspec;
    const stats: Table = await run.data("genre_stats");
    const top: Table = await run.data("top_movies");
    // Column-wise: the index of the largest median, then that row's genre.
    const medians = stats.getChild("median")!.toArray() as Float64Array;
    let best = 0;
    for (let i = 1; i < medians.length; i++) if (medians[i]! > medians[best]!) best = i;
    this.genre = stats.getChild("genre")!.get(best) as string;
    this.median = medians[best]!;
    const genres = top.getChild("genre")!;
    const titles = top.getChild("title")!;
    this.playlist = [];
    for (let i = 0; i < top.numRows && this.playlist.length < this.recommendations; i++) {
      if (genres.get(i) === this.genre) this.playlist.push(titles.get(i) as string);
    }
    this.next(this.end);
  }

  /** Print the playlist. */
  @step end() {
    console.log(`Top genre by median gross in ${this.statsRun}: ${this.genre} (${Math.round(this.median).toLocaleString("en-US")})`);
    this.playlist.forEach((title, i) => console.log(`  ${i + 1}. ${title}`));
  }
}
