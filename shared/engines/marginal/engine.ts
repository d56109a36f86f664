/**
 * The "marginal" engine: an MST-style federated synthesizer (McKenna, Miklau & Sheldon 2021), with
 * Private-PGM-style estimation over a tree.
 *
 *   round 1      every site releases its 1-way marginals and, for every pair of columns, a dependence
 *                score (scores.ts) — not the pair's table. The coordinator sums them; planRound of round 2
 *                picks the maximum spanning tree over the pooled noisy scores and each column's groups
 *                (round-plan.ts): post-processing of released sums, so free.
 *   rounds 2..R  every site releases the tree's 2-way tables over those groups; the rounds are averaged.
 * The coordinator fits consistent non-negative marginals (estimate.ts) and samples the tree's
 * maximum-entropy joint ancestrally (tree-sampler.ts). Budget split and calibration: budget.ts.
 *
 * A site's contribution depends only on its rows and public values (schema, config, round config); under
 * secure aggregation it is sent un-noised through the grid, which adds the noise.
 */
import type { Engine, JsonObject, StudyPrivacy, TaskContext } from "../engine.js";
import type { OutputRow, Schema, Table } from "../../schema/schema.js";
import type { Mechanism } from "../../privacy/mechanism.js";
import { gaussian, type Rng } from "../../random/rng.js";
import { columnProbabilities, type HistogramLayout } from "../independent/histogram.js";
import { coarseLayout } from "./discretise.js";
import { checkRound, contribution, roundLength, secureGrid } from "./site-update.js";
import { FINE_NOISE_MULTIPLIER, planPlain, planSecure, plainRoundMechanisms, secureRoundMechanism } from "./budget.js";
import { budgetShape, checkSchema, CONFIG_VERSION, invalid, MARGINAL_ROUNDS, readConfig, type MarginalConfig } from "./config.js";
import { checkPrivacy } from "../study-checks.js";
import { fitTree, tableOffsets, type TreeModel } from "./estimate.js";
import { planTree, readTreePlan, treePlanJson } from "./round-plan.js";
import { treeSampler, type TreeSampler } from "./tree-sampler.js";
import { decodeRounds, encodeRounds, type RoundRecord } from "./model-bytes.js";

export const MARGINAL_ENGINE_NAME = "marginal";

export interface MarginalModel {
  readonly schema: Schema;
  readonly layout: HistogramLayout;
  readonly config: MarginalConfig;
  readonly rounds: readonly RoundRecord[];
  readonly tree: TreeModel;
  readonly sampler: TreeSampler;
}

export function configureMarginal(schema: Schema, privacy: StudyPrivacy): MarginalConfig {
  checkSchema(schema);
  checkPrivacy(privacy, MARGINAL_ROUNDS);
  if (schema.columns.length === 1 && privacy.rounds > 1) {
    throw invalid("The marginal engine has no pairs to measure in a one-column schema", "Use one round, or the independent engine.");
  }
  const shape = budgetShape(schema, privacy.rounds);
  const budget = privacy.secureAggregation ? planSecure(shape, privacy) : planPlain(shape, privacy);
  return { version: CONFIG_VERSION, rounds: privacy.rounds, ...shape, ...budget };
}

function buildModel(schema: Schema, layout: HistogramLayout, config: MarginalConfig, rounds: RoundRecord[]): MarginalModel {
  const first = rounds[0];
  const later = rounds.slice(1);
  const marginalVariance = (first?.contributors ?? 1) * config.sigmaMarginals ** 2;
  // The histograms as the independent engine reads them (coarse and fine levels combined, Norm-Sub): the
  // coarse probabilities feed the tree fit as counts, the per-value ones split a bin on sampling.
  const hist = columnProbabilities(layout, first ? first.sum.subarray(0, layout.total) : new Float64Array(layout.total), {
    coarseVariance: marginalVariance, fineVariance: FINE_NOISE_MULTIPLIER ** 2 * marginalVariance,
  });
  const marginals = new Float64Array(layout.coarseTotal);
  hist.probabilities.forEach((p, j) => p.forEach((x, c) => (marginals[layout.offsets[j] + c] = x * hist.rows)));
  let tree: TreeModel;
  if (later.length === 0) {
    tree = fitTree({ layout, marginals, marginalVariance, edges: [], groups: [], tables: new Float64Array(0), tableVariance: 1 });
  } else {
    const plan = readTreePlan(later[0].roundConfig, schema, layout);
    const { total } = tableOffsets(plan.edges, plan.groups);
    const tables = new Float64Array(total);
    for (const r of later) {
      if (JSON.stringify(r.roundConfig) !== JSON.stringify(later[0].roundConfig)) throw invalid("The marginal engine's later rounds measured different trees");
      for (let i = 0; i < total; i++) tables[i] += r.sum[i] / later.length;
    }
    const tableVariance = (later.reduce((n, r) => n + r.contributors, 0) * config.sigmaPairs ** 2) / later.length ** 2;
    tree = fitTree({ layout, marginals, marginalVariance, edges: plan.edges, groups: plan.groups, tables, tableVariance });
  }
  return { schema, layout, config, rounds: Object.freeze(rounds), tree, sampler: treeSampler(schema.columns, tree, hist.values) };
}

