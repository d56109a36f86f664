/**
 * The "independent" engine: the baseline synthesizer. It learns one DP histogram per column (over the
 * schema's categories or numeric bins, plus a "missing" cell) and samples every column independently.
 *
 * Two levels. A numeric column with a value grid (integer values, or multiples of its "step") of more
 * than 32 and at most 2000 values is measured twice: the coarse histogram over its bins (blocks of whole
 * grid values) as every column, and a fine histogram with one cell per grid value (no missing cell), so
 * that point masses (a value recorded as exactly 0, blood pressures rounded to 120/130/140) survive.
 *
 * Privacy. A site's update is the concatenation of its columns' coarse histograms plus N(0, σ²) on every
 * cell, then the fine histograms plus N(0, (α·σ)²) on every cell (α = `fineNoiseMultiplier`). Adding or
 * removing one record changes exactly one coarse cell per column by 1 (L2 sensitivity sqrt(columns)) and
 * at most one fine cell per fine column (L2 sensitivity sqrt(fine columns)): each round every site applies
 * these two Gaussian mechanisms; σ is calibrated so that `rounds` times both cost the study's (ε, δ)
 * (exact GDP composition, see privacy/calibrate.ts).
 *
 * Estimation. Each round re-measures the same histograms, so the pooled estimate is the average of the
 * rounds' noisy sums. Post-processing (free under DP; see columnProbabilities in histogram.ts): the pooled
 * row count N is the inverse-variance weighted mean of the per-column totals; a two-level column's bin
 * counts are the inverse-variance weighted means of the coarse count and the sum of the bin's fine counts;
 * each column becomes a non-negative histogram summing to N by Norm-Sub; within a bin, the fine counts are
 * shrunk toward a uniform split (James–Stein), so that only clear spikes stand out of the noise.
 */
import type { Engine, JsonObject, SecureGrid, StudyPrivacy, TaskContext } from "../engine.js";
import type { Schema, Table, OutputRow } from "../../schema/schema.js";
import type { DistributedDiscreteGaussianMechanism, GaussianMechanism, Mechanism } from "../../privacy/mechanism.js";
import { planDistributedNoise } from "../../privacy/distributed-noise.js";
import { gaussian, type Rng } from "../../random/rng.js";
import { calibrateSigma } from "../../privacy/calibrate.js";
import { FedsynthError } from "../../errors.js";
import { columnProbabilities, countTable, histogramLayout, type EstimateNoise, type HistogramLayout } from "./histogram.js";
import { cellSampler, type CellSampler } from "./sampler.js";
import { checkPrivacy, checkSchema } from "../study-checks.js";

const INDEPENDENT_ROUNDS = { max: 100_000, hint: "One round is enough for this engine." };

export const INDEPENDENT_ENGINE_NAME = "independent";

/** The fine level's noise is this multiple of the coarse level's σ (α). */
export const FINE_NOISE_MULTIPLIER = 2;

export interface IndependentConfig {
  /** Standard deviation of the noise on every coarse cell of every site's update. */
  sigma: number;
  /** L2 sensitivity of the coarse part of one site's update: sqrt(columns). */
  l2Sensitivity: number;
  columns: number;
  /** Length of an update (total cells: coarse ones, missing cells included, then fine ones). */
  cells: number;
  /** Columns with a fine level (one cell per grid value). */
  fineColumns: number;
  /** L2 sensitivity of the fine part of one site's update: sqrt(fineColumns). */
  fineL2Sensitivity: number;
  /** α: the noise on every fine cell has standard deviation α·σ. */
  fineNoiseMultiplier: number;
  /** Under secure aggregation: the grid, and σ above is each site's share in counts (σ_grid · γ). */
  secure?: IndependentSecureConfig;
}

/**
 * The study's secure-aggregation grid. Fine cells are weighted 1/α so that one noise share σ_grid on
 * every coordinate means α times the noise on fine counts, as in the plaintext release.
 */
export interface IndependentSecureConfig {
  threshold: number;
  sites: number;
  /** Public bound on a site's row count: every cell is clamped to it, which bounds the sum on the ring. */
  maxSiteRows: number;
  gamma: number;
  gridSigma: number;
  /** The charged sensitivity in grid units (c/γ + √d with c = √(columns + fineColumns/α²)). */
  gridL2Sensitivity: number;
}

/** Sites with more rows than this have their counts clamped (and told so): hospital cohorts are far smaller. */
export const DEFAULT_MAX_SITE_ROWS = 100_000;

