/** Visual components: `Image`, `VegaChart`, `ProgressBar` and the `Error` box. */
import { CardComponent, errorBox, type RenderContext } from "../component.js";
import { escapeHtml, jsonForScript } from "../escape.js";

/** Image formats a card shows, by their first bytes. */
function sniffImage(bytes: Uint8Array): string | undefined {
  const at = (i: number, ...b: number[]) => b.every((v, k) => bytes[i + k] === v);
  if (at(0, 0x89, 0x50, 0x4e, 0x47)) return "image/png";
  if (at(0, 0xff, 0xd8, 0xff)) return "image/jpeg";
  if (at(0, 0x47, 0x49, 0x46, 0x38)) return "image/gif";
  if (at(0, 0x52, 0x49, 0x46, 0x46) && at(8, 0x57, 0x45, 0x42, 0x50)) return "image/webp";
  const head = Buffer.from(bytes.subarray(0, 256)).toString("utf8").trimStart();
  if (head.startsWith("<svg") || (head.startsWith("<?xml") && head.includes("<svg"))) return "image/svg+xml";
  return undefined;
}

/** Options of `Image`. */
export interface ImageOptions {
  /** A caption under the image. @default none */
  readonly label?: string;
  /** The image's MIME type; detected from its bytes when not given (PNG, JPEG, GIF, WebP, SVG). */
  readonly mimeType?: string;
}

/** What `Image.fromChart` accepts. */
export type ChartSource = VegaChart | { toSVG(): string | Promise<string> } | Record<string, unknown> | string;

/**
 * An image, stored inside the card (as a data URI: the card stays one file). An SVG is shown as
 * an image, so scripts in it never run.
 * @example report.append(Image.fromBuffer(fs.readFileSync("plot.png"), { label: "loss" }));
 */
export class Image extends CardComponent {
  private readonly bytes: Buffer;
  private readonly mime: string | undefined;

  constructor(
    data: Buffer | Uint8Array | ArrayBuffer,
    private readonly options: ImageOptions = {},
  ) {
    super();
    const view = data instanceof ArrayBuffer || Object.prototype.toString.call(data) === "[object ArrayBuffer]" ? new Uint8Array(data as ArrayBuffer) : (data as Uint8Array);
    if (!ArrayBuffer.isView(view)) throw new TypeError(`Image expects a Buffer or Uint8Array, got ${typeof data}`);
    this.bytes = Buffer.from(view.buffer, view.byteOffset, view.byteLength);
    this.mime = options.mimeType ?? sniffImage(this.bytes);
  }

  /** An image from its bytes (PNG, JPEG, GIF, WebP or SVG). */
  static fromBuffer(data: Buffer | Uint8Array | ArrayBuffer, options: ImageOptions = {}): Image {
    return new Image(data, options);
  }

  /**
   * An image of a chart: a `VegaChart` or a Vega / Vega-Lite spec (drawn with Vega, as SVG), an
   * object with `toSVG()` (such as a Vega `View`), or SVG text.
   */
  static async fromChart(chart: ChartSource, options: ImageOptions = {}): Promise<Image> {
    let svg: string;
    if (typeof chart === "string") svg = chart;
    else if (typeof (chart as { toSVG?: unknown }).toSVG === "function") svg = await (chart as { toSVG(): string | Promise<string> }).toSVG();
    else svg = await vegaToSvg(chart instanceof VegaChart ? chart.spec : (chart as Record<string, unknown>));
    return new Image(Buffer.from(svg, "utf8"), { ...options, mimeType: "image/svg+xml" });
  }

  override render(): string {
    if (!this.mime?.startsWith("image/")) {
      return errorBox("Image: unknown format", new Error("the bytes are not a PNG, JPEG, GIF, WebP or SVG image; pass { mimeType } if it is another image format"));
    }
    const src = `data:${this.mime};base64,${this.bytes.toString("base64")}`;
    const label = this.options.label;
    return (
      `<figure class="mf-image"><img src="${escapeHtml(src)}" alt="${escapeHtml(label ?? "image")}">` +
      (label ? `<figcaption>${escapeHtml(label)}</figcaption>` : "") +
      `</figure>`
    );
  }
}

/** Whether a spec is Vega-Lite (else it is taken as full Vega). */
export function isVegaLite(spec: Readonly<Record<string, unknown>>): boolean {
  const schema = typeof spec.$schema === "string" ? spec.$schema : "";
  if (schema.includes("vega-lite")) return true;
  if (schema.includes("/vega/")) return false;
  return !("marks" in spec) || "mark" in spec || "layer" in spec || "facet" in spec || "concat" in spec || "hconcat" in spec || "vconcat" in spec || "repeat" in spec;
}

