/**
 * The "marginal" engine: AIM-style federated synthesis (McKenna, Mullins, Sheldon & Miklau 2022) with
 * Private-PGM estimation over a junction tree (McKenna, Sheldon & Miklau 2019).
 *
 *   round 1       every site releases its 1-way marginals (coarse cells and fine per-value histograms);
 *   all pairs     every site releases one ±1 contrast per pair of columns (split at each column's pooled
 *                 median from round 1: the pair's 2 × 2 interaction), at low precision — round 2 of a
 *                 study of ≥ 2 rounds, round 1 itself in a one-round study. With an outcome declared in
 *                 the schema, the outcome's pairs are measured more precisely than the others (and over
 *                 each column's present values: config.ts pairWeights, select.ts outcomeSigns);
 *   later rounds  every site releases the 2-way tables — and 1-way marginals, measured again — that the
 *                 coordinator selected from the pooled sums so far: where the model of the precise
 *                 measurements misses the all-pairs contrasts most relative to their noise, or where a
 *                 column's marginal is still the larger error (select.ts), with weights that split the
 *                 round's budget; with settings.triples also 3-way tables over coarser groups, where
 *                 one table's margins are worth more than the pair tables they displace (select-triples.ts).
 * The coordinator fits a graphical model to every release (estimate.ts, pgm.ts): consistent non-negative
 * clique marginals over a junction tree of the model's pairs, maximum-entropy where nothing was measured,
 * and samples it ancestrally (model-sampler.ts); an exported model file stores the fit with the released
 * sums (model-bytes.ts, fitted-bytes.ts), so that sampling a model file fits nothing. Budget:
 * budget.ts, calibrated to exactly ε in plaintext (Gaussian mechanisms) and under secure aggregation (one
 * distributed discrete Gaussian per round); every selection is post-processing of released (under secure
 * aggregation: pooled) sums.
 *
 * A site's contribution depends only on its rows and public values (schema, config, round config); under
 * secure aggregation it is sent un-noised through the grid, which adds the noise.
 */
import type { BudgetSplit, Engine, JsonObject, StudyPrivacy, TaskContext } from "../engine.js";
import type { OutputRow, Schema, Table } from "../../schema/schema.js";
import type { Mechanism } from "../../privacy/mechanism.js";
import { gaussian, type Rng } from "../../random/rng.js";
import type { HistogramLayout } from "../independent/histogram.js";
import { coarseLayout } from "./discretise.js";
import { checkRound, contribution, roundLayout, secureGrid, siteNoise } from "./site-update.js";
import { planPlain, planSecure, roundMechanisms } from "./budget.js";
import { budgetShape, checkSchema, checkSettings, CONFIG_VERSION, invalid, MARGINAL_DEFAULTS, MARGINAL_ROUNDS, readConfig, roundParts, type MarginalConfig, type MarginalSettings } from "./config.js";
import { checkPrivacy } from "../study-checks.js";
import { collect, fitCollected, type Collected, type JointModel } from "./estimate.js";
import { readRoundBudget, roundPlanJson } from "./round-plan.js";
import { pairsPlan, selectedPlan } from "./select.js";
import { annealedBudget } from "./anneal.js";
import { modelSampler, type ModelSampler } from "./model-sampler.js";
import { decodeModel, encodeModel, releasedModel, unreadable, type RoundRecord } from "./model-bytes.js";
import { storedFitVerdict } from "./fit-check.js";
import { decodeFit, encodeFit } from "./fitted-bytes.js";

export const MARGINAL_ENGINE_NAME = "marginal";
/** Rounds a study gets when it does not say: marginals, all pairs, selected tables. */
export const MARGINAL_DEFAULT_ROUNDS = 3;

export interface MarginalModel {
  readonly schema: Schema;
  readonly layout: HistogramLayout;
  readonly config: MarginalConfig;
  readonly rounds: readonly RoundRecord[];
  readonly collected: Collected;
  /** The fitted model and its sampler (read from the model file when it stores one, else fitted when first needed). */
  readonly fitted: JointModel;
  /** Whether `fitted` was read from the model file (fit-check.ts compares it with a refit). */
  readonly storedFit: boolean;
  readonly sampler: ModelSampler;
}

export function configureMarginal(schema: Schema, privacy: StudyPrivacy, overrides: Partial<MarginalSettings> = {}): MarginalConfig {
  checkSchema(schema);
  checkPrivacy(privacy, MARGINAL_ROUNDS);
  if (schema.columns.length === 1 && privacy.rounds > 1) {
    throw invalid("The marginal engine has no pairs to measure in a one-column schema", "Use one round, or the independent engine.");
  }
  const settings = checkSettings({ ...MARGINAL_DEFAULTS, ...(privacy.budgetSplit === "annealed" ? { annealing: "aim" } : {}), ...overrides });
  const shape = budgetShape(schema, privacy.rounds, settings);
  const budget = privacy.secureAggregation ? planSecure(shape, settings, privacy) : planPlain(shape, settings, privacy);
  return { version: CONFIG_VERSION, rounds: privacy.rounds, settings, ...shape, ...budget };
}