export interface IndependentModel {
  readonly schema: Schema;
  readonly layout: HistogramLayout;
  /** The noisy sums released in each aggregated round, as received: the auditable released statistics. */
  readonly roundSums: readonly Float64Array[];
  /** How many sites contributed to each round's sum. */
  readonly roundContributors: readonly number[];
  /** Post-processed estimate of the pooled row count. */
  readonly estimatedRows: number;
  /** Post-processed probabilities of each column's coarse cells (last cell = missing); each sums to 1. */
  readonly probabilities: readonly Float64Array[];
  /** For each two-level column: post-processed probabilities of its grid values, then missing (see histogram.ts). */
  readonly values: readonly (Float64Array | undefined)[];
  /** The study's noise parameters (from the config). */
  readonly config: IndependentConfig;
  /** Per-column samplers, precomputed from `probabilities` and `values`. */
  readonly samplers: readonly CellSampler[];
}

function invalid(message: string, hint?: string): FedsynthError {
  return new FedsynthError("invalid-argument", message, { hint });
}


function mechanism(columns: number, sigma: number): GaussianMechanism {
  return { kind: "gaussian", l2Sensitivity: Math.sqrt(columns), sigma, repetitions: 1 };
}

/** One site's mechanisms in one round: the coarse release, and the fine release when there is one. */
function roundMechanisms(columns: number, fineColumns: number, sigma: number, alpha: number): GaussianMechanism[] {
  return fineColumns > 0 ? [mechanism(columns, sigma), mechanism(fineColumns, alpha * sigma)] : [mechanism(columns, sigma)];
}

/**
 * Reads and checks the engine's config against the schema. Configs written before the fine level (without
 * its three keys) are accepted for schemas that have no fine levels: their charge is unchanged.
 */
function readConfig(config: JsonObject, schema: Schema): IndependentConfig {
  const layout = histogramLayout(schema);
  const sigma = config?.sigma;
  const l2Sensitivity = config?.l2Sensitivity;
  if (typeof sigma !== "number" || !Number.isFinite(sigma) || sigma <= 0) {
    throw invalid(`The independent engine's config has no valid sigma (${JSON.stringify(sigma)})`, "Use the config returned by configure().");
  }
  const fineColumns = layout.fine.length;
  const legacy = fineColumns === 0 && config.fineNoiseMultiplier === undefined && config.fineColumns === undefined && config.fineL2Sensitivity === undefined;
  const alpha = legacy ? FINE_NOISE_MULTIPLIER : config.fineNoiseMultiplier;
  if (typeof alpha !== "number" || !Number.isFinite(alpha) || alpha <= 0) {
    throw invalid(`The independent engine's config has no valid fineNoiseMultiplier (${JSON.stringify(alpha)})`, "Use the config returned by configure().");
  }
  if (
    l2Sensitivity !== Math.sqrt(layout.columns) ||
    config.columns !== layout.columns ||
    config.cells !== layout.total ||
    (!legacy && (config.fineColumns !== fineColumns || config.fineL2Sensitivity !== Math.sqrt(fineColumns)))
  ) {
    throw invalid("The independent engine's config does not match the schema", "Configure the engine with the study's schema.");
  }
  const base = { sigma, l2Sensitivity, columns: layout.columns, cells: layout.total, fineColumns, fineL2Sensitivity: Math.sqrt(fineColumns), fineNoiseMultiplier: alpha };
  return config.secure === undefined ? base : { ...base, secure: readSecureConfig(config.secure) };
}

function readSecureConfig(raw: unknown): IndependentSecureConfig {
  const c = raw as Partial<IndependentSecureConfig> | null;
  const fields = ["threshold", "sites", "maxSiteRows", "gamma", "gridSigma", "gridL2Sensitivity"] as const;
  for (const f of fields) {
    const v = c?.[f];
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
      throw invalid(`The independent engine's secure-aggregation config has no valid ${f} (${JSON.stringify(v)})`, "Use the config returned by configure().");
    }
  }
  return c as IndependentSecureConfig;
}

/** Weighted sensitivity of one site's histograms: one coarse cell per column, one fine cell (weight 1/α) per fine column. */
function weightedSensitivity(columns: number, fineColumns: number, alpha: number): number {
  return Math.sqrt(columns + fineColumns / (alpha * alpha));
}

function secureMechanism(cells: number, secure: IndependentSecureConfig): DistributedDiscreteGaussianMechanism {
  return { kind: "distributed-discrete-gaussian", l2Sensitivity: secure.gridL2Sensitivity, dimension: cells, sigma: secure.gridSigma, sites: secure.threshold, repetitions: 1 };
}