/** Draws a Vega or Vega-Lite spec as SVG text in Node (loads Vega on first use). */
async function vegaToSvg(spec: Readonly<Record<string, unknown>>): Promise<string> {
  const vega = await import("vega");
  const vegaSpec = isVegaLite(spec) ? (await import("vega-lite")).compile(spec as never).spec : spec;
  const view = new vega.View(vega.parse(vegaSpec as never), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * A chart from a Vega-Lite (or Vega) spec, drawn by Vega when the card is opened; the card
 * carries the chart runtime, so it draws offline.
 * @example report.append(new VegaChart({ mark: "line", data: { values }, encoding: { ... } }));
 */
export class VegaChart extends CardComponent {
  constructor(private current: Readonly<Record<string, unknown>>) {
    super();
    checkSpec(current);
  }

  /** The spec as given. */
  get spec(): Readonly<Record<string, unknown>> {
    return this.current;
  }

  /** Replaces the spec (for a live card; call `refresh()` after). */
  update(spec: Readonly<Record<string, unknown>>): void {
    checkSpec(spec);
    this.current = spec;
  }

  override render(ctx: RenderContext): string {
    ctx.useVega();
    const id = ctx.nextId("mf-vega");
    const payload = { lite: isVegaLite(this.current), spec: this.current };
    return `<div class="mf-vega" id="${escapeHtml(id)}"></div><script type="application/json" data-mf-vega="${escapeHtml(id)}">${jsonForScript(payload)}</script>`;
  }
}

function checkSpec(spec: unknown): void {
  if (typeof spec !== "object" || spec === null || Array.isArray(spec)) {
    throw new TypeError(`VegaChart expects a Vega-Lite or Vega spec object, got ${Array.isArray(spec) ? "an array" : typeof spec}`);
  }
  try {
    JSON.stringify(spec);
  } catch (err) {
    throw new TypeError(`VegaChart's spec must be JSON data: ${(err as Error).message}`);
  }
}

/** Options of `ProgressBar`. */
export interface ProgressBarOptions {
  /** The value that means done. @default 100 */
  readonly max?: number;
  /** Shown before the bar. @default none */
  readonly label?: string;
  /** The starting value. @default 0 */
  readonly value?: number;
  /** Shown after the numbers, e.g. `epochs`. @default none */
  readonly unit?: string;
}

/**
 * A progress bar; `update(value)` then `refresh()` on a live card moves it while the task runs.
 * @example const bar = new ProgressBar({ max: 10, label: "epochs" }); report.append(bar); bar.update(3);
 */
export class ProgressBar extends CardComponent {
  private value: number;
  private readonly max: number;

  constructor(private readonly options: ProgressBarOptions = {}) {
    super();
    this.max = options.max ?? 100;
    if (!Number.isFinite(this.max) || this.max <= 0) throw new RangeError(`ProgressBar.max must be a number above 0, got ${String(options.max)}`);
    this.value = 0;
    this.update(options.value ?? 0);
  }

  /** Sets the current value (clamped to 0..max). */
  update(value: number): void {
    if (typeof value !== "number" || Number.isNaN(value)) throw new TypeError(`ProgressBar.update expects a number, got ${String(value)}`);
    this.value = Math.min(this.max, Math.max(0, value));
  }

  override render(): string {
    const pct = Math.round((this.value / this.max) * 1000) / 10;
    const unit = this.options.unit ? ` ${escapeHtml(this.options.unit)}` : "";
    const label = this.options.label ? `<span class="mf-progress-label">${escapeHtml(this.options.label)}</span>` : "";
    return (
      `<div class="mf-progress">${label}<div class="mf-progress-track" role="progressbar" aria-valuemin="0" aria-valuemax="${this.max}" aria-valuenow="${this.value}">` +
      `<div class="mf-progress-fill" style="width:${pct}%"></div></div>` +
      `<span class="mf-progress-count">${escapeHtml(formatNumber(this.value))} / ${escapeHtml(formatNumber(this.max))}${unit}</span></div>`
    );
  }
}

function formatNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2);
}

/**
 * An error shown in a card: its name, message and stack (exported as `Error` too, as in Metaflow).
 * @example report.append(new ErrorComponent(err, { title: "Evaluation failed" }));
 */
export class ErrorComponent extends CardComponent {
  constructor(
    private readonly error: unknown,
    private readonly options: { readonly title?: string } = {},
  ) {
    super();
  }

  override render(): string {
    return errorBox(this.options.title ?? "Error", this.error);
  }
}
