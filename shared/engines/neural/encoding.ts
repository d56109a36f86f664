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

/**
 * What the network reads of a drawn cell (its outputs are always the one-hot blocks above), from the
 * public schema only:
 * - "onehot": the block's one-hot cells, as the outputs;
 * - "scalar": categorical columns one-hot as above; a numeric column two features, its bin's centre scaled
 *   to [−1, 1] by the schema's bounds and a missing indicator — 2 inputs instead of up to 17, so each of
 *   its dependence weights pools the evidence of all its bins (a linear trend in the value).
 */
export type InputKind = "onehot" | "scalar";

export interface InputEncoding {
  kind: InputKind;
  /** Total input features. */
  width: number;
  /** Per column: first input feature and number of features. */
  blocks: { offset: number; size: number }[];
  /** Per column: the features of each of its cells, row-major (block cells × block features). */
  features: Float32Array[];
  /** Set when every feature has had its mean under released marginals subtracted (centerInputs). */
  centered?: boolean;
}

/**
 * The same features minus their means under `probabilities` (per column, one per block cell, e.g. the
 * released marginals). A one-hot block's features sum to 1 in every row, so uncentred they carry a copy
 * of the output bias's gradient into every later column's weights, and that copy takes most of a
 * per-example clip norm; centred, the gradient keeps the dependence (covariance) part at a smaller norm.
 * The network is the same family (the means fold into the output biases, which sampling recalibrates).
 */
export function centerInputs(input: InputEncoding, probabilities: ArrayLike<number>[]): InputEncoding {
  const features = input.features.map((f, j) => {
    const k = input.blocks[j].size;
    const p = probabilities[j];
    const cells = f.length / k;
    const mean = new Float64Array(k);
    for (let c = 0; c < cells; c++) for (let d = 0; d < k; d++) mean[d] += (p[c] ?? 0) * f[c * k + d];
    return Float32Array.from(f, (v, i) => v - mean[i % k]);
  });
  return { ...input, features, centered: true };
}

export function inputEncodingFor(encoding: Encoding, kind: InputKind = "onehot"): InputEncoding {
  let offset = 0;
  const blocks: { offset: number; size: number }[] = [];
  const features = encoding.blocks.map((b) => {
    if (kind === "onehot" || !b.bins) {
      const f = new Float32Array(b.size * b.size);
      for (let c = 0; c < b.size; c++) f[c * b.size + c] = 1;
      blocks.push({ offset, size: b.size });
      offset += b.size;
      return f;
    }
    const { lo, hi } = b.bins;
    const { min, max } = b.column as { min: number; max: number };
    const span = max > min ? max - min : 1;
    const f = new Float32Array(b.size * 2);
    for (let c = 0; c < b.size - 1; c++) f[c * 2] = (2 * ((lo[c] + hi[c]) / 2 - min)) / span - 1;
    f[(b.size - 1) * 2 + 1] = 1;
    blocks.push({ offset, size: 2 });
    offset += 2;
    return f;
  });
  return { kind, width: offset, blocks, features };
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

/** Row-major input features (n × input width) of a table. */
export function encodeInputs(encoding: Encoding, input: InputEncoding, table: Table): Float32Array {
  const width = input.width;
  const out = new Float32Array(table.rowCount * width);
  encoding.blocks.forEach((block, j) => {
    const column = table.columns[j];
    const { offset, size } = input.blocks[j];
    const f = input.features[j];
    for (let i = 0; i < table.rowCount; i++) {
      const c = cellIndex(block, column[i]);
      for (let k = 0; k < size; k++) out[i * width + offset + k] = f[c * size + k];
    }
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

/**
 * The directWidth × width projection from direct outputs to logits: a block's logits are its cells'
 * features (as in `features`) times the block's direct outputs — for "scalar", a numeric column's value
 * logits are shifted in proportion to their bins' centres (one weight per input: a linear trend), and its
 * missing logit by its own weight.
 */
export function directProjection(encoding: Encoding, outputs: InputEncoding): Float32Array {
  const out = new Float32Array(outputs.width * encoding.width);
  encoding.blocks.forEach((b, j) => {
    const { offset, size } = outputs.blocks[j];
    const f = outputs.features[j];
    for (let c = 0; c < b.size; c++) for (let d = 0; d < size; d++) out[(offset + d) * encoding.width + b.offset + c] = f[c * size + d];
  });
  return out;
}
