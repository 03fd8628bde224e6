/** Structural components card types build pages from: a titled `Section` and a `KeyValue` list. */
import { CardComponent, renderChild, type RenderContext } from "../component.js";
import { escapeHtml } from "../escape.js";

/** A titled group of components. */
export class Section extends CardComponent {
  constructor(
    private readonly title: string,
    private readonly children: readonly unknown[],
  ) {
    super();
  }

  override render(ctx: RenderContext): string {
    const body = this.children.map((c) => `<div class="mf-component">${renderChild(c, ctx)}</div>`).join("");
    return `<section class="mf-section"><h2>${escapeHtml(this.title)}</h2>${body}</section>`;
  }
}

/** Rows of `name: value`; values may be components. */
export class KeyValue extends CardComponent {
  constructor(private readonly entries: readonly (readonly [string, unknown])[]) {
    super();
  }

  override render(ctx: RenderContext): string {
    const rows = this.entries.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${renderChild(v, ctx)}</td></tr>`).join("");
    return `<table class="mf-kv"><tbody>${rows}</tbody></table>`;
  }
}

/** Raw, trusted HTML made by the library itself (never from a user value). */
export class TrustedHtml extends CardComponent {
  constructor(private readonly html: string) {
    super();
  }

  override render(): string {
    return this.html;
  }
}
