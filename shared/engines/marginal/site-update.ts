/**
 * What a site computes in a round of the marginal engine, from its rows and public values only (schema,
 * config, round config), and the round's layout and secure-aggregation grid, which the coordinator needs
 * too. A round's vector is [1-way cells (round 1)] [all-pairs tables] [selected tables], each part present
 * when the round carries it (config.ts); under secure aggregation the table parts are zero-padded to the
 * study's public bounds, so that every round's length is fixed when the study is configured.
 */
import type { SecureGrid, TaskContext } from "../engine.js";
import { outcomeIndex, type Table } from "../../schema/schema.js";
import { countTable, type HistogramLayout } from "../independent/histogram.js";
import { cellCodes, coarseLayout, groupCount, type Grouping } from "./discretise.js";
import { FINE_NOISE_MULTIPLIER, gridWeights, roundGrid, selectedFraction } from "./budget.js";
import { invalid, pairWeights, readConfig, roundParts, type MarginalConfig } from "./config.js";
import { readRoundPlan, type RoundPlan } from "./round-plan.js";

export function checkRound(ctx: Pick<TaskContext, "round">, config: MarginalConfig): void {
  if (!Number.isSafeInteger(ctx.round) || ctx.round < 1 || ctx.round > config.rounds) {
    throw invalid(`Round ${String(ctx.round)} is outside the study's ${config.rounds} round(s)`, "The study's budget covers only its configured rounds.");
  }
}

/** Tables of a round part: their columns, each table's offset within the part, and the part's cells. */
export interface TablePart {
  tables: [number, number][];
  offsets: number[];
  groups: Grouping[];
  /** Columns whose coarse 1-way cells follow the tables, and their offsets. */
  columns: number[];
  columnOffsets: number[];
  /** 3-way tables (over tripleGroups, a's groups slowest) after the columns, and their offsets. */
  triples: [number, number, number][];
  tripleGroups: Grouping[];
  tripleOffsets: number[];
  cells: number;
}

/** Cells of a 3-way table over its columns' groups. */
export function tripleCells(t: readonly number[], groups: Grouping[]): number {
  return groupCount(groups[t[0]]) * groupCount(groups[t[1]]) * groupCount(groups[t[2]]);
}

export function tablePart(
  tables: [number, number][], groups: Grouping[], columns: number[] = [], sizes: number[] = [], triples: [number, number, number][] = [], tripleGroups: Grouping[] = [],
): TablePart {
  const offsets: number[] = [];
  let cells = 0;
  for (const [a, b] of tables) {
    offsets.push(cells);
    cells += groupCount(groups[a]) * groupCount(groups[b]);
  }
  const columnOffsets: number[] = [];
  for (const j of columns) {
    columnOffsets.push(cells);
    cells += sizes[j];
  }
  const tripleOffsets: number[] = [];
  for (const t of triples) {
    tripleOffsets.push(cells);
    cells += tripleCells(t, tripleGroups);
  }
  return { tables, offsets, groups, columns, columnOffsets, triples, tripleGroups, tripleOffsets, cells };
}

export interface RoundLayout {
  plan: RoundPlan;
  /** Offsets of the parts in the round's vector (−1 when absent) and the vector's length. */
  marginals: number;
  pairs: number;
  selected: number;
  pairsPart?: TablePart;
  selectedPart?: TablePart;
  /** The all-pairs round's weight of each pair (pairList order; config.ts pairWeights), when the round has that part. */
  pairsWeights?: number[];
  length: number;
}

