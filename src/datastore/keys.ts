/** The rules every storage backend applies to keys, so local and S3 storage accept the same keys. */
import { DatastoreError } from "../errors.js";

/**
 * Splits a key into its `/`-separated segments, refusing empty, `.` and `..` segments, backslashes
 * and NUL bytes: nothing that could point outside the root or mean different things on two backends.
 */
export function keySegments(key: string): string[] {
  const segments = key.split("/");
  for (const segment of segments) {
    if (
      segment === "" ||
      segment === "." ||
      segment === ".." ||
      segment.includes("\\") ||
      segment.includes("\0")
    ) {
      throw new DatastoreError(
        `Invalid datastore key ${JSON.stringify(key)}: keys are '/'-separated names without empty, '.' or '..' parts.`,
      );
    }
  }
  return segments;
}
