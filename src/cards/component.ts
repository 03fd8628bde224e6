/**
 * The card component contract: a component renders itself to HTML in which every value it shows
 * is escaped. Components are recognised by a registered symbol rather than `instanceof`, so one
 * made by another copy of the library (or in a task's own context) still renders.
 */
import { escapeHtml } from "./escape.js";
import { previewValue } from "./preview.js";

/** Marks an object as a card component, across library copies and vm contexts. */
export const COMPONENT_MARK: unique symbol = Symbol.for("metaflow-ts.card-component") as never;

/** What a component may ask of the card being rendered. */
export interface RenderContext {
  /** A fresh element id, unique in the card. */
  nextId(prefix: string): string;
  /** Says the card draws Vega charts, so the card includes the chart runtime. */
  useVega(): void;
  /** Hears of a component whose rendering threw (the card shows an error box in its place). */
  reportError(what: string, err: unknown): void;
}

/** The base of every card component: `render` returns escaped HTML. */
export abstract class CardComponent {
  /** Set on every component; see `isCardComponent`. */
  readonly [COMPONENT_MARK] = true;

  /** The component as HTML; every value in it must be escaped. */
  abstract render(ctx: RenderContext): string;
}

/** Whether `value` is a card component (of any copy of the library). */
export function isCardComponent(value: unknown): value is CardComponent {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as Record<symbol, unknown>)[COMPONENT_MARK] === true &&
    typeof (value as { render?: unknown }).render === "function"
  );
}

/**
 * Renders a child: a component as itself, any other value as escaped text (strings) or a preview
 * (everything else). A component that throws becomes an error box, and the context hears of it.
 */
export function renderChild(child: unknown, ctx: RenderContext): string {
  if (isCardComponent(child)) {
    try {
      const html = child.render(ctx);
      if (typeof html !== "string") throw new TypeError(`render() returned ${typeof html}, not an HTML string`);
      return html;
    } catch (err) {
      const name = componentName(child);
      ctx.reportError(name, err);
      return errorBox(`${name} failed to render`, err);
    }
  }
  if (typeof child === "string") return `<span class="mf-text">${escapeHtml(child)}</span>`;
  if (typeof child === "number" || typeof child === "bigint" || typeof child === "boolean") {
    return `<span class="mf-value">${escapeHtml(String(child))}</span>`;
  }
  if (child === null || child === undefined) return `<span class="mf-empty">${String(child)}</span>`;
  return `<pre class="mf-pre">${escapeHtml(previewValue(child, { maxChars: 500 }))}</pre>`;
}

/** A component's class name, for messages. */
export function componentName(c: unknown): string {
  try {
    return (Object.getPrototypeOf(c) as { constructor?: { name?: string } }).constructor?.name || "component";
  } catch {
    return "component";
  }
}

/** The HTML of an error box: a title and the error's name, message and stack, all escaped. */
export function errorBox(title: string, err: unknown): string {
  const e = err as { name?: unknown; message?: unknown; stack?: unknown } | null;
  const isErr = typeof e === "object" && e !== null && "message" in e;
  const head = isErr ? `${String(e.name ?? "Error")}: ${String(e.message)}` : String(err);
  const stack = isErr && typeof e.stack === "string" ? e.stack.split("\n").slice(1).join("\n") : "";
  return (
    `<div class="mf-error" role="alert"><div class="mf-error-title">${escapeHtml(title)}</div>` +
    `<div class="mf-error-message">${escapeHtml(head)}</div>` +
    (stack ? `<pre class="mf-pre mf-error-stack">${escapeHtml(stack)}</pre>` : "") +
    `</div>`
  );
}

/** A simple id counter plus a flag for Vega; what `renderCard` hands to components. */
export class BasicRenderContext implements RenderContext {
  private counter = 0;
  /** Whether some component asked for the Vega runtime. */
  vega = false;
  /** Errors of components, in the order they happened. */
  readonly errors: { what: string; err: unknown }[] = [];

  nextId(prefix: string): string {
    this.counter += 1;
    return `${prefix.replace(/[^A-Za-z0-9_-]/g, "_")}-${this.counter}`;
  }

  useVega(): void {
    this.vega = true;
  }

  reportError(what: string, err: unknown): void {
    this.errors.push({ what, err });
  }
}
