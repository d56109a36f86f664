/**
 * Engine `neural`: a MADE trained at each site with DP-SGD (Poisson subsampling, per-example clipping by
 * ghost norms, Gaussian noise), combined by sample-weighted federated averaging over the rounds.
 *
 * A site's update is [n̂·Δθ, n̂]: its parameter change after `stepsPerRound` local steps, weighted by its
 * noisy row count n̂ (a Gaussian release, charged every round), so the coordinator's sum gives the
 * weighted average Σ n̂ᵢΔθᵢ / Σ n̂ᵢ without any site revealing an exact count.
 */
import { FedsynthError } from "../../errors.js";
import { SeededRng, gaussian } from "../../random/rng.js";
import type { Schema } from "../../schema/schema.js";
import type { Mechanism } from "../../privacy/mechanism.js";
import { calibrateSigma } from "../../privacy/calibrate.js";
import type { Engine, JsonObject, SecureGrid, StudyPrivacy, TaskContext } from "../engine.js";
import { DEFAULT_MARGINAL_SHARE, planNeuralSecure, secureRoundMechanism, type NeuralSecureConfig } from "./secure-plan.js";
import { columnProbabilities, countTable, histogramLayout, normSub, type ColumnDistributions, type HistogramLayout } from "../independent/histogram.js";
import { MAX_SMOOTHED_BINS, smoothCounts } from "../marginal/smooth.js";
import { centerInputs, encodeInputs, encodeTable, encodingFor, inputEncodingFor, type Encoding, type InputEncoding, type InputKind } from "./encoding.js";
import { directWidthOf, flattenParams, initParams, inputWidthOf, madeMasks, paramOffsets, parameterCount, type MadeMasks, type MadeShape } from "./made.js";

/** Loaded by prepare(): importing TensorFlow.js costs about half a second, which only training and sampling pay. */
let runtime: typeof import("./runtime.js") | undefined;

function requireRuntime(): typeof import("./runtime.js") {
  if (!runtime) {
    throw new FedsynthError("internal", "the neural engine was used before prepare()", {
      hint: "await engine.prepare() before localUpdate or sample",
    });
  }
  return runtime;
}

export const NEURAL_ENGINE_NAME = "neural";

export interface NeuralConfig {
  /** Units per hidden layer (0: none, the direct connections alone). */
  hidden: number;
  /** Direct masked connections from the inputs to the logits (absent in older configs: none). */
  direct?: boolean;
  /** What the network reads of each column (encoding.ts; absent in older configs: "onehot"). */
  inputEncoding?: InputKind;
  /**
   * How the direct connections reach each column's logits (absent: "onehot", one weight per logit;
   * "scalar": a numeric column's logits by a linear trend over its bins plus its missing logit).
   */
  directOutput?: InputKind;
  samplingRate: number;
  stepsPerRound: number;
  clipNorm: number;
  learningRate: number;
  noiseMultiplier: number;
  /** σ of the Gaussian noise on each site's row count (sensitivity 1), released every round. */
  countSigma: number;
  /** countSigma = countNoiseRatio × noiseMultiplier: the count's share of the budget is fixed for any ε. */
  countNoiseRatio: number;
  /**
   * Round 1 also releases the site's column histograms (the independent engine's coarse cells, L2
   * sensitivity √columns, noise σ_h = histogramNoiseRatio × noiseMultiplier; and its fine per-value cells
   * of the gridded numeric columns, sensitivity √fine columns, noise fineNoiseMultiplier × σ_h). They set
   * the output biases training starts from, and sampling calibrates the network's marginals to them and
   * splits numeric bins over their grid values. 0 (or absent, in older configs): no histograms.
   */
  histogramNoiseRatio?: number;
  fineNoiseMultiplier?: number;
  /** Scale of the initial output weights (absent in older configs: 1). */
  outputInitScale?: number;
  optimizer?: "adam" | "sgd" | "gd";
  /**
   * With optimizer "gd": the aggregated change of the direct weights is soft-thresholded at this many
   * standard deviations of its noise (known from public and released values, so this is post-processing).
   * 0 or absent: no thresholding.
   */
  shrinkThreshold?: number;
  initSeed: number;
  /**
   * Numeric columns' released bin counts are smoothed across neighbouring bins before use (marginal/smooth.ts;
   * post-processing). Absent in older configs: not smoothed.
   */
  smoothMarginals?: boolean;
  /**
   * Under secure aggregation: whether the gradient rounds carry the output biases (absent in older
   * configs: they do). The biases come from round 1's histograms and sampling recalibrates them to those,
   * so a bias gradient would only take a share of each example's clip norm away from the dependence weights.
   */
  outputBiasGradient?: boolean;
  /**
   * Under secure aggregation: after round 1 the network reads its input features centred on the released
   * marginals (encoding.ts, centerInputs; absent in older configs: uncentred).
   */
  centerInputs?: boolean;
  /** Under secure aggregation: the share of the budget (zCDP ρ) that round 1's histograms get. */
  marginalShare?: number;
  /** Under secure aggregation: the grids of its two kinds of round (secure-plan.ts). */
  secure?: NeuralSecureConfig;
}

