/**
 * Feature encoding for the ML-utility model, from the schema alone (so real and synthetic training sets
 * and the holdout share one encoding): intercept; numeric → (x − min)/(max − min) in [0, 1] plus a missing
 * indicator (missing → value 0, indicator 1); categorical → one-hot over its values plus "missing".
 */
import type { Schema, Table } from "../shared/schema/schema.js";
import type { Design } from "./logistic-regression.js";
import { isPresent } from "./tables.js";

export interface FeatureLayout {
  /** Number of features, including the intercept at index 0. */
  dim: number;
  /** Stored entries per row. */
  width: number;
  /** For each schema column: its first feature index, or −1 if it is excluded (the target). */
  offset: number[];
}

export function featureLayout(schema: Schema, exclude: number): FeatureLayout {
  let dim = 1;
  let width = 1;
  const offset: number[] = [];
  schema.columns.forEach((c, j) => {
    if (j === exclude) {
      offset.push(-1);
      return;
    }
    offset.push(dim);
    if (c.type === "numeric") {
      dim += 2;
      width += 2;
    } else {
      dim += c.values.length + 1;
      width += 1;
    }
  });
  return { dim, width, offset };
}

/** Encode the given rows of `table` (all rows when `rows` is omitted). */
export function encodeFeatures(schema: Schema, table: Table, layout: FeatureLayout, rows?: ArrayLike<number>): Design {
  const n = rows ? rows.length : table.rowCount;
  const { dim, width, offset } = layout;
  const index = new Int32Array(n * width);
  const value = new Float64Array(n * width);
  for (let r = 0; r < n; r++) {
    const i = rows ? rows[r] : r;
    let t = r * width;
    index[t] = 0;
    value[t++] = 1;
    schema.columns.forEach((c, j) => {
      const o = offset[j];
      if (o < 0) return;
      const cell = table.columns[j][i];
      const present = isPresent(c, cell);
      if (c.type === "numeric") {
        const span = c.max - c.min;
        const x = present && span > 0 ? Math.min(1, Math.max(0, (cell - c.min) / span)) : 0;
        index[t] = o;
        value[t++] = x;
        index[t] = o + 1;
        value[t++] = present ? 0 : 1;
      } else {
        index[t] = o + (present ? cell : c.values.length);
        value[t++] = 1;
      }
    });
  }
  return { rows: n, width, dim, index, value };
}