/**
 * The engine's config for a study: σ calibrated so that `rounds` rounds of the coarse and fine releases
 * cost (ε, δ). `fineNoiseMultiplier` (α) defaults to FINE_NOISE_MULTIPLIER, which `configure` uses.
 */
export function configureIndependent(schema: Schema, privacy: StudyPrivacy, fineNoiseMultiplier = FINE_NOISE_MULTIPLIER): IndependentConfig {
  checkSchema(schema);
  checkPrivacy(privacy, INDEPENDENT_ROUNDS);
  if (typeof fineNoiseMultiplier !== "number" || !Number.isFinite(fineNoiseMultiplier) || fineNoiseMultiplier <= 0) {
    throw invalid(`The fine noise multiplier must be a finite number > 0, got ${String(fineNoiseMultiplier)}`);
  }
  const layout = histogramLayout(schema);
  const fineColumns = layout.fine.length;
  if (privacy.secureAggregation) return configureSecure(layout, privacy, fineNoiseMultiplier);
  const sigma = calibrateSigma({
    epsilon: privacy.epsilon,
    delta: privacy.delta,
    mechanismsForSigma: (s) => Array.from({ length: privacy.rounds }, () => roundMechanisms(layout.columns, fineColumns, s, fineNoiseMultiplier)).flat(),
  });
  return {
    sigma,
    l2Sensitivity: Math.sqrt(layout.columns),
    columns: layout.columns,
    cells: layout.total,
    fineColumns,
    fineL2Sensitivity: Math.sqrt(fineColumns),
    fineNoiseMultiplier,
  };
}

/**
 * Under secure aggregation the whole histogram vector is one distributed discrete Gaussian release per
 * round, its noise calibrated for the sum of `threshold` shares; σ (counts) is each site's share, so the
 * estimator's noise model below (contributors · σ² per coarse cell) holds unchanged.
 */
function configureSecure(layout: HistogramLayout, privacy: StudyPrivacy, alpha: number, maxSiteRows = DEFAULT_MAX_SITE_ROWS): IndependentConfig {
  const { threshold, sites } = privacy.secureAggregation!;
  const fineColumns = layout.fine.length;
  const plan = planDistributedNoise({
    clipNorm: weightedSensitivity(layout.columns, fineColumns, alpha),
    // A bound on every coordinate is what the ring's headroom needs (each weighted count is at most the row count).
    updateNorm: maxSiteRows,
    dimension: layout.total, sites, threshold, repetitions: privacy.rounds, epsilon: privacy.epsilon, delta: privacy.delta,
  });
  return {
    sigma: plan.noiseStddev,
    l2Sensitivity: Math.sqrt(layout.columns),
    columns: layout.columns,
    cells: layout.total,
    fineColumns,
    fineL2Sensitivity: Math.sqrt(fineColumns),
    fineNoiseMultiplier: alpha,
    secure: { threshold, sites, maxSiteRows, gamma: plan.gamma, gridSigma: plan.sigma, gridL2Sensitivity: plan.l2Sensitivity },
  };
}

function secureGrid(config: IndependentConfig, layout: HistogramLayout): SecureGrid {
  const secure = config.secure;
  if (!secure) throw invalid("This study does not use secure aggregation", "Configure the engine with privacy.secureAggregation.");
  const weights = new Float64Array(layout.total).fill(1);
  weights.fill(1 / config.fineNoiseMultiplier, layout.coarseTotal);
  return { gamma: secure.gamma, sigma: secure.gridSigma, weights, coordinateBound: secure.maxSiteRows };
}

/**
 * Noise of the average of the rounds' sums: round r's sum carries contributors_r independent N(0, σ²)
 * per coarse cell (α²σ² per fine cell), and the average divides by the number of rounds.
 */
function estimateNoise(config: IndependentConfig, roundContributors: readonly number[]): EstimateNoise | undefined {
  const rounds = roundContributors.length;
  if (rounds === 0) return undefined;
  const sites = roundContributors.reduce((a, b) => a + b, 0);
  const coarseVariance = (config.sigma * config.sigma * sites) / (rounds * rounds);
  return { coarseVariance, fineVariance: config.fineNoiseMultiplier * config.fineNoiseMultiplier * coarseVariance };
}