/**
 * The defaults, measured with scripts/measure-neural.ts at ε = 1 per site (δ = 1e-5, one round; means of
 * up to 8 runs on the heart-disease federation, 4 sites of 98–242 training rows, and 3–5 on the generated
 * cohort of 5 sites of 480–4,000 training rows):
 *
 * - The network is the MADE's direct connections alone (hidden = 0): each column's logits are a masked
 *   linear function of the columns before it, with numeric columns read as their scaled value plus a
 *   missing indicator ("scalar" inputs) and shifted along their bins by a linear trend ("scalar" direct
 *   outputs) — about 1,100 parameters on heart instead of ~20,000 for two hidden layers of 64. DP-SGD's
 *   noise is the same on every coordinate while the clipped signal is fixed, so few coordinates that pool
 *   the evidence are what can carry it. Heart, final comparison (8 runs): pair trends 0.802 and TSTR AUC
 *   0.543, against 0.786 / 0.523 for hidden 64 (Adam, q = 0.2, 100 steps) and 0.805 / 0.473 for the
 *   independent engine — the AUC beats it, the pair trends do not quite. Cohort (5 runs): 0.911 / 0.742,
 *   against 0.910 / 0.540 (hidden 64) and 0.910 / 0.560 (independent).
 * - One full-batch step (q = 1, T = 1: a Gaussian mechanism, accounted exactly in GDP) of plain gradient
 *   descent from zero dependence weights: the step is the noisy gradient itself, whose noise the
 *   coordinator knows exactly, so the pooled change is soft-thresholded at 1 noise sd (shrinkThreshold;
 *   post-processing) to drop most noise-only dependencies. More steps at the same budget (T = 3) or
 *   Adam were worse; learning rate 20 (10–40 tried) balances AUC against noise in the pair trends.
 * - histogramNoiseRatio 1.5 leaves most of the budget to the round-1 histograms (column shapes 0.917 vs
 *   0.921 independent): at this budget the pair-trend score is dominated by the marginals' noise (with
 *   exact marginals independent columns already score 0.870 against 0.886–0.895 for the learned model).
 * - smoothMarginals: the numeric columns' bin counts are smoothed before use (marginal/smooth.ts); pair trends
 *   0.797 → 0.812 on heart (16 runs; independent engine 0.805).
 */
export const NEURAL_DEFAULTS = {
  hidden: 0,
  direct: true as boolean,
  inputEncoding: "scalar" as InputKind,
  directOutput: "scalar" as InputKind,
  samplingRate: 1,
  stepsPerRound: 1,
  clipNorm: 1,
  learningRate: 20,
  countNoiseRatio: 10,
  histogramNoiseRatio: 1.5,
  fineNoiseMultiplier: 2,
  outputInitScale: 0,
  optimizer: "gd" as "adam" | "sgd" | "gd",
  shrinkThreshold: 1,
  smoothMarginals: true as boolean,
  outputBiasGradient: false as boolean,
  centerInputs: true as boolean,
  marginalShare: DEFAULT_MARGINAL_SHARE,
  initSeed: 20261122,
};

/**
 * What differs under secure aggregation (the default for 3+ sites), measured with scripts/measure-neural.ts
 * (SECURE=1, ε = 1, two rounds, heart federation; A/B runs of 24–32 with NOISE_SEED, then fresh noise):
 *
 * - The numeric columns' marginals are smoothed (smoothMarginals, marginal/smooth.ts): at this budget the pair
 *   trends are dominated by the histograms' noise, and smoothing lifted them by 0.007 (0.834 → 0.841 at
 *   the settings before the two changes below; without secure aggregation 0.797 → 0.812).
 * - The gradient round carries no output-bias gradient (outputBiasGradient false: +0.002 pairs, +0.007
 *   AUC) and reads inputs centred on the pooled marginals (centerInputs: AUC 0.671 → 0.692), both of
 *   which leave more of each example's clip norm to the dependence weights.
 * - With those, learning rate 25 / 40 / 50 / 55 / 80 / 120 gave pairs 0.848 / 0.851 / 0.850 / 0.851 /
 *   0.848 / 0.842 and marginal share 0.6 / 0.7 / 0.8 gave 0.848 / 0.850 / 0.850 (0.7: the higher AUC, 0.70
 *   against 0.68; DEFAULT_MARGINAL_SHARE). A third round (a second step) lowered the pairs to 0.832–0.845;
 *   a diagonal-Fisher preconditioned step (0.832–0.848), other clip norms (scale-invariant here: every
 *   example is clipped) and soft thresholds of 0.5 or 1.5 sd did not beat these.
 * - Fresh noise, 24 runs: pairs 0.849 ± 0.001 and TSTR AUC 0.689 ± 0.009 against 0.837 ± 0.001 and
 *   0.497 ± 0.010 for the independent engine, DCR ratio 1.42 (column shapes 0.936 against 0.943: the
 *   histograms get 70% of the budget). Generated cohort (5 sites, 3 runs): pairs 0.922 and AUC 0.78
 *   against 0.912 and 0.52, 1.5 s a run in process.
 */
