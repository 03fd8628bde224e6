/** Text components: `Markdown` (rendered without raw HTML, links checked) and `Artifact` (a pretty-printed value). */
import { createRequire } from "node:module";
import { CardComponent, type RenderContext } from "../component.js";
import { escapeHtml } from "../escape.js";
import { describeType, previewValue } from "../preview.js";

interface MarkdownRenderer {
  render(text: string): string;
}

let markdownIt: MarkdownRenderer | undefined;

/** markdown-it, loaded on first use; raw HTML in the source is shown as text, and unsafe link schemes are dropped. */
function markdown(): MarkdownRenderer {
  if (!markdownIt) {
    const MarkdownIt = createRequire(import.meta.url)("markdown-it") as new (options: object) => MarkdownRenderer & {
      renderer: { rules: Record<string, unknown> };
    };
    const md = new MarkdownIt({ html: false, linkify: true, typographer: false });
    const rules = md.renderer.rules as Record<string, (tokens: any[], idx: number, options: unknown, env: unknown, self: any) => string>;
    // Links leave the card in a new, unrelated browsing context.
    rules.link_open = (tokens, idx, options, _env, self) => {
      tokens[idx].attrSet("rel", "noopener noreferrer nofollow");
      tokens[idx].attrSet("target", "_blank");
      return self.renderToken(tokens, idx, options);
    };
    markdownIt = md;
  }
  return markdownIt;
}

/**
 * Markdown text. HTML written in the text is shown as text, never interpreted, and links with
 * `javascript:` or other unsafe schemes are not made into links.
 * @example report.append(new Markdown("# Training\nThe **best** model so far."));
 */
export class Markdown extends CardComponent {
  constructor(private text: string) {
    super();
  }

  /** Replaces the text (for a live card; call `refresh()` after). */
  update(text: string): void {
    this.text = text;
  }

  override render(): string {
    return `<div class="mf-markdown">${markdown().render(String(this.text))}</div>`;
  }
}

/** Options of `Artifact`. */
export interface ArtifactOptions {
  /** A title shown above the value. @default none */
  readonly name?: string;
  /** Longest text shown, in characters. @default 2000 */
  readonly maxChars?: number;
}

/**
 * A value pretty-printed (as `util.inspect` shows it), with its type.
 * @example report.append(new Artifact(this.model, { name: "model" }));
 */
export class Artifact extends CardComponent {
  constructor(
    private readonly value: unknown,
    private readonly options: ArtifactOptions = {},
  ) {
    super();
  }

  override render(_ctx: RenderContext): string {
    const title = this.options.name === undefined ? "" : `<span class="mf-artifact-name">${escapeHtml(this.options.name)}</span> `;
    return (
      `<div class="mf-artifact"><div class="mf-artifact-head">${title}<span class="mf-type">${escapeHtml(describeType(this.value))}</span></div>` +
      `<pre class="mf-pre">${escapeHtml(previewValue(this.value, { maxChars: this.options.maxChars ?? 2000 }))}</pre></div>`
    );
  }
}
