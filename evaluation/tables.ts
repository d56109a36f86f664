/**
 * Table plumbing for the evaluation: pooling sites, checking that tables match the schema, and reading
 * one column as discrete codes (with "missing" as its own code) or as numbers.
 */
import { FedsynthError } from "../shared/errors.js";
import { binIndex, numericBins } from "../shared/schema/bins.js";
import type { Cell, Column, Schema, Table } from "../shared/schema/schema.js";

/** Pool the rows of several tables with the same columns (the sites' real data) into one table. */
export function concatTables(tables: Table[]): Table {
  if (tables.length === 0) {
    throw new FedsynthError("invalid-argument", "no tables to concatenate", { hint: "give at least one --real file" });
  }
  const schema = tables[0].schema;
  for (const t of tables) checkTable(t, schema, "real");
  const columns: Cell[][] = schema.columns.map(() => []);
  let rowCount = 0;
  for (const t of tables) {
    for (let j = 0; j < columns.length; j++) {
      const dst = columns[j];
      const src = t.columns[j];
      for (let i = 0; i < t.rowCount; i++) dst.push(src[i]);
    }
    rowCount += t.rowCount;
  }
  return { schema, rowCount, columns };
}

/** Throw unless `table` has the schema's columns (by count and name) and `rowCount` cells in each. */
export function checkTable(table: Table, schema: Schema, label: string): void {
  const want = schema.columns.map((c) => c.name);
  const have = table.schema.columns.map((c) => c.name);
  if (have.length !== want.length || have.some((n, j) => n !== want[j])) {
    throw new FedsynthError("invalid-data", `the ${label} table's columns (${have.join(", ")}) do not match the schema's (${want.join(", ")})`, {
      hint: "read every table with the same schema",
    });
  }
  if (table.columns.length !== want.length) {
    throw new FedsynthError("invalid-data", `the ${label} table has ${table.columns.length} columns of cells but the schema has ${want.length}`);
  }
  for (let j = 0; j < want.length; j++) {
    if (table.columns[j].length !== table.rowCount) {
      throw new FedsynthError("invalid-data", `the ${label} table's column '${want[j]}' has ${table.columns[j].length} cells, expected ${table.rowCount}`, {
        location: { column: want[j] },
      });
    }
  }
}

/** True for a cell that counts as present for this column (categoricals: a valid index). */
export function isPresent(column: Column, cell: Cell): cell is number {
  if (cell === null || typeof cell !== "number" || Number.isNaN(cell)) return false;
  if (column.type === "categorical") return Number.isInteger(cell) && cell >= 0 && cell < column.values.length;
  return true;
}

/** A column as discrete codes 0 .. levels−1: numeric bins or category indices, and `levels − 1` for missing. */
export interface Codes {
  codes: Int32Array;
  levels: number;
}

/** Discrete codes for a column under the schema (invalid categorical indices count as missing). */
export function columnCodes(column: Column, cells: Cell[]): Codes {
  const n = cells.length;
  const codes = new Int32Array(n);
  if (column.type === "categorical") {
    const missing = column.values.length;
    for (let i = 0; i < n; i++) {
      const c = cells[i];
      codes[i] = isPresent(column, c) ? c : missing;
    }
    return { codes, levels: missing + 1 };
  }
  const bins = numericBins(column);
  const missing = bins.lo.length;
  for (let i = 0; i < n; i++) {
    const c = cells[i];
    codes[i] = isPresent(column, c) ? binIndex(bins, Math.min(column.max, Math.max(column.min, c))) : missing;
  }
  return { codes, levels: missing + 1 };
}

/** A numeric column as a Float64Array with NaN for missing. */
export function numericValues(cells: Cell[]): Float64Array {
  const out = new Float64Array(cells.length);
  for (let i = 0; i < cells.length; i++) {
    const c = cells[i];
    out[i] = c === null || typeof c !== "number" ? NaN : c;
  }
  return out;
}