/** The model of these rounds; `fitSection`: a model file's stored fit of them (fitted-bytes.ts), checked here, on reading. */
function buildModel(schema: Schema, layout: HistogramLayout, config: MarginalConfig, rounds: RoundRecord[], fitSection?: Uint8Array): MarginalModel {
  const collected = collect(schema, layout, config, rounds);
  let fitted: JointModel | undefined = fitSection && decodeFit(fitSection, layout, collected, unreadable);
  let sampler: ModelSampler | undefined;
  const fit = () => (fitted ??= fitCollected(collected));
  return {
    schema, layout, config, rounds: Object.freeze(rounds), collected, storedFit: fitted !== undefined,
    get fitted() {
      return fit();
    },
    get sampler() {
      return (sampler ??= modelSampler(schema.columns, fit()));
    },
  };
}

export const marginalEngine: Engine<MarginalModel> = {
  name: MARGINAL_ENGINE_NAME,
  description: "AIM-style marginals: every column's DP histogram, one DP contrast per column pair, then the tables (or marginals) the model misses most measured precisely; a junction-tree graphical model fitted to all of them and sampled ancestrally.",

  configure(schema: Schema, privacy: StudyPrivacy): JsonObject {
    return JSON.parse(JSON.stringify(configureMarginal(schema, privacy))) as JsonObject;
  },

  budgetSplit(config: JsonObject): BudgetSplit {
    // Read, not checked: a study's status must show even when its config is one this build cannot run.
    const settings = (config as { settings?: { annealing?: unknown } } | null)?.settings;
    return settings?.annealing === "aim" ? "annealed" : "equal";
  },

  defaultRounds(): number {
    return MARGINAL_DEFAULT_ROUNDS;
  },

  init(schema: Schema, config: JsonObject): MarginalModel {
    checkSchema(schema);
    return buildModel(schema, coarseLayout(schema), readConfig(config, schema), []);
  },

  planRound(model: MarginalModel, ctx: Omit<TaskContext, "roundConfig">): JsonObject {
    const config = model.config;
    checkRound(ctx, config);
    if (ctx.round !== model.rounds.length + 1) throw invalid(`Round ${ctx.round} is planned after ${model.rounds.length} aggregated round(s)`, "Aggregate the earlier rounds first.");
    const parts = roundParts(config, ctx.round);
    if (parts.marginals && !parts.pairs) return {};
    if (parts.pairs) return roundPlanJson(pairsPlan(model.schema, model.layout, config, ctx.round === 1 ? undefined : model.collected.p));
    const last = model.rounds[model.rounds.length - 1];
    const budget = annealedBudget(model.schema, model.layout, config, ctx.privacy, model.rounds, ctx.round, model.collected);
    return roundPlanJson(selectedPlan(model.schema, model.layout, config, model.rounds, last.contributors, model.collected, budget));
  },

  needsModel(): boolean {
    return false;
  },

  charge(ctx: TaskContext): Mechanism[] {
    const config = readConfig(ctx.config, ctx.schema);
    checkRound(ctx, config);
    // A selected round's own budget (anneal.ts) is the one part of its round config that the charge depends on.
    return roundMechanisms(config, ctx.round, { budget: readRoundBudget(ctx.roundConfig, config, ctx.round) });
  },

  updateLength(ctx: TaskContext): number {
    return roundLayout(ctx, readConfig(ctx.config, ctx.schema), coarseLayout(ctx.schema)).length;
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
    const sd = siteNoise(config, roundLayout(ctx, config, coarseLayout(ctx.schema)), ctx.round);
    for (let i = 0; i < update.length; i++) update[i] += sd[i] * gaussian(noise);
    return update;
  },

  aggregate(model: MarginalModel, sum: Float64Array, contributors: number, ctx: TaskContext): MarginalModel {
    const length = roundLayout(ctx, model.config, model.layout).length;
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
    // Never fits: the coordinator serializes every round's model on its event loop, and a fit takes seconds
    // (long enough for a replica to miss its lease). A fit read from a file is kept, so that bytes read and
    // written again are the same bytes.
    return encodeModel(model.schema, model.layout, model.rounds, model.storedFit ? encodeFit(model.fitted) : undefined);
  },

  serializeForSampling(model: MarginalModel): Uint8Array {
    // With the fit, fitted here if it is not yet, so that sampling the file fits nothing. The fit is
    // post-processing of the released sums (no privacy cost) and a deterministic function of them
    // (fit-check.ts), so the sums stay the whole auditable record (model-bytes.ts releasedModel).
    return encodeModel(model.schema, model.layout, model.rounds, encodeFit(model.fitted));
  },

  releasedBytes(bytes: Uint8Array, schema: Schema): Uint8Array {
    return releasedModel(bytes, schema, coarseLayout(schema));
  },

  checkSamplingData: storedFitVerdict,

  deserialize(bytes: Uint8Array, schema: Schema, config: JsonObject): MarginalModel {
    checkSchema(schema);
    const layout = coarseLayout(schema);
    const { rounds, fit } = decodeModel(bytes, schema, layout);
    const cfg = readConfig(config, schema);
    if (rounds.length > cfg.rounds) throw unreadable(`it has ${rounds.length} rounds, the study ${cfg.rounds}`);
    rounds.forEach((r, i) => {
      const want = roundLayout({ schema, round: i + 1, roundConfig: r.roundConfig }, cfg, layout).length;
      if (r.sum.length !== want) throw unreadable(`round ${i + 1} has ${r.sum.length} values, expected ${want}`);
    });
    return buildModel(schema, layout, cfg, rounds, fit);
  },
};
