/**
 * What a site computes in a round of the marginal engine, from its rows and public values only (schema,
 * config, round config): round 1's histograms (coarse and fine cells, countTable) and pair scores, later
 * rounds' tree tables; and the round's length and secure-aggregation grid, which the coordinator needs too.
 */
import type { SecureGrid, TaskContext } from "../engine.js";
import type { Table } from "../../schema/schema.js";
import { countTable, type HistogramLayout } from "../independent/histogram.js";
import { cellCodes, coarseLayout, groupCount, schemaGrouping } from "./discretise.js";
import { siteScores } from "./scores.js";
import { FINE_NOISE_MULTIPLIER, gridWeights } from "./budget.js";
import { invalid, readConfig, type MarginalConfig } from "./config.js";
import { tableOffsets } from "./estimate.js";
import { readTreePlan } from "./round-plan.js";

export function checkRound(ctx: TaskContext, config: MarginalConfig): void {
  if (!Number.isSafeInteger(ctx.round) || ctx.round < 1 || ctx.round > config.rounds) {
    throw invalid(`Round ${String(ctx.round)} is outside the study's ${config.rounds} round(s)`, "The study's budget covers only its configured rounds.");
  }
}

/** Round 1: cells then scores. Later rounds: the tree's tables (zero-padded to the grid's length under secure aggregation). */
export function roundLength(ctx: TaskContext, config: MarginalConfig, layout: HistogramLayout): number {
  checkRound(ctx, config);
  if (ctx.round === 1) return config.cells + config.pairs;
  const plan = readTreePlan(ctx.roundConfig, ctx.schema, layout);
  const { total } = tableOffsets(plan.edges, plan.groups);
  if (total > config.tableCells) throw invalid(`The round's tables have ${total} cells, more than the study's bound ${config.tableCells}`);
  return config.secure ? config.tableCells : total;
}

export function contribution(ctx: TaskContext, table: Table): Float64Array {
  const config = readConfig(ctx.config, ctx.schema);
  const layout = coarseLayout(ctx.schema);
  const out = new Float64Array(roundLength(ctx, config, layout));
  const codes = cellCodes(ctx.schema, layout, table);
  if (ctx.round === 1) {
    out.set(countTable(ctx.schema, layout, table), 0);
    if (config.pairs > 0) out.set(siteScores(codes, ctx.schema.columns.map((c, j) => schemaGrouping(c, layout.sizes[j]))), config.cells);
    return out;
  }
  const { edges, groups } = readTreePlan(ctx.roundConfig, ctx.schema, layout);
  const { offsets } = tableOffsets(edges, groups);
  edges.forEach(([a, b], e) => {
    const ga = groups[a];
    const gb = groups[b];
    const width = groupCount(gb);
    const x = codes[a];
    const y = codes[b];
    for (let i = 0; i < x.length; i++) out[offsets[e] + ga[x[i]] * width + gb[y[i]]] += 1;
  });
  return out;
}

export function secureGrid(ctx: TaskContext): SecureGrid {
  const config = readConfig(ctx.config, ctx.schema);
  const secure = config.secure;
  if (!secure) throw invalid("This study does not use secure aggregation", "Configure the engine with privacy.secureAggregation.");
  const length = roundLength(ctx, config, coarseLayout(ctx.schema));
  const w = gridWeights(config, config.rounds);
  const weights = new Float64Array(length);
  if (ctx.round === 1) weights.fill(w.marginals, 0, config.coarseCells).fill(w.marginals / FINE_NOISE_MULTIPLIER, config.coarseCells, config.cells).fill(w.scores, config.cells);
  else weights.fill(w.pairs);
  const g = ctx.round === 1 ? secure.first : secure.later;
  return { gamma: g.gamma, sigma: g.gridSigma, weights, coordinateBound: g.coordinateBound };
}
