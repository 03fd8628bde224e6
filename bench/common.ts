/** What every benchmark module shares: the row it reports and the median it takes. */
export { CLI, DIST_INDEX, REPO } from "../test/helpers/project.js";

/** A benchmark figure, as `bench/run.ts` prints it (`ok` set when it has a target). */
export interface BenchRow {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly target?: string;
  readonly ok?: boolean;
  readonly note?: string;
}

/** The middle value (the upper one of an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
