/** How the client reports what it skipped: Node process warnings, so scripts can handle or silence them. */
import type { MetadataCorruptError } from "../errors.js";

const reported = new Set<string>();

/**
 * Reports a run or task left out of a listing because its metadata cannot be read, once per file
 * per process, as a `MetaflowWarning` (`process.on("warning", ...)` sees it; the CLI prints it).
 */
export function warnUnreadable(err: MetadataCorruptError): void {
  if (reported.has(err.file)) return;
  reported.add(err.file);
  const advice = "Restore it from a backup, or move it aside if the record is lost for good.";
  process.emitWarning(
    `Skipped ${err.pathspec}: its metadata file ${err.file} ${err.reason}. ${advice}`,
    {
      type: "MetaflowWarning",
      code: "METAFLOW_UNREADABLE_METADATA",
    },
  );
}
