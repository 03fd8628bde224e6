/** A short, readable text of any value, for cards and the UI: never the whole of a large value. */
import { inspect } from "node:util";

/** Values stored bigger than this (bytes) are listed without a preview. @default 1 MiB */
export const PREVIEW_LIMIT = 1024 * 1024;

/** How much of a value a preview shows. */
export interface PreviewOptions {
  /** Longest preview, in characters; longer ones end with `…`. @default 2000 */
  readonly maxChars?: number;
  /** Nesting depth shown. @default 3 */
  readonly depth?: number;
}

/**
 * The value as `util.inspect` prints it (strings as they are), cut to `maxChars`. Never throws:
 * a value whose inspection fails (a hostile getter or proxy) is described by its type.
 */
export function previewValue(value: unknown, options: PreviewOptions = {}): string {
  const maxChars = options.maxChars ?? 2000;
  let text: string;
  try {
    text =
      typeof value === "string"
        ? value
        : inspect(value, {
            depth: options.depth ?? 3,
            maxArrayLength: 50,
            maxStringLength: Math.max(80, maxChars),
            breakLength: 100,
            compact: 3,
            sorted: false,
            getters: false,
            customInspect: false,
          });
  } catch (err) {
    text = `<${describeType(value)}: cannot be shown (${(err as Error)?.message ?? String(err)})>`;
  }
  return text.length > maxChars ? `${text.slice(0, maxChars)}…` : text;
}

/** A value's type for people: `number`, `string`, `Array(3)`, `Map(2)`, `Float64Array`, a class name. */
export function describeType(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  if (Array.isArray(value)) return `Array(${value.length})`;
  const tag = Object.prototype.toString.call(value).slice(8, -1);
  try {
    const name = (Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null)?.constructor?.name;
    return typeof name === "string" && name !== "" ? name : tag;
  } catch {
    return tag;
  }
}