export function roundLayout(ctx: Pick<TaskContext, "schema" | "round" | "roundConfig">, config: MarginalConfig, layout: HistogramLayout): RoundLayout {
  checkRound(ctx, config);
  const plan = readRoundPlan(ctx.roundConfig, ctx.schema, layout, config, ctx.round);
  const parts = roundParts(config, ctx.round);
  const secure = config.secure !== undefined;
  let length = 0;
  const out: RoundLayout = { plan, marginals: -1, pairs: -1, selected: -1, length: 0 };
  if (parts.marginals) {
    out.marginals = 0;
    length += config.cells;
  }
  if (parts.pairs) out.pairsWeights = pairWeights(ctx.schema, config.settings);
  if (parts.pairs && plan.pairsSigns) {
    out.pairs = length;
    length += secure ? config.pairsCells : plan.pairs!.length;
  } else if (parts.pairs) {
    out.pairsPart = tablePart(plan.pairs!, plan.pairsGroups!);
    if (out.pairsPart.cells > config.pairsCells) throw invalid(`The round's pair tables have ${out.pairsPart.cells} cells, more than the study's bound ${config.pairsCells}`);
    out.pairs = length;
    length += secure ? config.pairsCells : out.pairsPart.cells;
  }
  if (parts.selected) {
    out.selectedPart = tablePart(plan.selected!, plan.selectedGroups!, plan.columns, layout.sizes, plan.triples, plan.tripleGroups);
    if (out.selectedPart.cells > config.selectedCells) throw invalid(`The round's tables have ${out.selectedPart.cells} cells, more than the study's bound ${config.selectedCells}`);
    out.selected = length;
    length += secure ? config.selectedCells : out.selectedPart.cells;
  }
  out.length = length;
  return out;
}

function countPart(out: Float64Array, offset: number, part: TablePart, codes: Int32Array[]): void {
  part.tables.forEach(([a, b], t) => {
    const ga = part.groups[a];
    const gb = part.groups[b];
    const width = groupCount(gb);
    const x = codes[a];
    const y = codes[b];
    const base = offset + part.offsets[t];
    for (let i = 0; i < x.length; i++) out[base + ga[x[i]] * width + gb[y[i]]] += 1;
  });
  part.columns.forEach((j, t) => {
    const x = codes[j];
    const base = offset + part.columnOffsets[t];
    for (let i = 0; i < x.length; i++) out[base + x[i]] += 1;
  });
  part.triples.forEach(([a, b, c], t) => {
    const [ga, gb, gc] = [part.tripleGroups[a], part.tripleGroups[b], part.tripleGroups[c]];
    const wb = groupCount(gb);
    const wc = groupCount(gc);
    const [x, y, z] = [codes[a], codes[b], codes[c]];
    const base = offset + part.tripleOffsets[t];
    for (let i = 0; i < x.length; i++) out[base + (ga[x[i]] * wb + gb[y[i]]) * wc + gc[z[i]]] += 1;
  });
}

/** A site's un-noised contribution: counts only (each row adds 1 to one cell of every histogram and table). */
export function contribution(ctx: TaskContext, table: Table): Float64Array {
  const config = readConfig(ctx.config, ctx.schema);
  const layout = coarseLayout(ctx.schema);
  const rl = roundLayout(ctx, config, layout);
  const out = new Float64Array(rl.length);
  const codes = cellCodes(ctx.schema, layout, table);
  if (rl.marginals >= 0) out.set(countTable(ctx.schema, layout, table), rl.marginals);
  if (rl.pairsPart) countPart(out, rl.pairs, rl.pairsPart, codes);
  if (rl.plan.pairsSigns) {
    // One contrast per pair: Σ_rows sign_a(x_a) · sign_b(x_b), each row moving it by at most 1 (signs are
    // ±1, or 0 in outcomeSigns; a pair with the declared outcome takes both columns' outcomeSigns).
    const sign = (signs: number[][]) => codes.map((col, j) => Int8Array.from(col, (c) => signs[j][c]));
    const signed = sign(rl.plan.pairsSigns);
    const outcome = outcomeIndex(ctx.schema);
    const outcomeSigned = rl.plan.outcomeSigns ? sign(rl.plan.outcomeSigns) : signed;
    rl.plan.pairs!.forEach(([a, b], t) => {
      const use = a === outcome || b === outcome ? outcomeSigned : signed;
      const x = use[a];
      const y = use[b];
      let s = 0;
      for (let i = 0; i < x.length; i++) s += x[i] * y[i];
      out[rl.pairs + t] = s;
    });
  }
  if (rl.selectedPart) countPart(out, rl.selected, rl.selectedPart, codes);
  return out;
}

