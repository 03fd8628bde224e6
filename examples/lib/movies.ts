/** Reading the tutorials' movie data set (movie_title,title_year,genre,gross). */

/** One film. */
export interface Movie {
  readonly title: string;
  readonly year: number;
  readonly genre: string;
  readonly gross: number;
}

/** Splits one CSV line, honouring double-quoted fields (titles may contain commas). */
export function splitCsvLine(line: string): string[] {
  const fields: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') {
        quoted = false;
      } else {
        field += ch;
      }
    } else if (ch === '"') {
      quoted = true;
    } else if (ch === ",") {
      fields.push(field);
      field = "";
    } else {
      field += ch;
    }
  }
  fields.push(field);
  return fields;
}

/** Parses the movies CSV; rows whose year or gross is not a number are skipped. */
export function parseMovies(csv: string): Movie[] {
  const lines = csv.split(/\r?\n/).filter((l) => l.trim() !== "");
  const header = splitCsvLine(lines[0] ?? "");
  const at = (name: string) => {
    const i = header.indexOf(name);
    if (i < 0) throw new Error(`the movies CSV has no '${name}' column (columns: ${header.join(", ")})`);
    return i;
  };
  const [ti, yi, gi, gr] = [at("movie_title"), at("title_year"), at("genre"), at("gross")];
  const movies: Movie[] = [];
  for (const line of lines.slice(1)) {
    const f = splitCsvLine(line);
    const year = Number(f[yi]);
    const gross = Number(f[gr]);
    if (!Number.isFinite(year) || !Number.isFinite(gross)) continue;
    movies.push({ title: f[ti] ?? "", year, genre: f[gi] ?? "", gross });
  }
  return movies;
}

/** The q-quantile (0..1) of sorted numbers, by linear interpolation. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}
