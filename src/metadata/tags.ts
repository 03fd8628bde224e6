/**
 * Run tags: the rules every tag obeys (shared by `run --tag`, `resume --tag`, the client and the
 * `tag` command) and the errors that name a bad one.
 */
import { MetaflowError, UsageError } from "../errors.js";

/** Longest tag accepted, in characters. */
export const MAX_TAG_LENGTH = 512;

/** A tag is empty, too long or holds control characters. */
export class InvalidTagError extends UsageError {
  constructor(
    readonly tag: string,
    reason: string,
  ) {
    super(reason);
  }
}

/** Someone tried to remove a system tag (`user:…`, versions, dates), which are part of the record. */
export class SystemTagError extends MetaflowError {
  constructor(
    readonly tag: string,
    readonly runPathspec: string,
  ) {
    super(
      "system-tag",
      `Cannot remove the system tag '${tag}' from ${runPathspec}`,
      `'${tag}' is a system tag of ${runPathspec}; system tags record who ran it and with what, and cannot be removed. Only user tags (given with --tag or added later) can be.`,
    );
  }
}

/**
 * Namespaces of the tags Metaflow.ts sets itself (`user:ann`, `metaflow_version:0.1.0`, ...): who
 * ran a run and with what. Namespaces (`namespace("user:ann")`) select runs by these tags, so a
 * user tag in one of them would put a run in someone else's namespace; they are refused.
 */
export const SYSTEM_TAG_NAMESPACES: readonly string[] = [
  "user",
  "metaflow_version",
  "node_version",
  "python_version",
  "runtime",
  "date",
  "production",
  "project",
  "project_branch",
];

/** The system namespace a tag is in (`user` for `user:ann`; case and spaces ignored), if any. */
export function systemNamespaceOf(tag: string): string | undefined {
  const colon = tag.indexOf(":");
  if (colon < 0) return undefined;
  const prefix = tag.slice(0, colon).trim().toLowerCase();
  return SYSTEM_TAG_NAMESPACES.includes(prefix) ? prefix : undefined;
}

/**
 * Validates a user tag: non-empty, at most 512 characters, no control characters, and not in a
 * system-tag namespace (`user:`, `metaflow_version:`, `runtime:`, `date:`, ...).
 */
export function validateTag(tag: string): void {
  validateTagText(tag);
  const ns = systemNamespaceOf(tag);
  if (ns !== undefined) {
    throw new InvalidTagError(
      tag,
      `Tag '${tag.slice(0, 80)}' is in the system-tag namespace '${ns}:', which Metaflow.ts sets itself (${SYSTEM_TAG_NAMESPACES.map((n) => `${n}:`).join(", ")}); a user tag there would pass the run off as another user's or version's. Choose a tag without that prefix, e.g. '${ns}-${tag.slice(tag.indexOf(":") + 1).slice(0, 30)}'`,
    );
  }
}

/** Validates any tag's text, user or system: non-empty, at most 512 characters, no control characters. */
export function validateTagText(tag: string): void {
  if (typeof tag !== "string" || tag.trim() === "") {
    throw new InvalidTagError(String(tag), `A tag cannot be empty; give a word such as 'experiment-3'`);
  }
  if (tag.length > MAX_TAG_LENGTH) {
    throw new InvalidTagError(tag, `Tag '${tag.slice(0, 40)}...' is ${tag.length} characters; the limit is ${MAX_TAG_LENGTH}`);
  }
  if (/[\u0000-\u001f\u007f]/.test(tag)) {
    throw new InvalidTagError(tag, `Tag ${JSON.stringify(tag)} contains control characters; use printable text only`);
  }
}

/** The tags a user edit asks for: removals are applied before additions, in one atomic step. */
export interface TagChange {
  readonly add?: readonly string[];
  readonly remove?: readonly string[];
}

/**
 * Applies `change` to `userTags`, refusing to remove a system tag and validating every tag added;
 * the result keeps the original order and has no duplicates.
 */
export function applyTagChange(
  userTags: readonly string[],
  systemTags: readonly string[],
  change: TagChange,
  runPathspec: string,
): string[] {
  const remove = new Set(change.remove ?? []);
  for (const t of change.add ?? []) validateTag(t);
  for (const t of remove) {
    // A tag that is both a user tag and a system tag may lose its user copy; the system one stays.
    if (systemTags.includes(t) && !userTags.includes(t)) throw new SystemTagError(t, runPathspec);
  }
  const out = userTags.filter((t) => !remove.has(t));
  for (const t of change.add ?? []) if (!out.includes(t)) out.push(t);
  return out;
}