/**
 * Each coordinate's noise standard deviation relative to the round's base scale: plaintext noise is
 * base · this, secure-grid weights are 1/this (times the grid's common scale). 1-way coarse cells 1/w_m,
 * fine cells α/w_m, pair p's all-pairs cells 1/(w_p·u_p) (config.ts pairWeights), a selected table (pair,
 * column or 3-way) of weight w_t 1/(w_s·w_t); padding like its part.
 */
export function coordinateWeights(config: MarginalConfig, rl: RoundLayout): Float64Array {
  const w = gridWeights(config, config.settings, selectedFraction(config, rl.plan));
  const weights = new Float64Array(rl.length);
  if (rl.marginals >= 0) {
    weights.fill(w.marginals, rl.marginals, rl.marginals + config.coarseCells);
    weights.fill(w.marginals / FINE_NOISE_MULTIPLIER, rl.marginals + config.coarseCells, rl.marginals + config.cells);
  }
  if (rl.pairs >= 0) {
    weights.fill(w.pairs, rl.pairs, rl.selected >= 0 ? rl.selected : rl.length);
    // Each pair's own weight u_p ≤ 1 (config.ts pairWeights): on its contrast, or on every cell of its table.
    const u = rl.pairsWeights!;
    if (rl.plan.pairsSigns) u.forEach((x, t) => (weights[rl.pairs + t] = w.pairs * x));
    else if (rl.pairsPart) {
      const part = rl.pairsPart;
      part.tables.forEach(([a, b], t) => {
        const start = rl.pairs + part.offsets[t];
        weights.fill(w.pairs * u[t], start, start + groupCount(part.groups[a]) * groupCount(part.groups[b]));
      });
    }
  }
  if (rl.selectedPart) {
    const part = rl.selectedPart;
    const weightsOf = rl.plan.weights!;
    weights.fill(w.selected, rl.selected, rl.length);
    part.tables.forEach(([a, b], t) => {
      const n = groupCount(part.groups[a]) * groupCount(part.groups[b]);
      weights.fill(w.selected * weightsOf[t], rl.selected + part.offsets[t], rl.selected + part.offsets[t] + n);
    });
    part.columns.forEach((_, t) => {
      const end = t + 1 < part.columns.length ? part.columnOffsets[t + 1] : part.triples.length > 0 ? part.tripleOffsets[0] : part.cells;
      weights.fill(w.selected * rl.plan.columnWeights![t], rl.selected + part.columnOffsets[t], rl.selected + end);
    });
    part.triples.forEach((triple, t) => {
      const start = rl.selected + part.tripleOffsets[t];
      weights.fill(w.selected * rl.plan.tripleWeights![t], start, start + tripleCells(triple, part.tripleGroups));
    });
  }
  return weights;
}

/**
 * Each site's noise standard deviation in counts on every coordinate of the round (plaintext: what the
 * site adds; secure: its grid share, σ·γ / weight).
 */
export function siteNoise(config: MarginalConfig, rl: RoundLayout, round: number): Float64Array {
  const weights = coordinateWeights(config, rl);
  const grid = config.secure && roundGrid(config, round, rl.plan);
  const scale = grid ? grid.gridSigma * grid.gamma : plainScale(config);
  return Float64Array.from(weights, (w) => scale / w);
}

/** The plaintext noise in weighted units: the same for every release by construction (σ_m · w_m). */
function plainScale(config: MarginalConfig): number {
  return config.sigmaMarginals * gridWeights(config, config.settings).marginals;
}

export function secureGrid(ctx: TaskContext): SecureGrid {
  const config = readConfig(ctx.config, ctx.schema);
  const secure = config.secure;
  if (!secure) throw invalid("This study does not use secure aggregation", "Configure the engine with privacy.secureAggregation.");
  const rl = roundLayout(ctx, config, coarseLayout(ctx.schema));
  const g = roundGrid(config, ctx.round, rl.plan);
  return { gamma: g.gamma, sigma: g.gridSigma, weights: coordinateWeights(config, rl), coordinateBound: g.coordinateBound };
}