export const NEURAL_SECURE_DEFAULTS = { learningRate: 50 };

/**
 * Model file layout version: 3 adds the direct connections and the input encoding to the header (versions
 * 1 and 2, without them, are still read when the study's network has their layout).
 */
const MODEL_VERSION = 3;

/** Rows drawn to calibrate the network's marginals to the released histograms before sampling. */
const CALIBRATION_ROWS = 4096;
/** Floor of a block's probabilities when they become output biases (log p). */
const MIN_START_PROBABILITY = 1e-3;

export interface NeuralModel {
  schema: Schema;
  config: NeuralConfig;
  shape: MadeShape;
  encoding: Encoding;
  /** The network's input features of each cell. */
  input: InputEncoding;
  /** The direct connections' outputs of each column (their projection to the logits is in the masks). */
  directOutput: InputEncoding;
  masks: MadeMasks;
  params: Float32Array;
  rounds: number;
  /** The pooled noisy histograms released in round 1 (sum over sites), when the study releases them. */
  histogram?: Float64Array;
  /** Sites that contributed to `histogram`. */
  histogramSites?: number;
}

function config(json: JsonObject): NeuralConfig {
  return json as unknown as NeuralConfig;
}

function releasesHistograms(c: NeuralConfig): boolean {
  return (c.histogramNoiseRatio ?? 0) > 0;
}

/** Histogram noise σ_h of each coarse cell (fine cells: fineNoiseMultiplier × σ_h); under secure aggregation, each site's share. */
function histogramSigma(c: NeuralConfig): number {
  return c.secure ? c.secure.marginals.shareSd : (c.histogramNoiseRatio ?? 0) * c.noiseMultiplier;
}

/** √(columns + fine columns/α²): one record's change of the histograms with fine cells weighted 1/α. */
function weightedHistogramSensitivity(schema: Schema, c: NeuralConfig): number {
  const layout = histogramLayout(schema);
  const alpha = c.fineNoiseMultiplier ?? 2;
  return Math.sqrt(layout.columns + layout.fine.length / (alpha * alpha));
}

/** The mechanisms of `rounds` rounds starting with round `first` (the histograms are released in round 1 only). */
function roundMechanisms(schema: Schema, c: NeuralConfig, rounds: number, first = 1): Mechanism[] {
  const mechanisms: Mechanism[] = [
    { kind: "subsampled-gaussian", samplingRate: c.samplingRate, noiseMultiplier: c.noiseMultiplier, steps: c.stepsPerRound * rounds, clipNorm: c.clipNorm },
    { kind: "gaussian", l2Sensitivity: 1, sigma: c.countSigma, repetitions: rounds },
  ];
  if (releasesHistograms(c) && first === 1) {
    const layout = histogramLayout(schema);
    const sigmaH = histogramSigma(c);
    mechanisms.push({ kind: "gaussian", l2Sensitivity: Math.sqrt(layout.columns), sigma: sigmaH, repetitions: 1 });
    if (layout.fine.length > 0) {
      mechanisms.push({ kind: "gaussian", l2Sensitivity: Math.sqrt(layout.fine.length), sigma: (c.fineNoiseMultiplier ?? 2) * sigmaH, repetitions: 1 });
    }
  }
  return mechanisms;
}

/** Post-processed column distributions from a (sum of `sites`) noisy histogram release. */
function distributions(schema: Schema, c: NeuralConfig, histogram: Float64Array, sites: number): ColumnDistributions {
  const coarseVariance = histogramSigma(c) ** 2 * Math.max(1, sites);
  const alpha = c.fineNoiseMultiplier ?? 2;
  const layout = histogramLayout(schema);
  const dist = columnProbabilities(layout, histogram, { coarseVariance, fineVariance: alpha * alpha * coarseVariance });
  return c.smoothMarginals ? smoothNumericColumns(schema, layout, histogram, dist, coarseVariance) : dist;
}

/**
 * The numeric columns' bin probabilities from their smoothed coarse counts (marginal/smooth.ts), each bin's grid
 * values keeping their shares within the bin; categorical columns as they were.
 */
