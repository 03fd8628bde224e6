/**
 * Turns rendered card HTML into one self-contained page: styles inline, the chart runtime inline
 * only when a chart needs it, and a Content-Security-Policy that lets nothing else run or load.
 */
import { readAsset } from "./assets.js";
import { escapeHtml } from "./escape.js";
import { CARD_CSS } from "./styles.js";

/** Where the built card chart runtime lives under `dist/`. */
export const VEGA_RUNTIME_ASSET = "cards/vega-runtime.js";

/** What the page wraps. */
export interface CardDocumentParts {
  /** The page title. */
  readonly title: string;
  /** The card's body HTML (already escaped by the components). */
  readonly body: string;
  /** Whether to include the Vega runtime. */
  readonly vega: boolean;
  /** Facts about the card, written into a `<meta>` tag for tools (type, id, pathspec). */
  readonly meta: Readonly<Record<string, string | number | boolean | undefined>>;
}

/**
 * The card page. Its policy allows inline styles, `data:` images and, when charts are drawn,
 * exactly the runtime script (by hash): a `<script>` that got into a value could not run even if
 * escaping had missed it, and the card loads nothing from the network.
 */
export function cardDocument(parts: CardDocumentParts): string {
  const runtime = parts.vega ? readAsset(VEGA_RUNTIME_ASSET) : undefined;
  const scriptSrc = runtime ? `'${runtime.cspHash}'` : "'none'";
  const csp = `default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; script-src ${scriptSrc}; base-uri 'none'; form-action 'none'`;
  const meta = Object.entries(parts.meta)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `<meta name="metaflow-card-${escapeHtml(k)}" content="${escapeHtml(String(v))}">`)
    .join("");
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
    `<meta http-equiv="Content-Security-Policy" content="${escapeHtml(csp)}">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">${meta}` +
    `<title>${escapeHtml(parts.title)}</title><style>${CARD_CSS}</style></head>` +
    `<body><main class="mf-card">${parts.body}</main>` +
    (runtime ? `<script>${runtime.text}</script>` : "") +
    `</body></html>\n`
  );
}