export const marginalEngine: Engine<MarginalModel> = {
  name: MARGINAL_ENGINE_NAME,
  description: "Marginals over a tree: every column's DP histogram plus the 2-way tables of a maximum spanning tree chosen from DP dependence scores, fitted consistently and sampled ancestrally.",

  configure(schema: Schema, privacy: StudyPrivacy): JsonObject {
    return JSON.parse(JSON.stringify(configureMarginal(schema, privacy))) as JsonObject;
  },

  defaultRounds(): number {
    return 2;
  },

  init(schema: Schema, config: JsonObject): MarginalModel {
    checkSchema(schema);
    return buildModel(schema, coarseLayout(schema), readConfig(config, schema), []);
  },

  planRound(model: MarginalModel, ctx: Omit<TaskContext, "roundConfig">): JsonObject {
    if (ctx.round === 1) return {};
    const first = model.rounds[0];
    if (!first) throw invalid(`Round ${ctx.round} is planned from round 1's sums, and round 1 has not been aggregated`, "Aggregate round 1 first.");
    return treePlanJson(planTree(model.schema, model.layout, first.sum.subarray(0, model.layout.coarseTotal), first.sum.subarray(model.layout.total), Math.sqrt(first.contributors) * model.config.sigmaPairs));
  },

  needsModel(): boolean {
    return false;
  },

  charge(ctx: TaskContext): Mechanism[] {
    const config = readConfig(ctx.config, ctx.schema);
    checkRound(ctx, config);
    return config.secure ? [secureRoundMechanism(config, ctx.round)] : plainRoundMechanisms(config, ctx.round);
  },

  updateLength(ctx: TaskContext): number {
    return roundLength(ctx, readConfig(ctx.config, ctx.schema), coarseLayout(ctx.schema));
  },

  secure: {
    enabled: (config) => (config as { secure?: unknown })?.secure !== undefined,
    grid: secureGrid,
    contribution: (ctx, _model, table) => contribution(ctx, table),
  },

  localUpdate(ctx: TaskContext, _model: MarginalModel | null, table: Table, noise: Rng): Float64Array {
    const config = readConfig(ctx.config, ctx.schema);
    if (config.secure) throw invalid("This study sums updates under secure aggregation: a site sends its secure contribution, not a locally noised update");
    const update = contribution(ctx, table);
    if (ctx.round === 1) {
      for (let i = 0; i < config.coarseCells; i++) update[i] += config.sigmaMarginals * gaussian(noise);
      for (let i = config.coarseCells; i < config.cells; i++) update[i] += FINE_NOISE_MULTIPLIER * config.sigmaMarginals * gaussian(noise);
      for (let i = config.cells; i < update.length; i++) update[i] += config.sigmaScores * gaussian(noise);
    } else {
      for (let i = 0; i < update.length; i++) update[i] += config.sigmaPairs * gaussian(noise);
    }
    return update;
  },

  aggregate(model: MarginalModel, sum: Float64Array, contributors: number, ctx: TaskContext): MarginalModel {
    const length = roundLength(ctx, model.config, model.layout);
    if (!(sum instanceof Float64Array) || sum.length !== length) throw invalid(`The aggregated update has ${sum?.length} values, expected ${length}`);
    if (!Number.isSafeInteger(contributors) || contributors < 1) throw invalid(`The number of contributing sites must be a whole number >= 1, got ${String(contributors)}`);
    for (let i = 0; i < sum.length; i++) if (!Number.isFinite(sum[i])) throw invalid(`The aggregated update holds a non-finite value at index ${i}`);
    if (ctx.round !== model.rounds.length + 1) throw invalid(`Round ${ctx.round} arrived after ${model.rounds.length} aggregated round(s)`);
    const record: RoundRecord = { roundConfig: JSON.parse(JSON.stringify(ctx.roundConfig ?? {})), contributors, sum: Float64Array.from(sum) };
    return buildModel(model.schema, model.layout, model.config, [...model.rounds, record]);
  },

  sample(model: MarginalModel, n: number, rng: Rng): Iterable<OutputRow> {
    if (!Number.isSafeInteger(n) || n < 0) throw invalid(`The number of rows to sample must be a whole number >= 0, got ${String(n)}`);
    return model.sampler.sample(n, rng);
  },

  serialize(model: MarginalModel): Uint8Array {
    return encodeRounds(model.schema, model.layout, model.rounds);
  },

  deserialize(bytes: Uint8Array, schema: Schema, config: JsonObject): MarginalModel {
    checkSchema(schema);
    const layout = coarseLayout(schema);
    const rounds = decodeRounds(bytes, schema, layout);
    const cfg = readConfig(config, schema);
    if (rounds.length > cfg.rounds) throw invalid(`Cannot read the marginal engine's model: it has ${rounds.length} rounds, the study ${cfg.rounds}`);
    rounds.forEach((r, i) => {
      const ctx: TaskContext = { schema, privacy: { epsilon: 1, delta: 0.5, rounds: cfg.rounds }, config, round: i + 1, roundConfig: r.roundConfig };
      const want = roundLength(ctx, cfg, layout);
      if (r.sum.length !== want) throw invalid(`Cannot read the marginal engine's model: round ${i + 1} has ${r.sum.length} values, expected ${want}`);
    });
    return buildModel(schema, layout, cfg, rounds);
  },
};
