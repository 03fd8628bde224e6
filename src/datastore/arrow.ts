/**
 * The built-in serializer for Apache Arrow tables: a `Table` or `RecordBatch` is stored as a
 * standard Arrow IPC stream (its column buffers written as they are, never joined in memory) and
 * rebuilt with `tableFromIPC`, whose columns are views of the bytes read, without a JS object per row.
 *
 * Which `apache-arrow` builds the value read back matters: a flow bundles its own copy into each
 * task's context, and the step's code tests `instanceof` against that copy. The flow's bundle tells
 * the datastore about its copy (`useArrow`, called by the bundler's shim, see arrow-bundle.ts), so a
 * table comes back as an instance of the step's own `apache-arrow`; where no copy was announced (a
 * flow that does not import it, or client code) Metaflow.ts's own dependency is used.
 */
import { createRequire } from "node:module";
import { types } from "node:util";
import {
  addModuleInstance,
  moduleInstances,
  type Serializer,
  type ValueDescription,
} from "./serializers.js";

/** The name the Arrow serializer records with each artifact it wrote. */
export const ARROW_SERIALIZER = "arrow";
const MODULE_KIND = "apache-arrow";
/** Listings show at most this many columns of a table's schema. */
const SUMMARY_COLUMNS = 50;

/** The parts of the `apache-arrow` module this serializer uses. */
interface ArrowModule {
  readonly Table: new (...args: never[]) => unknown;
  readonly RecordBatch: new (...args: never[]) => unknown;
  readonly RecordBatchStreamWriter: { writeAll(input: unknown): AsyncIterable<Uint8Array> };
  tableFromIPC(bytes: Uint8Array): ArrowTableLike;
}

/** What the serializer reads of a table or record batch (any version, any instance). */
interface ArrowTableLike {
  readonly numRows: number;
  readonly schema: { readonly fields: ReadonlyArray<{ readonly name: string; readonly type: unknown }> };
  readonly batches?: readonly unknown[];
}

let ownArrow: ArrowModule | undefined;

/**
 * Tells Metaflow.ts which `apache-arrow` module builds the tables it reads back; a flow's bundle
 * calls it for the flow's own copy. Call it in client code that imports a copy of `apache-arrow`
 * other than Metaflow.ts's, so that tables come back as instances of yours.
 * @example
 * import * as arrow from "apache-arrow";
 * useArrow(arrow);
 */
export function useArrow(arrow: unknown): void {
  if (!isArrowModule(arrow)) {
    throw new TypeError(
      "useArrow(arrow) takes the apache-arrow module itself: import * as arrow from \"apache-arrow\"; useArrow(arrow)",
    );
  }
  addModuleInstance(MODULE_KIND, arrow);
}

/** Whether `value` is an Arrow `Table` or `RecordBatch` of any copy of `apache-arrow`, and which. */
export function arrowKind(value: unknown): "Table" | "RecordBatch" | undefined {
  if (typeof value !== "object" || value === null || types.isProxy(value)) return undefined;
  const v = value as Record<string | symbol, unknown>;
  // Recent apache-arrow versions brand their classes with registry symbols, shared by every copy and realm.
  if (v[Symbol.for("apache-arrow/Table")] === true) return "Table";
  if (v[Symbol.for("apache-arrow/RecordBatch")] === true) return "RecordBatch";
  const name = (Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null)?.constructor?.name;
  if (name !== "Table" && name !== "RecordBatch") return undefined;
  const schema = v.schema as { fields?: unknown } | undefined;
  if (typeof schema !== "object" || schema === null || !Array.isArray(schema.fields)) return undefined;
  if (typeof v.getChild !== "function") return undefined;
  return name === "Table" ? (Array.isArray(v.batches) ? "Table" : undefined) : "RecordBatch";
}

/** The Arrow serializer: stores tables and record batches as IPC streams. */
export const arrowSerializer: Serializer<ArrowTableLike> = {
  name: ARROW_SERIALIZER,
  test: (value) => arrowKind(value) !== undefined,
  async encode(value) {
    const arrow = moduleFor(value);
    const chunks: Uint8Array[] = [];
    // A record batch is iterable (by row): the writer must be handed a list of batches instead.
    const input = arrowKind(value) === "RecordBatch" ? [value] : value;
    // The writer queues views of the column buffers; draining it collects them without a copy.
    for await (const chunk of arrow.RecordBatchStreamWriter.writeAll(input)) chunks.push(chunk);
    return chunks;
  },
  decode(bytes, stored) {
    const table = readerModule().tableFromIPC(bytes as Buffer);
    // A record batch was written as a stream of that one batch: it comes back as itself.
    if (stored.type === "RecordBatch" && table.batches?.length === 1) return table.batches[0] as ArrowTableLike;
    return table;
  },
  describe: describeArrow,
};

/** Rows and schema, for listings. */
function describeArrow(value: ArrowTableLike): ValueDescription {
  const fields = value.schema.fields;
  const columns = fields.slice(0, SUMMARY_COLUMNS).map((f) => `${f.name}: ${String(f.type)}`);
  if (fields.length > SUMMARY_COLUMNS) columns.push(`… ${fields.length - SUMMARY_COLUMNS} more`);
  return { type: arrowKind(value) ?? "Table", summary: { rows: value.numRows, columns } };
}

/**
 * The copy of apache-arrow that made `value`: Arrow's writer handles only tables of its own copy
 * (a table of another copy would be written wrongly), so a value of an unknown copy is refused.
 */
function moduleFor(value: unknown): ArrowModule {
  const madeBy = (m: ArrowModule): boolean =>
    // Plain prototype-chain instanceof: Arrow's own `instanceof` accepts every copy's tables.
    Function.prototype[Symbol.hasInstance].call(m.Table, value) ||
    Function.prototype[Symbol.hasInstance].call(m.RecordBatch, value);
  const found = (moduleInstances(MODULE_KIND) as ArrowModule[]).find(madeBy);
  if (found) return found;
  const own = loadOwnArrow();
  if (madeBy(own)) return own;
  throw new Error(
    "this Arrow table was made by a copy of apache-arrow that Metaflow.ts was not told about, and Arrow writes " +
      'only tables of its own copy; pass that copy to useArrow() from "metaflow-ts" first ' +
      '(import * as arrow from "apache-arrow"; useArrow(arrow))',
  );
}

/** The module that rebuilds values read: the step's (or client's) own, else Metaflow.ts's. */
function readerModule(): ArrowModule {
  return (moduleInstances(MODULE_KIND)[0] as ArrowModule | undefined) ?? loadOwnArrow();
}

function loadOwnArrow(): ArrowModule {
  // Loaded on first use only: most runs store no table, and the library takes ~100 ms to load.
  ownArrow ??= createRequire(import.meta.url)("apache-arrow") as ArrowModule;
  return ownArrow;
}

function isArrowModule(m: unknown): m is ArrowModule {
  if (typeof m !== "object" || m === null) return false;
  const a = m as Record<string, unknown>;
  return (
    typeof a.Table === "function" &&
    typeof a.RecordBatch === "function" &&
    typeof a.tableFromIPC === "function" &&
    typeof (a.RecordBatchStreamWriter as { writeAll?: unknown } | undefined)?.writeAll === "function"
  );
}
