/** `@card(...)` options: the typed interface users write and the one validation the decorator calls. */
import type { CardSpec } from "./collector.js";

/** Options of `@card`. */
export interface CardOptions {
  /** The card type: `default` (task facts, parameters, artifacts, graph) or `blank`. @default "default" */
  type?: string;
  /** Tells several cards of a step apart (`current.card.get(id)`): letters, digits and `_`. @default none */
  id?: string;
  /** Options for the card type. @default {} */
  options?: Record<string, unknown>;
  /** Longest a final render and save may take, in seconds. @default 45 */
  timeout?: number;
  /** Least time between two live saves from `refresh()`, in seconds. @default 1 */
  refreshInterval?: number;
}

const KNOWN = ["type", "id", "options", "timeout", "refreshInterval"];

function num(field: string, v: unknown, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isFinite(n) || n < min) {
    throw new Error(`@card.${field} must be a number of seconds ≥ ${min}, got ${JSON.stringify(v)}`);
  }
  return n;
}

/**
 * Validates `@card` options given in code or as `--with card:type=blank,id=x` (strings); throws
 * an Error naming the field and the bad value.
 */
export function parseCardOptions(raw: Readonly<Record<string, unknown>>): CardSpec {
  for (const k of Object.keys(raw)) {
    if (!KNOWN.includes(k)) throw new Error(`@card has no option '${k}'; its options are: ${KNOWN.join(", ")}`);
  }
  const type = raw.type ?? "default";
  if (typeof type !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(type)) {
    throw new Error(`@card.type must be a card type name such as "default" or "blank", got ${JSON.stringify(raw.type)}`);
  }
  const id = raw.id;
  if (id !== undefined && (typeof id !== "string" || !/^[A-Za-z0-9_]{1,64}$/.test(id))) {
    throw new Error(`@card.id must be 1-64 letters, digits or _, got ${JSON.stringify(id)}`);
  }
  let options: unknown = raw.options ?? {};
  if (typeof options === "string") {
    try {
      options = JSON.parse(options) as unknown;
    } catch {
      throw new Error(`@card.options must be a JSON object, got ${JSON.stringify(raw.options)}`);
    }
  }
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new Error(`@card.options must be an object, got ${JSON.stringify(raw.options)}`);
  }
  const timeout = num("timeout", raw.timeout, 0.001);
  const refreshInterval = num("refreshInterval", raw.refreshInterval, 0);
  return {
    type,
    ...(id === undefined ? {} : { id }),
    options: options as Record<string, unknown>,
    ...(timeout === undefined ? {} : { timeout }),
    ...(refreshInterval === undefined ? {} : { refreshInterval }),
  };
}

/** Checks that the cards of one step can be told apart: ids are unique. */
export function checkStepCards(step: string, specs: readonly CardSpec[]): void {
  const seen = new Set<string>();
  for (const s of specs) {
    if (s.id === undefined) continue;
    if (seen.has(s.id)) throw new Error(`step '${step}' has two @card decorators with id '${s.id}'; give each card its own id`);
    seen.add(s.id);
  }
}
