/** How the CLI reports errors: a one-line headline, then details, on stderr. */
import { GraphError, MetaflowError, formatProblem } from "../errors.js";

/** Exit code for a bad flag or argument. */
export const EXIT_USAGE = 2;
/** Exit code for a failed run, a bad flow or any other error. */
export const EXIT_FAILURE = 1;
/** Exit code after Ctrl-C / SIGTERM. */
export const EXIT_INTERRUPTED = 130;

/**
 * Prints process warnings (the client's `MetaflowWarning`s: a run skipped because its metadata is
 * unreadable, ...) as one `Warning: ...` line on stderr instead of Node's `(node:pid)` format.
 */
export function printWarnings(): void {
  process.removeAllListeners("warning");
  process.on("warning", (w: Error) => {
    process.stderr.write(`${w.name === "MetaflowWarning" ? "Warning" : w.name}: ${w.message}\n`);
  });
}

/** Prints an error the way every command does and returns the exit code to use. */
export function reportError(err: unknown): number {
  if (err instanceof GraphError) {
    process.stderr.write(`${err.headline}:\n`);
    for (const p of err.problems) process.stderr.write(`  ${formatProblem(p)}\n`);
    return EXIT_FAILURE;
  }
  if (err instanceof MetaflowError) {
    process.stderr.write(`${err.headline}\n`);
    if (err.message !== err.headline) process.stderr.write(`${indent(err.message)}\n`);
    return err.code === "usage" ? EXIT_USAGE : EXIT_FAILURE;
  }
  const e = err as Error;
  process.stderr.write(`Internal error: ${e?.message ?? String(err)}\n${e?.stack ?? ""}\n`);
  return EXIT_FAILURE;
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `    ${l}`)
    .join("\n");
}
