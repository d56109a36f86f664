/**
 * The "independent" engine: the baseline synthesizer. It learns one DP histogram per column (over the
 * schema's categories or numeric bins, plus a "missing" cell) and samples every column independently.
 *
 * Privacy. A site's update is the concatenation of its columns' histograms plus N(0, σ²) on every cell.
 * Adding or removing one record changes exactly one cell per column by 1, so the L2 sensitivity of the
 * whole vector is sqrt(columns). Each round every site releases one such vector (a Gaussian mechanism);
 * σ is calibrated so that `rounds` releases cost exactly the study's (ε, δ) (see privacy/calibrate.ts).
 *
 * Estimation. Each round re-measures the same histograms, so the pooled estimate is the average of the
 * rounds' noisy sums. Post-processing (free under DP): the pooled row count N is the inverse-variance
 * weighted mean of the per-column totals, and each column becomes a non-negative histogram summing to N by
 * Norm-Sub (see histogram.ts); probabilities are that histogram divided by N.
 */
import type { Engine, JsonObject, StudyPrivacy, TaskContext } from "../engine.js";
import type { Schema, Table, OutputRow } from "../../schema/schema.js";
import type { GaussianMechanism, Mechanism } from "../../privacy/mechanism.js";
import { gaussian, type Rng } from "../../random/rng.js";
import { calibrateSigma } from "../../privacy/calibrate.js";
import { FedsynthError } from "../../errors.js";
import { columnProbabilities, countTable, histogramLayout, type HistogramLayout } from "./histogram.js";
import { cellSampler, type CellSampler } from "./sampler.js";

export const INDEPENDENT_ENGINE_NAME = "independent";

export interface IndependentConfig {
  /** Standard deviation of the noise on every cell of every site's update. */
  sigma: number;
  /** L2 sensitivity of one site's update: sqrt(columns). */
  l2Sensitivity: number;
  columns: number;
  /** Length of an update (total cells, missing cells included). */
  cells: number;
}

export interface IndependentModel {
  readonly schema: Schema;
  readonly layout: HistogramLayout;
  /** The noisy sums released in each aggregated round, as received: the auditable released statistics. */
  readonly roundSums: readonly Float64Array[];
  /** How many sites contributed to each round's sum. */
  readonly roundContributors: readonly number[];
  /** Post-processed estimate of the pooled row count. */
  readonly estimatedRows: number;
  /** Post-processed probabilities of each column's cells (last cell = missing); each sums to 1. */
  readonly probabilities: readonly Float64Array[];
  /** Per-column samplers, precomputed from `probabilities`. */
  readonly samplers: readonly CellSampler[];
}

function invalid(message: string, hint?: string): FedsynthError {
  return new FedsynthError("invalid-argument", message, { hint });
}

function checkPrivacy(privacy: StudyPrivacy): void {
  const { epsilon, delta, rounds } = privacy ?? ({} as StudyPrivacy);
  if (typeof epsilon !== "number" || !Number.isFinite(epsilon) || epsilon <= 0) {
    throw invalid(`The study's epsilon must be a finite number > 0, got ${String(epsilon)}`, "Choose an epsilon such as 1.");
  }
  if (typeof delta !== "number" || !Number.isFinite(delta) || delta <= 0 || delta >= 1) {
    throw invalid(`The study's delta must lie strictly between 0 and 1, got ${String(delta)}`, "Choose a small delta such as 1e-5.");
  }
  if (typeof rounds !== "number" || !Number.isSafeInteger(rounds) || rounds < 1 || rounds > 100_000) {
    throw invalid(`The number of rounds must be a whole number from 1 to 100000, got ${String(rounds)}`, "One round is enough for this engine.");
  }
}

function checkSchema(schema: Schema): void {
  if (!schema || !Array.isArray(schema.columns) || schema.columns.length === 0) {
    throw new FedsynthError("invalid-schema", "The schema has no columns", { hint: "Describe at least one column." });
  }
}

function mechanism(columns: number, sigma: number): GaussianMechanism {
  return { kind: "gaussian", l2Sensitivity: Math.sqrt(columns), sigma, repetitions: 1 };
}

/** Reads and checks the engine's config against the schema. */
function readConfig(config: JsonObject, schema: Schema): IndependentConfig {
  const layout = histogramLayout(schema);
  const sigma = config?.sigma;
  const l2Sensitivity = config?.l2Sensitivity;
  if (typeof sigma !== "number" || !Number.isFinite(sigma) || sigma <= 0) {
    throw invalid(`The independent engine's config has no valid sigma (${JSON.stringify(sigma)})`, "Use the config returned by configure().");
  }
  if (l2Sensitivity !== Math.sqrt(layout.columns) || config.columns !== layout.columns || config.cells !== layout.total) {
    throw invalid("The independent engine's config does not match the schema", "Configure the engine with the study's schema.");
  }
  return { sigma, l2Sensitivity, columns: layout.columns, cells: layout.total };
}

