/** `Table`: rows of cells, each a plain value or a component (a chart in a cell, a progress bar, ...). */
import { CardComponent, renderChild, type RenderContext } from "../component.js";
import { escapeHtml } from "../escape.js";

/** Options of `Table`. */
export interface TableOptions {
  /** Column titles. @default none (no header row) */
  readonly headers?: readonly unknown[];
  /** Most rows shown; a note says how many were left out. @default 1000 */
  readonly maxRows?: number;
}

/** The parts of an Apache Arrow `Table` that `Table.fromArrow` reads (no import of apache-arrow needed). */
export interface ArrowLike {
  readonly numRows: number;
  readonly schema: { readonly fields: ReadonlyArray<{ readonly name: string }> };
  get(index: number): { toJSON?(): Record<string, unknown> } | Record<string, unknown> | null;
}

/** True for a value shaped like an Apache Arrow table (duck-typed: the flow bundles its own apache-arrow). */
export function isArrowLike(v: unknown): v is ArrowLike {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const t = v as Partial<ArrowLike>;
  return typeof t.numRows === "number" && typeof t.get === "function" && Array.isArray(t.schema?.fields);
}

/** The first `maxRows` rows of an Arrow table as cells, with its column names. */
function arrowRows(table: ArrowLike, maxRows: number): { names: string[]; rows: unknown[][] } {
  const names = table.schema.fields.map((f) => f.name);
  const rows: unknown[][] = [];
  for (let i = 0; i < Math.min(table.numRows, maxRows); i++) {
    const row = table.get(i) as ({ toJSON?(): Record<string, unknown> } & Record<string, unknown>) | null;
    const obj = row && typeof row.toJSON === "function" ? row.toJSON() : (row ?? {});
    rows.push(names.map((n) => obj[n]));
  }
  return { names, rows };
}

/**
 * A table. Cells may hold components (`new Markdown(...)`, `new ProgressBar(...)`, `Image`...),
 * which render inside the cell; any other value is shown as text. Given an Apache Arrow table,
 * it shows its first `maxRows` rows under the column names.
 * @example report.append(new Table([[1, 0.9], [2, 0.93]], { headers: ["epoch", "auc"] }));
 */
export class Table extends CardComponent {
  private readonly rows: unknown[][];
  private readonly headers: readonly unknown[] | undefined;
  private readonly maxRows: number;
  private hiddenRows = 0;
  constructor(rows: readonly (readonly unknown[])[] | ArrowLike = [], options: TableOptions = {}) {
    super();
    const maxRows = options.maxRows ?? 1000;
    if (typeof maxRows !== "number" || !Number.isSafeInteger(maxRows) || maxRows < 1) {
      throw new RangeError(`Table.maxRows must be a whole number ≥ 1, got ${typeof maxRows === "number" ? String(maxRows) : JSON.stringify(maxRows)}`);
    }
    this.maxRows = maxRows;
    if (isArrowLike(rows)) {
      const arrow = arrowRows(rows, this.maxRows);
      this.rows = arrow.rows;
      this.headers = options.headers ?? arrow.names;
      this.hiddenRows = Math.max(0, rows.numRows - arrow.rows.length);
      return;
    }
    if (!Array.isArray(rows)) throw new TypeError(`Table expects an array of rows or an Arrow table, got ${typeof rows}`);
    this.rows = rows.map((r, i) => {
      if (!Array.isArray(r)) throw new TypeError(`Table row ${i} must be an array of cells, got ${typeof r}`);
      return [...(r as unknown[])];
    });
    this.headers = options.headers;
  }

  /** A table of objects: one column per key (in first-seen order), one row per object. */
  static fromRecords(records: readonly Readonly<Record<string, unknown>>[], options: Omit<TableOptions, "headers"> = {}): Table {
    const keys: string[] = [];
    for (const r of records) for (const k of Object.keys(r)) if (!keys.includes(k)) keys.push(k);
    return new Table(
      records.map((r) => keys.map((k) => r[k])),
      { ...options, headers: keys },
    );
  }

  /** A table of the first `maxRows` rows of an Apache Arrow table (the same as `new Table(arrowTable)`). */
  static fromArrow(table: ArrowLike, options: Omit<TableOptions, "headers"> = {}): Table {
    if (!isArrowLike(table)) throw new TypeError("Table.fromArrow expects an Apache Arrow Table (numRows, schema.fields, get(i))");
    return new Table(table, options);
  }

  /** Adds a row (for a live card; call `refresh()` after). */
  addRow(row: readonly unknown[]): void {
    this.rows.push([...row]);
  }

  override render(ctx: RenderContext): string {
    const cell = (v: unknown, tag: "td" | "th"): string => `<${tag}>${renderChild(v, ctx)}</${tag}>`;
    const head = this.headers ? `<thead><tr>${this.headers.map((h) => `<th>${escapeHtml(String(h))}</th>`).join("")}</tr></thead>` : "";
    const shown = this.rows.slice(0, this.maxRows);
    const body = shown.map((r) => `<tr>${r.map((v) => cell(v, "td")).join("")}</tr>`).join("");
    const hidden = this.rows.length - shown.length + this.hiddenRows;
    const note = hidden > 0 ? `<div class="mf-note">${hidden} more row${hidden === 1 ? "" : "s"} not shown</div>` : "";
    return `<div class="mf-table-wrap"><table class="mf-table">${head}<tbody>${body}</tbody></table>${note}</div>`;
  }
}
