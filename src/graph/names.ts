/**
 * The names every setup accepts — local files, pathspecs (`Flow/run/step`) and the metadata
 * service: one rule, checked by `metaflow check` (so before every run) and by the service on every
 * request, so a flow that runs locally never meets a refusal later in a team setup.
 */

/** Longest flow (class) or step (method) name, in characters. */
export const MAX_NAME_LENGTH = 128;
/** Longest artifact name, in characters. */
export const MAX_ARTIFACT_NAME_LENGTH = 1024;
/** Flow and step names: ASCII identifiers without `$`. */
export const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Why `name` cannot name a flow or a step, or undefined when it can. */
export function nameProblem(name: string): string | undefined {
  if (name.length > MAX_NAME_LENGTH) {
    return `is ${name.length} characters long; names are at most ${MAX_NAME_LENGTH} characters`;
  }
  if (!NAME_RE.test(name)) {
    return "has characters other than ASCII letters, digits and '_' (or starts with a digit)";
  }
  return undefined;
}

/** Why `name` cannot name an artifact, or undefined when it can. */
export function artifactNameProblem(name: string): string | undefined {
  if (name.length === 0) return "is empty";
  if (name.length > MAX_ARTIFACT_NAME_LENGTH) {
    return `is ${name.length} characters long; artifact names are at most ${MAX_ARTIFACT_NAME_LENGTH} characters`;
  }
  if (/\p{Cc}/u.test(name)) return "contains control characters";
  return undefined;
}

/** A name shortened for messages: its first 40 characters, then `…`. */
export function shortName(name: string): string {
  return name.length > 40 ? `${name.slice(0, 40)}…` : name;
}

/** The name closest to `name` by edit distance, if it is close enough to be a likely typo. */
export function closestName(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** Names quoted for a message: `'a', 'b'`. */
export function quoteList(names: readonly string[]): string {
  return names.map((n) => `'${n}'`).join(", ");
}