function buildModel(
  schema: Schema,
  layout: HistogramLayout,
  config: IndependentConfig,
  roundSums: Float64Array[],
  roundContributors: number[],
): IndependentModel {
  const estimate = new Float64Array(layout.total);
  for (const sum of roundSums) for (let i = 0; i < layout.total; i++) estimate[i] += sum[i];
  if (roundSums.length > 0) for (let i = 0; i < layout.total; i++) estimate[i] /= roundSums.length;
  const { rows, probabilities, values } = columnProbabilities(layout, estimate, estimateNoise(config, roundContributors));
  const samplers = schema.columns.map((column, j) => cellSampler(column, probabilities[j], values[j]));
  return {
    schema,
    layout,
    roundSums: Object.freeze(roundSums),
    roundContributors: Object.freeze(roundContributors),
    estimatedRows: rows,
    probabilities: Object.freeze(probabilities),
    values: Object.freeze(values),
    config,
    samplers: Object.freeze(samplers),
  };
}

// Serialized model (little-endian):
//   "FSIN" | u32 version | u32 columns | u32 cells | u32 rounds
//   | for each column: u32 coarse cells, u32 fine cells (0 without a fine level)
//   | for each round: f64 contributors, f64 × cells (the round's noisy sum)
// Version 1 (read for layouts without fine levels) had only the coarse cells of each column.
const MAGIC = [0x46, 0x53, 0x49, 0x4e];
const FORMAT_VERSION = 2;
const HEADER_BYTES = 20;

function columnHeaderBytes(version: number, columns: number): number {
  return (version === 1 ? 4 : 8) * columns;
}

function serializedLength(layout: HistogramLayout, rounds: number, version = FORMAT_VERSION): number {
  return HEADER_BYTES + columnHeaderBytes(version, layout.columns) + rounds * 8 * (1 + layout.total);
}