function smoothNumericColumns(schema: Schema, layout: HistogramLayout, histogram: Float64Array, dist: ColumnDistributions, variance: number): ColumnDistributions {
  const probabilities = dist.probabilities.slice();
  const values = dist.values.slice();
  schema.columns.forEach((column, j) => {
    const size = layout.sizes[j];
    if (column.type !== "numeric" || size - 1 > MAX_SMOOTHED_BINS) return;
    const off = layout.offsets[j];
    const coarse = new Float64Array(size);
    coarse.set(smoothCounts(histogram.subarray(off, off + size - 1), new Float64Array(size - 1).fill(1), variance));
    coarse[size - 1] = histogram[off + size - 1];
    const counts = normSub(coarse, dist.rows);
    let total = 0;
    for (let k = 0; k < size; k++) total += counts[k];
    if (!(total > 0)) return;
    const old = dist.probabilities[j];
    const p = Float64Array.from(counts, (x) => x / total);
    probabilities[j] = p;
    const fine = layout.fineOf[j];
    const v = dist.values[j];
    if (!fine || !v) return;
    const out = new Float64Array(v.length);
    for (let b = 0; b < size - 1; b++) {
      const first = b * fine.perBin;
      const m = Math.min(fine.size, first + fine.perBin) - first;
      for (let k = 0; k < m; k++) out[first + k] = old[b] > 0 ? (v[first + k] * p[b]) / old[b] : p[b] / m;
    }
    out[fine.size] = p[size - 1];
    values[j] = out;
  });
  return { rows: dist.rows, probabilities, values };
}

/**
 * Standard deviation of the DP noise in each coordinate of an aggregated change, for plain gradient steps:
 * site s sends n̂ₛ·Δₛ with Δₛ = −lr·Σₜ(Gₜ + ξₜ)/(q·n̂ₛ), ξ ~ N(0, (σC)²) per step, so the sum over S sites
 * divided by Σ n̂ₛ has noise of sd lr·σ·C·√(S·T)/(q·Σ n̂ₛ).
 */
function directNoiseSd(c: NeuralConfig, sites: number, weight: number): number {
  return (c.learningRate * c.noiseMultiplier * c.clipNorm * Math.sqrt(sites * c.stepsPerRound)) / (c.samplingRate * weight);
}

/** Offset of the output biases b3 in the flat parameters (they come last). */
function outputBiasOffset(shape: MadeShape): number {
  return parameterCount(shape) - shape.width;
}

/** Writes log p (floored) of every column's block into the output biases. */
function setOutputBiases(params: Float32Array, shape: MadeShape, encoding: Encoding, probabilities: Float64Array[]): void {
  const at = outputBiasOffset(shape);
  encoding.blocks.forEach((b, j) => {
    for (let k = 0; k < b.size; k++) params[at + b.offset + k] = Math.log(Math.max(MIN_START_PROBABILITY, probabilities[j][k]));
  });
}

/** The network of a study's config: encodings and shape (exported for bench/neural.mjs). */
export function architecture(schema: Schema, c: NeuralConfig): { encoding: Encoding; input: InputEncoding; directOutput: InputEncoding; shape: MadeShape } {
  const encoding = encodingFor(schema);
  const input = inputEncodingFor(encoding, c.inputEncoding ?? "onehot");
  const directOutput = inputEncodingFor(encoding, c.directOutput ?? "onehot");
  const shape: MadeShape = { width: encoding.width, hidden: c.hidden, inputWidth: input.width, direct: c.direct ?? false, directWidth: directOutput.width };
  if (!(Number.isSafeInteger(c.hidden) && c.hidden >= 0) || (c.hidden === 0 && !shape.direct)) {
    throw new FedsynthError("invalid-argument", `invalid neural network: hidden ${String(c.hidden)}, direct ${String(shape.direct)}`, {
      hint: "hidden must be a whole number ≥ 0, and the network needs hidden units or direct connections",
    });
  }
  return { encoding, input, directOutput, shape };
}

/** The layout before direct connections and input encodings (model files of version 1 and 2). */
const isLegacy = (s: MadeShape): boolean => !s.direct && s.hidden > 0 && inputWidthOf(s) === s.width;

function describeNetwork(h: { width: number; hidden: number; inputWidth?: number; direct?: boolean; directWidth?: number; input?: string; directOutput?: string }): string {
  const direct = h.direct ? `direct connections to ${h.directOutput ?? "onehot"} outputs of width ${h.directWidth ?? h.width}` : "no direct connections";
  return `width ${h.width}, hidden ${h.hidden}, ${h.input ?? "onehot"} inputs of width ${h.inputWidth ?? h.width}, ${direct}`;
}

function modelOf(schema: Schema, c: NeuralConfig, params?: Float32Array, rounds = 0): NeuralModel {
  const { encoding, input, directOutput, shape } = architecture(schema, c);
  const projected = directOutput.kind !== "onehot";
  return {
    schema, config: c, shape, encoding, input, directOutput,
    masks: madeMasks(encoding, c.hidden, { input, direct: shape.direct, ...(projected ? { directOutput } : {}) }),
    params: params ?? flattenParams(initParams(shape, new SeededRng(c.initSeed), c.outputInitScale ?? 1)), rounds,
  };
}

