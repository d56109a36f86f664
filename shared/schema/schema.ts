/**
 * The study schema: public metadata agreed by the consortium. Bounds, categories and bins come from here,
 * never from the data, because anything derived from the data would have to be noised and charged.
 */
export interface NumericColumn {
  name: string;
  type: "numeric";
  min: number;
  max: number;
  /** Values are whole numbers (sampled values are rounded). */
  integer: boolean;
  /** Number of equal-width bins for histogram-based engines; derived from the bounds when absent. */
  bins?: number;
  /**
   * The measurement's resolution (public metadata): values are min + k·step (integer columns:
   * ceil(min) + k·step, a whole step ≥ 1; their default is 1). Read values are snapped to this grid, and
   * engines sample grid values only. Absent for a continuous column.
   */
  step?: number;
}

export interface CategoricalColumn {
  name: string;
  type: "categorical";
  values: string[];
}

export type Column = NumericColumn | CategoricalColumn;

export interface Schema {
  columns: Column[];
  /** Cell texts that mean "missing". */
  missing: string[];
  /**
   * The study's outcome column, by name (public, declared with the schema; optional): what the data will be
   * used to predict. The marginal engine measures the column pairs with it more precisely in its
   * all-pairs round, and `fedsynth evaluate` takes it as the default ML-utility target.
   */
  outcome?: string;
}

/** Index of the schema's declared outcome column, or −1 when it declares none. */
export function outcomeIndex(schema: Schema): number {
  return schema.outcome === undefined ? -1 : schema.columns.findIndex((c) => c.name === schema.outcome);
}

/** A cell after reading: a number for numeric columns, a category index for categoricals, null if missing. */
export type Cell = number | null;

/**
 * Rows of one site's data read through the schema. Column j of row i is `columns[j][i]`: numeric values
 * are already clipped to [min, max]; categorical values are indices into the column's `values`.
 */
export interface Table {
  schema: Schema;
  rowCount: number;
  columns: Cell[][];
}

/** A row ready to write: one string per schema column, "" for missing. */
export type OutputRow = string[];
