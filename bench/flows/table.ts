/**
 * Benchmark: a table of `rows` rows (x float64, n int32, cat: one of three strings) written in one
 * step and read in the next, as an Arrow table (`kind` arrow: cat dictionary-encoded) or as an
 * array of plain objects (`kind` objects, through the default serializer).
 */
import { Dictionary, Int32, Table, Utf8, makeData, makeVector, vectorFromArray } from "apache-arrow";
import { FlowSpec, Parameter, step } from "metaflow-ts";

const CATEGORIES = ["alpha", "beta", "gamma"];

export default class TableFlow extends FlowSpec {
  rows = Parameter("rows", { default: 10_000_000 });
  kind = Parameter("kind", { default: "arrow", help: "arrow or objects" });
  seed = Parameter("seed", { default: 1, help: "Changes the values, so runs do not deduplicate" });
  declare table: Table | Array<{ x: number; n: number; cat: string }>;
  declare rowsRead: number;
  declare peakRssMb: number;

  @step start() {
    const rows = this.rows;
    if (this.kind === "arrow") {
      const x = new Float64Array(rows);
      const n = new Int32Array(rows);
      const codes = new Int32Array(rows);
      for (let i = 0; i < rows; i++) {
        x[i] = i * 0.5 + this.seed;
        n[i] = i;
        codes[i] = i % 3;
      }
      const type = new Dictionary(new Utf8(), new Int32());
      const dictionary = vectorFromArray(CATEGORIES, new Utf8());
      const cat = makeVector(makeData({ type, length: rows, nullCount: 0, data: codes, dictionary }));
      this.table = new Table({ x: makeVector(x), n: makeVector(n), cat });
    } else {
      this.table = Array.from({ length: rows }, (_, i) => ({ x: i * 0.5 + this.seed, n: i, cat: CATEGORIES[i % 3]! }));
    }
    this.next(this.read);
  }

  @step read() {
    const t = this.table;
    this.rowsRead = Array.isArray(t) ? t.length : t.numRows;
    this.peakRssMb = process.resourceUsage().maxRSS / 1024;
    this.next(this.end);
  }

  @step end() {}
}