export const independentEngine: Engine<IndependentModel> = {
  name: INDEPENDENT_ENGINE_NAME,
  description: "Independent columns: one differentially private histogram per column (missing values included; per-value detail for gridded numeric columns), sampled column by column.",

  configure(schema: Schema, privacy: StudyPrivacy): JsonObject {
    const { secure, ...config } = configureIndependent(schema, privacy);
    return secure ? { ...config, secure: { ...secure } } : config;
  },

  init(schema: Schema, config: JsonObject): IndependentModel {
    checkSchema(schema);
    return buildModel(schema, histogramLayout(schema), readConfig(config, schema), [], []);
  },

  planRound(): JsonObject {
    return {};
  },

  needsModel(): boolean {
    return false;
  },

  charge(ctx: TaskContext): Mechanism[] {
    const { sigma, columns, fineColumns, fineNoiseMultiplier, cells, secure } = readConfig(ctx.config, ctx.schema);
    if (secure) return [secureMechanism(cells, secure)];
    return roundMechanisms(columns, fineColumns, sigma, fineNoiseMultiplier);
  },

  updateLength(ctx: TaskContext): number {
    return histogramLayout(ctx.schema).total;
  },

  secure: {
    enabled: (config) => config?.secure !== undefined,
    grid: (ctx) => secureGrid(readConfig(ctx.config, ctx.schema), histogramLayout(ctx.schema)),
    contribution: (ctx, _model, table) => countTable(ctx.schema, histogramLayout(ctx.schema), table),
  },

  localUpdate(ctx: TaskContext, _model: IndependentModel | null, table: Table, noise: Rng): Float64Array {
    const { sigma, fineNoiseMultiplier, secure } = readConfig(ctx.config, ctx.schema);
    if (secure) throw invalid("This study sums updates under secure aggregation: a site sends its secure contribution, not a locally noised update");
    const layout = histogramLayout(ctx.schema);
    const update = countTable(ctx.schema, layout, table);
    const fineSigma = fineNoiseMultiplier * sigma;
    for (let i = 0; i < layout.coarseTotal; i++) update[i] += sigma * gaussian(noise);
    for (let i = layout.coarseTotal; i < update.length; i++) update[i] += fineSigma * gaussian(noise);
    return update;
  },

  aggregate(model: IndependentModel, sum: Float64Array, contributors: number, ctx: TaskContext): IndependentModel {
    const layout = model.layout;
    if (!(sum instanceof Float64Array) || sum.length !== layout.total) {
      throw invalid(`The aggregated update has ${sum?.length} values, expected ${layout.total}`);
    }
    if (!Number.isSafeInteger(contributors) || contributors < 1) {
      throw invalid(`The number of contributing sites must be a whole number >= 1, got ${String(contributors)}`);
    }
    for (let i = 0; i < sum.length; i++) {
      if (!Number.isFinite(sum[i])) throw invalid(`The aggregated update holds a non-finite value at index ${i}`);
    }
    void ctx;
    return buildModel(model.schema, layout, model.config, [...model.roundSums, Float64Array.from(sum)], [...model.roundContributors, contributors]);
  },

  *sample(model: IndependentModel, n: number, rng: Rng): Iterable<OutputRow> {
    if (!Number.isSafeInteger(n) || n < 0) throw invalid(`The number of rows to sample must be a whole number >= 0, got ${String(n)}`);
    const samplers = model.samplers;
    const k = samplers.length;
    for (let r = 0; r < n; r++) {
      const row = new Array<string>(k);
      for (let j = 0; j < k; j++) row[j] = samplers[j](rng);
      yield row;
    }
  },

  serialize(model: IndependentModel): Uint8Array {
    const { layout, roundSums, roundContributors } = model;
    const bytes = new Uint8Array(serializedLength(layout, roundSums.length));
    const view = new DataView(bytes.buffer);
    bytes.set(MAGIC, 0);
    view.setUint32(4, FORMAT_VERSION, true);
    view.setUint32(8, layout.columns, true);
    view.setUint32(12, layout.total, true);
    view.setUint32(16, roundSums.length, true);
    let pos = HEADER_BYTES;
    for (let j = 0; j < layout.columns; j++, pos += 8) {
      view.setUint32(pos, layout.sizes[j], true);
      view.setUint32(pos + 4, layout.fineOf[j]?.size ?? 0, true);
    }
    roundSums.forEach((sum, r) => {
      view.setFloat64(pos, roundContributors[r], true);
      pos += 8;
      for (let i = 0; i < sum.length; i++, pos += 8) view.setFloat64(pos, sum[i], true);
    });
    return bytes;
  },

  deserialize(bytes: Uint8Array, schema: Schema, config: JsonObject): IndependentModel {
    checkSchema(schema);
    const bad = (why: string) =>
      invalid(`Cannot read the independent engine's model: ${why}`, "The model bytes are damaged or belong to another engine, schema or version.");
    if (!(bytes instanceof Uint8Array)) throw bad("not a byte array");
    if (bytes.length < HEADER_BYTES) throw bad(`only ${bytes.length} bytes`);
    for (let i = 0; i < MAGIC.length; i++) if (bytes[i] !== MAGIC[i]) throw bad("wrong format marker");
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const version = view.getUint32(4, true);
    const layout = histogramLayout(schema);
    // Version 1 models (no fine levels) read the same as version 2 ones of a layout without fine levels.
    if (version !== FORMAT_VERSION && !(version === 1 && layout.fine.length === 0)) {
      throw bad(`unsupported format version ${version} (this version reads ${FORMAT_VERSION}${layout.fine.length === 0 ? " and 1" : ""})`);
    }
    const columns = view.getUint32(8, true);
    const cells = view.getUint32(12, true);
    const rounds = view.getUint32(16, true);
    if (columns !== layout.columns) throw bad(`it has ${columns} columns, the schema ${layout.columns}`);
    if (cells !== layout.total) throw bad(`it has ${cells} cells, the schema's layout ${layout.total}`);
    if (bytes.length < HEADER_BYTES + columnHeaderBytes(version, columns)) throw bad("truncated");
    let pos = HEADER_BYTES;
    for (let j = 0; j < columns; j++) {
      const size = view.getUint32(pos, true);
      pos += 4;
      if (size !== layout.sizes[j]) throw bad(`column '${schema.columns[j].name}' has ${size} cells, the schema ${layout.sizes[j]}`);
      if (version === 1) continue;
      const fine = view.getUint32(pos, true);
      pos += 4;
      const want = layout.fineOf[j]?.size ?? 0;
      if (fine !== want) throw bad(`column '${schema.columns[j].name}' has ${fine} fine cells, the schema ${want}`);
    }
    const expected = serializedLength(layout, rounds, version);
    if (bytes.length !== expected) throw bad(`${bytes.length} bytes where ${rounds} rounds need ${expected}`);
    const roundSums: Float64Array[] = [];
    const roundContributors: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const contributors = view.getFloat64(pos, true);
      pos += 8;
      if (!Number.isSafeInteger(contributors) || contributors < 1) throw bad(`round ${r + 1} has an invalid number of contributors`);
      const sum = new Float64Array(cells);
      for (let i = 0; i < cells; i++, pos += 8) {
        const v = view.getFloat64(pos, true);
        if (!Number.isFinite(v)) throw bad(`round ${r + 1} holds a non-finite value`);
        sum[i] = v;
      }
      roundSums.push(sum);
      roundContributors.push(contributors);
    }
    return buildModel(schema, layout, readConfig(config, schema), roundSums, roundContributors);
  },
};