/**
 * The largest network a study may have. The WebAssembly backend holds every tensor in one linear memory
 * of at most 4 GiB; training keeps the weights, their masks, the gradient and its clipped and noised
 * copies, and the per-column softmax multiplies by a one-hot-width × columns block matrix. Past these a
 * schema fails deep inside TensorFlow.js ("memory access out of bounds") instead of here, with a hint.
 */
export const MAX_NEURAL_PARAMETERS = 20_000_000;
export const MAX_NEURAL_BLOCK_CELLS = 20_000_000;

function checkNetworkSize(schema: Schema, settings: typeof NEURAL_DEFAULTS): void {
  const c = { ...settings, noiseMultiplier: 1, countSigma: 1 } as NeuralConfig;
  const { shape, encoding } = architecture(schema, c);
  const n = parameterCount(shape);
  const blockCells = encoding.width * encoding.blocks.length;
  const hint = "give numeric columns fewer bins in the schema, or use the marginal or independent engine";
  if (n > MAX_NEURAL_PARAMETERS) {
    throw new FedsynthError("invalid-argument",
      `the neural engine's network for this schema would have ${n.toLocaleString("en")} parameters (one-hot width ${encoding.width.toLocaleString("en")}), more than the ${MAX_NEURAL_PARAMETERS.toLocaleString("en")} it can train`, { hint });
  }
  if (blockCells > MAX_NEURAL_BLOCK_CELLS) {
    throw new FedsynthError("invalid-argument",
      `the neural engine cannot train on this schema: its one-hot width ${encoding.width.toLocaleString("en")} over ${encoding.blocks.length} columns makes a ${blockCells.toLocaleString("en")}-cell softmax block matrix, more than the ${MAX_NEURAL_BLOCK_CELLS.toLocaleString("en")} it can hold`, { hint });
  }
}

/**
 * The study's settings: the defaults (or, for experiments, other public settings) with the noise
 * multiplier calibrated so that `privacy.rounds` rounds cost exactly the budget.
 */
export function configureNeural(schema: Schema, privacy: StudyPrivacy, overrides: Partial<typeof NEURAL_DEFAULTS> = {}): JsonObject {
  checkNetworkSize(schema, { ...NEURAL_DEFAULTS, ...overrides });
  if (privacy.secureAggregation) {
    return configureSecure(schema, privacy as StudyPrivacy & { secureAggregation: NonNullable<StudyPrivacy["secureAggregation"]> }, { ...NEURAL_DEFAULTS, ...NEURAL_SECURE_DEFAULTS, ...overrides });
  }
  const base = { ...NEURAL_DEFAULTS, ...overrides };
  const settings = (sigma: number): NeuralConfig => ({ ...base, noiseMultiplier: sigma, countSigma: base.countNoiseRatio * sigma });
  const noiseMultiplier = calibrateSigma({
    epsilon: privacy.epsilon, delta: privacy.delta,
    mechanismsForSigma: (sigma) => roundMechanisms(schema, settings(sigma), privacy.rounds),
  });
  return settings(noiseMultiplier) as unknown as JsonObject;
}

/**
 * Under secure aggregation only the noise plan changes: one full-batch gradient step a round (the step
 * is the pooled noisy gradient itself, as in the plaintext default), the histograms in round 1.
 */
function configureSecure(schema: Schema, privacy: StudyPrivacy & { secureAggregation: NonNullable<StudyPrivacy["secureAggregation"]> }, base: typeof NEURAL_DEFAULTS): JsonObject {
  if (base.optimizer !== "gd" || base.samplingRate !== 1 || base.stepsPerRound !== 1) {
    throw new FedsynthError("invalid-argument", "the neural engine under secure aggregation trains by one full-batch gradient step a round", {
      hint: "use the default settings (optimizer gd, sampling rate 1, one step a round), or turn secure aggregation off",
    });
  }
  const c = { ...base, noiseMultiplier: 0, countSigma: 0 } as NeuralConfig;
  const secure = planNeuralSecure({
    privacy, histogramCells: histogramLayout(schema).total, histogramSensitivity: weightedHistogramSensitivity(schema, c),
    parameters: parameterCount(architecture(schema, c).shape), marginalShare: base.marginalShare,
  });
  return { ...c, secure: { ...secure, marginals: { ...secure.marginals }, gradient: { ...secure.gradient } } } as unknown as JsonObject;
}

