/**
 * The neural engine's view of a row, from the public schema only: every column becomes a block of one-hot
 * cells — the categories of a categorical column, the bins of a numeric one — plus a "missing" cell, so
 * missingness is modelled like any other value. No data-dependent statistic (quantiles, mixtures) is used.
 */
import type { Cell, Column, Schema, Table } from "../../schema/schema.js";
import { binIndex, numericBins, type NumericBins } from "../../schema/bins.js";
import type { Rng } from "../../random/rng.js";
import { formatDecimal, formatGridValue } from "../independent/sampler.js";

export interface ColumnBlock {
  column: Column;
  /** First one-hot cell of the block. */
  offset: number;
  /** Cells in the block: categories or bins, then missing (the last cell). */
  size: number;
  bins?: NumericBins;
  /**
   * For a numeric column with a value grid: each grid value's share within its bin (the shares of one
   * bin's values sum to 1), estimated from released statistics. Without it a bin's values are uniform.
   */
  gridShares?: Float64Array;
}

export interface Encoding {
  blocks: ColumnBlock[];
  /** Total one-hot width. */
  width: number;
}

export function encodingFor(schema: Schema): Encoding {
  let offset = 0;
  const blocks = schema.columns.map((column) => {
    const bins = column.type === "numeric" ? numericBins(column) : undefined;
    const size = (column.type === "categorical" ? column.values.length : bins!.lo.length) + 1;
    const block: ColumnBlock = { column, offset, size, bins };
    offset += size;
    return block;
  });
  return { blocks, width: offset };
}

/** The block cell of a table cell (numeric values are already clipped to the bounds). */
export function cellIndex(block: ColumnBlock, value: Cell): number {
  if (value === null) return block.size - 1;
  return block.bins ? binIndex(block.bins, value) : value;
}

/** Row-major one-hot rows (n × width). */
export function encodeTable(encoding: Encoding, table: Table): Float32Array {
  const { width, blocks } = encoding;
  const out = new Float32Array(table.rowCount * width);
  blocks.forEach((block, j) => {
    const column = table.columns[j];
    for (let i = 0; i < table.rowCount; i++) out[i * width + block.offset + cellIndex(block, column[i])] = 1;
  });
  return out;
}

/** A cell drawn for a block, as text: a category, a value within the bin, or "" for missing. */
export function decodeCell(block: ColumnBlock, cell: number, rng: Rng): string {
  if (cell === block.size - 1) return "";
  const column = block.column;
  if (column.type === "categorical") return column.values[cell];
  const bins = block.bins!;
  if (bins.grid) {
    const first = cell * bins.perBin;
    const last = Math.min(bins.grid.count, first + bins.perBin) - 1;
    const shares = block.gridShares;
    if (shares && last > first) {
      let u = rng.next();
      let k = first;
      while (k < last && u >= shares[k]) u -= shares[k++];
      return formatGridValue(bins.grid, k);
    }
    return formatGridValue(bins.grid, first + Math.floor(rng.next() * (last - first + 1)));
  }
  const v = bins.lo[cell] + rng.next() * (bins.hi[cell] - bins.lo[cell]);
  return formatDecimal(v, column.min, column.max);
}
