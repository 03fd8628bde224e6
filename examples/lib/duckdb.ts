/**
 * Arrow tables in and out of DuckDB (`@duckdb/node-api`), column by column: an Arrow table becomes
 * a DuckDB table through the appender, in chunks of 2,048 rows, and a query's result columns become
 * an Arrow table again. No JS object is made per row on either way.
 */
import { DOUBLE, DuckDBDataChunk, DuckDBInstance, DuckDBTypeId, INTEGER, VARCHAR, type DuckDBConnection, type DuckDBType, type DuckDBValue } from "@duckdb/node-api";
import { DataType, Float64, Int32, Table, makeVector, vectorFromArray, Utf8, type Vector } from "apache-arrow";

const CHUNK_ROWS = 2048;

/** Runs `work` with a fresh in-memory DuckDB database, closed afterwards. */
export async function withDuckDB<T>(work: (db: DuckDBConnection) => Promise<T>): Promise<T> {
  const instance = await DuckDBInstance.create(":memory:");
  const db = await instance.connect();
  try {
    return await work(db);
  } finally {
    db.closeSync();
    instance.closeSync();
  }
}

/** Creates the DuckDB table `name` holding `table`'s rows (float64, int32 and string columns). */
export async function insertArrow(db: DuckDBConnection, name: string, table: Table): Promise<void> {
  const fields = table.schema.fields;
  const types = fields.map((f) => duckType(f.type, f.name));
  await db.run(`CREATE TABLE "${name}" (${fields.map((f, i) => `"${f.name}" ${types[i]}`).join(", ")})`);
  const appender = await db.createAppender(name);
  for (let start = 0; start < table.numRows; start += CHUNK_ROWS) {
    const end = Math.min(table.numRows, start + CHUNK_ROWS);
    const chunk = DuckDBDataChunk.create(types, end - start);
    chunk.setColumns(fields.map((f) => columnValues(table.getChild(f.name)!.slice(start, end))));
    appender.appendDataChunk(chunk);
  }
  appender.closeSync();
}

/** Runs `sql` (with `$name` parameters) and returns its result as an Arrow table. */
export async function queryArrow(db: DuckDBConnection, sql: string, params: Record<string, DuckDBValue> = {}): Promise<Table> {
  const reader = await db.runAndReadAll(sql, params);
  const names = reader.columnNames();
  const types = reader.columnTypes();
  const columns = reader.getColumnsJS();
  const vectors: Record<string, Vector> = {};
  names.forEach((name, i) => {
    const values = columns[i]!;
    switch (types[i]!.typeId) {
      case DuckDBTypeId.DOUBLE:
        vectors[name] = makeVector(Float64Array.from(values as number[]));
        break;
      case DuckDBTypeId.INTEGER:
        vectors[name] = makeVector(Int32Array.from(values as number[]));
        break;
      case DuckDBTypeId.VARCHAR:
        vectors[name] = vectorFromArray(values as string[], new Utf8());
        break;
      default:
        throw new Error(`queryArrow: column ${name} has DuckDB type ${types[i]!.toString()}; cast it to DOUBLE, INTEGER or VARCHAR`);
    }
  });
  return new Table(vectors);
}

function duckType(type: DataType, column: string): DuckDBType {
  if (DataType.isFloat(type)) return DOUBLE;
  if (DataType.isInt(type) && type.bitWidth <= 32) return INTEGER;
  if (DataType.isUtf8(type) || (DataType.isDictionary(type) && DataType.isUtf8(type.dictionary))) return VARCHAR;
  throw new Error(`insertArrow: column ${column} is ${String(type)}; only float, int32 and string columns are handled`);
}

function columnValues(vector: Vector): DuckDBValue[] {
  if (vector.type instanceof Float64 || vector.type instanceof Int32) {
    // Typed arrays carry no nulls; a column with nulls goes value by value.
    if (vector.nullCount === 0) return Array.from(vector.toArray() as ArrayLike<number>);
  }
  return [...vector] as DuckDBValue[];
}