function buildModel(schema: Schema, layout: HistogramLayout, roundSums: Float64Array[], roundContributors: number[]): IndependentModel {
  const estimate = new Float64Array(layout.total);
  for (const sum of roundSums) for (let i = 0; i < layout.total; i++) estimate[i] += sum[i];
  if (roundSums.length > 0) for (let i = 0; i < layout.total; i++) estimate[i] /= roundSums.length;
  const { rows, probabilities } = columnProbabilities(layout, estimate);
  const samplers = schema.columns.map((column, j) => cellSampler(column, probabilities[j]));
  return {
    schema,
    layout,
    roundSums: Object.freeze(roundSums),
    roundContributors: Object.freeze(roundContributors),
    estimatedRows: rows,
    probabilities: Object.freeze(probabilities),
    samplers: Object.freeze(samplers),
  };
}

// Serialized model (little-endian):
//   "FSIN" | u32 version | u32 columns | u32 cells | u32 rounds | u32 cells of each column
//   | for each round: f64 contributors, f64 × cells (the round's noisy sum)
const MAGIC = [0x46, 0x53, 0x49, 0x4e];
const FORMAT_VERSION = 1;
const HEADER_BYTES = 20;

function serializedLength(layout: HistogramLayout, rounds: number): number {
  return HEADER_BYTES + 4 * layout.columns + rounds * 8 * (1 + layout.total);
}

export const independentEngine: Engine<IndependentModel> = {
  name: INDEPENDENT_ENGINE_NAME,
  description: "Independent columns: one differentially private histogram per column (missing values included), sampled column by column.",

  configure(schema: Schema, privacy: StudyPrivacy): JsonObject {
    checkSchema(schema);
    checkPrivacy(privacy);
    const layout = histogramLayout(schema);
    const sigma = calibrateSigma({
      epsilon: privacy.epsilon,
      delta: privacy.delta,
      mechanismsForSigma: (s) => Array.from({ length: privacy.rounds }, () => mechanism(layout.columns, s)),
    });
    const config: IndependentConfig = { sigma, l2Sensitivity: Math.sqrt(layout.columns), columns: layout.columns, cells: layout.total };
    return { ...config };
  },

  init(schema: Schema, config: JsonObject): IndependentModel {
    checkSchema(schema);
    readConfig(config, schema);
    return buildModel(schema, histogramLayout(schema), [], []);
  },

  planRound(): JsonObject {
    return {};
  },

  needsModel(): boolean {
    return false;
  },

  charge(ctx: TaskContext): Mechanism[] {
    const { sigma, columns } = readConfig(ctx.config, ctx.schema);
    return [mechanism(columns, sigma)];
  },

  updateLength(ctx: TaskContext): number {
    return histogramLayout(ctx.schema).total;
  },

  localUpdate(ctx: TaskContext, _model: IndependentModel | null, table: Table, noise: Rng): Float64Array {
    const { sigma } = readConfig(ctx.config, ctx.schema);
    const layout = histogramLayout(ctx.schema);
    const update = countTable(ctx.schema, layout, table);
    for (let i = 0; i < update.length; i++) update[i] += sigma * gaussian(noise);
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
    return buildModel(model.schema, layout, [...model.roundSums, Float64Array.from(sum)], [...model.roundContributors, contributors]);
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
    for (const size of layout.sizes) {
      view.setUint32(pos, size, true);
      pos += 4;
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
    void config;
    const bad = (why: string) =>
      invalid(`Cannot read the independent engine's model: ${why}`, "The model bytes are damaged or belong to another engine, schema or version.");
    if (!(bytes instanceof Uint8Array)) throw bad("not a byte array");
    if (bytes.length < HEADER_BYTES) throw bad(`only ${bytes.length} bytes`);
    for (let i = 0; i < MAGIC.length; i++) if (bytes[i] !== MAGIC[i]) throw bad("wrong format marker");
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const version = view.getUint32(4, true);
    if (version !== FORMAT_VERSION) throw bad(`unsupported format version ${version} (this version reads ${FORMAT_VERSION})`);
    const layout = histogramLayout(schema);
    const columns = view.getUint32(8, true);
    const cells = view.getUint32(12, true);
    const rounds = view.getUint32(16, true);
    if (columns !== layout.columns) throw bad(`it has ${columns} columns, the schema ${layout.columns}`);
    if (cells !== layout.total) throw bad(`it has ${cells} cells, the schema's layout ${layout.total}`);
    if (bytes.length < HEADER_BYTES + 4 * columns) throw bad("truncated");
    let pos = HEADER_BYTES;
    for (let j = 0; j < columns; j++, pos += 4) {
      const size = view.getUint32(pos, true);
      if (size !== layout.sizes[j]) throw bad(`column '${schema.columns[j].name}' has ${size} cells, the schema ${layout.sizes[j]}`);
    }
    const expected = serializedLength(layout, rounds);
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
    return buildModel(schema, layout, roundSums, roundContributors);
  },
};