/** The grid of a secure round: the histograms (fine cells weighted 1/α) in round 1, then the gradient weighted 1/C. */
function secureGrid(ctx: TaskContext): SecureGrid {
  const c = config(ctx.config);
  const secure = c.secure!;
  if (ctx.round === 1) {
    const layout = histogramLayout(ctx.schema);
    const weights = new Float64Array(layout.total).fill(1).fill(1 / (c.fineNoiseMultiplier ?? 2), layout.coarseTotal);
    return { gamma: secure.marginals.gamma, sigma: secure.marginals.gridSigma, weights, coordinateBound: secure.maxSiteRows };
  }
  const weights = new Float64Array(parameterCount(architecture(ctx.schema, c).shape)).fill(1 / c.clipNorm);
  return { gamma: secure.gradient.gamma, sigma: secure.gradient.gridSigma, weights, coordinateBound: secure.maxSiteRows };
}

/** Under secure aggregation: round 1 sets the pooled marginals, later rounds take one step along the pooled gradient. */
function aggregateSecure(model: NeuralModel, sum: Float64Array, contributors: number, ctx: TaskContext): NeuralModel {
  const c = config(ctx.config);
  const params = Float32Array.from(model.params);
  if (ctx.round === 1) {
    const { probabilities } = distributions(ctx.schema, c, sum, contributors);
    setOutputBiases(params, model.shape, model.encoding, probabilities);
    const input = c.centerInputs ? centerInputs(model.input, probabilities) : model.input;
    return { ...model, input, params, rounds: model.rounds + 1, histogram: Float64Array.from(sum), histogramSites: contributors };
  }
  if (!model.histogram) throw new FedsynthError("internal", "a secure training round came before the round that measures the marginals");
  // The pooled row count, from the released histograms (post-processing).
  const rows = Math.max(1, distributions(ctx.schema, c, model.histogram, model.histogramSites ?? 1).rows);
  const step = c.learningRate / rows;
  // The sum's noise on one gradient coordinate: √contributors shares of shareSd in units of C.
  const threshold = (c.shrinkThreshold ?? 0) * step * Math.sqrt(contributors) * c.secure!.gradient.shareSd * c.clipNorm;
  const w0 = paramOffsets(model.shape).w0;
  // Without a bias gradient those coordinates of the sum are noise alone.
  const trained = (c.outputBiasGradient ?? true) ? params.length : outputBiasOffset(model.shape);
  for (let i = 0; i < trained; i++) {
    let d = -step * sum[i];
    if (threshold > 0 && i >= w0.at && i < w0.at + w0.length) d = Math.sign(d) * Math.max(0, Math.abs(d) - threshold);
    params[i] += d;
  }
  return { ...model, params, rounds: model.rounds + 1 };
}

