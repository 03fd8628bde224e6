/**
 * Splitting an attempt's artifact index into batches that each fit one request to the metadata
 * service, whose bodies are limited (1 MiB by default, and often less behind a proxy).
 */
import type { ArtifactRef } from "../datastore/types.js";

/** Largest JSON body the service client sends in one request; well under the service's 1 MiB limit. */
export const MAX_REQUEST_BYTES = 256 * 1024;

/**
 * Splits `artifacts` into consecutive batches whose JSON encodings stay under `maxBytes` (a single
 * artifact bigger than that still forms its own batch; the service judges it).
 */
export function artifactBatches(
  artifacts: readonly ArtifactRef[],
  maxBytes: number = MAX_REQUEST_BYTES,
): ArtifactRef[][] {
  const batches: ArtifactRef[][] = [];
  let current: ArtifactRef[] = [];
  // Room for `{"artifacts":[` and `]}`.
  let size = 16;
  for (const ref of artifacts) {
    const bytes = Buffer.byteLength(JSON.stringify(ref)) + 1;
    if (current.length > 0 && size + bytes > maxBytes) {
      batches.push(current);
      current = [];
      size = 16;
    }
    current.push(ref);
    size += bytes;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