export const neuralEngine: Engine<NeuralModel> = {
  name: NEURAL_ENGINE_NAME,
  description: "MADE (masked autoregressive network, direct connections) trained with DP-SGD at each site, federated averaging",

  async prepare(): Promise<void> {
    const { initTensorflow } = await import("../../tf/backend.js");
    await initTensorflow();
    runtime ??= await import("./runtime.js");
  },

  configure(schema: Schema, privacy: StudyPrivacy): JsonObject {
    return configureNeural(schema, privacy);
  },

  /** Under secure aggregation round 1 measures the marginals and round 2 trains. */
  defaultRounds: (secure) => (secure ? 2 : 1),

  init(schema: Schema, json: JsonObject): NeuralModel {
    return modelOf(schema, config(json));
  },

  planRound(): JsonObject {
    return {};
  },

  needsModel(ctx: TaskContext): boolean {
    return !(config(ctx.config).secure && ctx.round === 1);
  },

  charge(ctx: TaskContext): Mechanism[] {
    const c = config(ctx.config);
    if (c.secure) return [secureRoundMechanism(c.secure, ctx.round, histogramLayout(ctx.schema).total, parameterCount(architecture(ctx.schema, c).shape))];
    return roundMechanisms(ctx.schema, c, 1, ctx.round);
  },

  secure: {
    enabled: (json) => config(json).secure !== undefined,
    grid: secureGrid,
    contribution(ctx, model, table): Float64Array {
      if (ctx.round === 1) return countTable(ctx.schema, histogramLayout(ctx.schema), table);
      if (!model) throw new FedsynthError("internal", "the neural engine needs the pooled model to train from");
      const { clippedGradientSum } = requireRuntime();
      const y = encodeTable(model.encoding, table);
      const x = model.input.kind === "onehot" && !model.input.centered ? undefined : encodeInputs(model.encoding, model.input, table);
      const c = config(ctx.config);
      return clippedGradientSum(model.shape, model.masks, model.encoding.blocks.length, model.params, y, table.rowCount, c.clipNorm, x, c.outputBiasGradient ?? true);
    },
  },

  updateLength(ctx: TaskContext): number {
    const c = config(ctx.config);
    if (c.secure) return ctx.round === 1 ? histogramLayout(ctx.schema).total : parameterCount(architecture(ctx.schema, c).shape);
    const histogram = releasesHistograms(c) && ctx.round === 1 ? histogramLayout(ctx.schema).total : 0;
    return parameterCount(architecture(ctx.schema, c).shape) + 1 + histogram;
  },

  localUpdate(ctx, model, table, noise): Float64Array {
    if (config(ctx.config).secure) {
      throw new FedsynthError("invalid-argument", "This study sums updates under secure aggregation: a site sends its secure contribution, not a locally noised update");
    }
    const { trainLocal } = requireRuntime();
    if (!model) throw new FedsynthError("internal", "the neural engine needs the pooled model to train from");
    const c = config(ctx.config);
    const rows = table.rowCount;
    // The count is released (noised) first; everything after it is post-processing of DP releases.
    const noisyCount = Math.max(1, rows + c.countSigma * gaussian(noise));
    // Round 1: the noisy histograms, then training starts from output biases set to their marginals.
    let start = model.params;
    let histogram: Float64Array | undefined;
    if (releasesHistograms(c) && ctx.round === 1) {
      const layout = histogramLayout(ctx.schema);
      histogram = countTable(ctx.schema, layout, table);
      const sigmaH = histogramSigma(c);
      const sigmaFine = (c.fineNoiseMultiplier ?? 2) * sigmaH;
      for (let i = 0; i < layout.total; i++) histogram[i] += (i < layout.coarseTotal ? sigmaH : sigmaFine) * gaussian(noise);
      start = Float32Array.from(model.params);
      setOutputBiases(start, model.shape, model.encoding, distributions(ctx.schema, c, histogram, 1).probabilities);
    }
    const y = encodeTable(model.encoding, table);
    const x = model.input.kind === "onehot" ? undefined : encodeInputs(model.encoding, model.input, table);
    const { params } = trainLocal(model.shape, model.masks, model.encoding.blocks.length, start, y, rows, {
      samplingRate: c.samplingRate, steps: c.stepsPerRound, clipNorm: c.clipNorm, noiseMultiplier: c.noiseMultiplier, learningRate: c.learningRate,
      optimizer: c.optimizer ?? "adam",
    }, c.samplingRate * noisyCount, noise, x);
    // The update is the weighted change from where this site started (with the histograms, its own biases).
    const update = new Float64Array(params.length + 1 + (histogram?.length ?? 0));
    for (let i = 0; i < params.length; i++) update[i] = noisyCount * (params[i] - start[i]);
    update[params.length] = noisyCount;
    if (histogram) update.set(histogram, params.length + 1);
    return update;
  },

  aggregate(model, sum, contributors, ctx): NeuralModel {
    if (config(ctx.config).secure) return aggregateSecure(model, sum, contributors, ctx);
    const count = model.params.length;
    const weight = sum[count];
    const params = Float32Array.from(model.params);
    let { histogram, histogramSites } = model;
    if (sum.length > count + 1) {
      // Round 1 with histograms: every site started from biases of its own marginals; the pooled model
      // starts from the pooled marginals, plus the average change.
      histogram = Float64Array.from(sum.subarray(count + 1));
      histogramSites = contributors;
      setOutputBiases(params, model.shape, model.encoding, distributions(ctx.schema, config(ctx.config), histogram, contributors).probabilities);
    }
    const c = config(ctx.config);
    const threshold = c.optimizer === "gd" && weight > 0 ? (c.shrinkThreshold ?? 0) * directNoiseSd(c, contributors, weight) : 0;
    const w0 = paramOffsets(model.shape).w0;
    if (weight > 0) {
      for (let i = 0; i < count; i++) {
        let d = sum[i] / weight;
        if (threshold > 0 && i >= w0.at && i < w0.at + w0.length) d = Math.sign(d) * Math.max(0, Math.abs(d) - threshold);
        params[i] += d;
      }
    }
    return { ...model, params, rounds: model.rounds + 1, histogram, histogramSites };
  },

  sample(model, n, rng) {
    const { sampleRows, calibrateOutputBiases } = requireRuntime();
    if (!model.histogram || n <= 0) return sampleRows(model.shape, model.masks, model.encoding, model.params, n, rng, model.input);
    // Post-processing of the released histograms: the network's marginals are calibrated to them, and
    // numeric bins are split over their grid values as the fine histograms say.
    const dist = distributions(model.schema, model.config, model.histogram, model.histogramSites ?? 1);
    const params = calibrateOutputBiases(model.shape, model.masks, model.encoding.blocks, model.params, dist.probabilities, CALIBRATION_ROWS, rng, undefined, model.input);
    const blocks = model.encoding.blocks.map((b, j) => {
      const values = dist.values[j];
      if (!values || !b.bins?.grid) return b;
      const perBin = b.bins.perBin;
      const shares = new Float64Array(b.bins.grid.count);
      for (let first = 0; first < shares.length; first += perBin) {
        const last = Math.min(shares.length, first + perBin);
        let total = 0;
        for (let k = first; k < last; k++) total += values[k];
        for (let k = first; k < last; k++) shares[k] = total > 0 ? values[k] / total : 1 / (last - first);
      }
      return { ...b, gridShares: shares };
    });
    return sampleRows(model.shape, model.masks, { ...model.encoding, blocks }, params, n, rng, model.input);
  },

  serialize(model): Uint8Array {
    const histogramCells = model.histogram?.length ?? 0;
    const { width, hidden } = model.shape;
    const header = Buffer.from(JSON.stringify({
      version: MODEL_VERSION, width, hidden, inputWidth: inputWidthOf(model.shape), input: model.input.kind,
      direct: model.shape.direct ?? false, directWidth: directWidthOf(model.shape), directOutput: model.directOutput.kind,
      rounds: model.rounds, histogramCells, ...(histogramCells > 0 ? { histogramSites: model.histogramSites ?? 1 } : {}),
    }));
    const out = Buffer.alloc(4 + header.length + model.params.byteLength + 8 * histogramCells);
    out.writeUInt32LE(header.length, 0);
    header.copy(out, 4);
    Buffer.from(model.params.buffer, model.params.byteOffset, model.params.byteLength).copy(out, 4 + header.length);
    if (model.histogram) {
      Buffer.from(model.histogram.buffer, model.histogram.byteOffset, model.histogram.byteLength).copy(out, 4 + header.length + model.params.byteLength);
    }
    return new Uint8Array(out);
  },

  deserialize(bytes, schema, json): NeuralModel {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const bad = (why: string) => new FedsynthError("invalid-argument", `not a usable neural model: ${why}`);
    if (buf.length < 4) throw bad("too short");
    const headerLength = buf.readUInt32LE(0);
    if (4 + headerLength > buf.length) throw bad("truncated header");
    let header: {
      version: number; width: number; hidden: number; inputWidth?: number; input?: string; direct?: boolean; directWidth?: number; directOutput?: string;
      rounds: number; histogramCells?: number; histogramSites?: number;
    };
    try {
      header = JSON.parse(buf.toString("utf8", 4, 4 + headerLength));
    } catch {
      throw bad("unreadable header");
    }
    const c = config(json);
    const model = modelOf(schema, c, undefined, header.rounds);
    const shape = model.shape;
    const describe = describeNetwork;
    const expected = {
      width: shape.width, hidden: shape.hidden, inputWidth: inputWidthOf(shape), input: model.input.kind,
      direct: shape.direct ?? false, directWidth: directWidthOf(shape), directOutput: model.directOutput.kind,
    };
    if (header.version === 1 || header.version === 2) {
      // Files written before direct connections and input encodings: readable when the study uses that layout.
      if (!isLegacy(shape) || header.width !== shape.width || header.hidden !== shape.hidden) {
        throw bad(`it is a version ${header.version} model file (${describe(header)}); this study's network is ${describe(expected)}`);
      }
    } else if (header.version === MODEL_VERSION) {
      if (header.width !== expected.width || header.hidden !== expected.hidden || header.inputWidth !== expected.inputWidth ||
        header.direct !== expected.direct || header.input !== expected.input || header.directWidth !== expected.directWidth ||
        header.directOutput !== expected.directOutput) {
        throw bad(`it was made for a different schema or network (${describe(header)}; this study's network is ${describe(expected)})`);
      }
    } else {
      throw bad(`unknown model file version ${String(header.version)} (this fedsynth reads versions 1 to ${MODEL_VERSION})`);
    }
    const histogramCells = header.version === 1 ? 0 : header.histogramCells;
    if (!Number.isSafeInteger(histogramCells) || histogramCells! < 0) throw bad("invalid histogram cell count");
    if (histogramCells! > 0) {
      if (histogramCells !== histogramLayout(schema).total) throw bad(`${String(histogramCells)} histogram cells instead of ${histogramLayout(schema).total}`);
      if (!Number.isSafeInteger(header.histogramSites) || header.histogramSites! < 1) throw bad("invalid histogram site count");
    }
    const body = buf.subarray(4 + headerLength);
    const length = model.params.byteLength + 8 * histogramCells!;
    if (body.byteLength !== length) throw bad(`${body.byteLength} body bytes instead of ${length}`);
    const params = new Float32Array(model.params.length);
    new Uint8Array(params.buffer).set(body.subarray(0, model.params.byteLength));
    if (histogramCells === 0) return { ...model, params };
    const histogram = new Float64Array(histogramCells!);
    new Uint8Array(histogram.buffer).set(body.subarray(model.params.byteLength));
    const histogramSites = header.histogramSites;
    // The centred inputs are a function of the released histograms, so they are rebuilt, not stored.
    const input = c.secure && c.centerInputs ? centerInputs(model.input, distributions(schema, c, histogram, histogramSites ?? 1).probabilities) : model.input;
    return { ...model, input, params, histogram, histogramSites };
  },
};
