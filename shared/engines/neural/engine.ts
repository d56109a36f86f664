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
import type { Engine, JsonObject, StudyPrivacy, TaskContext } from "../engine.js";
import { encodeTable, encodingFor, type Encoding } from "./encoding.js";
import { flattenParams, initParams, madeMasks, parameterCount, type MadeMasks, type MadeShape } from "./made.js";

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
  hidden: number;
  samplingRate: number;
  stepsPerRound: number;
  clipNorm: number;
  learningRate: number;
  noiseMultiplier: number;
  /** σ of the Gaussian noise on each site's row count (sensitivity 1), released every round. */
  countSigma: number;
  /** countSigma = countNoiseRatio × noiseMultiplier: the count's share of the budget is fixed for any ε. */
  countNoiseRatio: number;
  initSeed: number;
}

export const NEURAL_DEFAULTS = {
  hidden: 64,
  samplingRate: 0.2,
  stepsPerRound: 25,
  clipNorm: 1,
  learningRate: 0.01,
  countNoiseRatio: 10,
  initSeed: 20261122,
};

export interface NeuralModel {
  shape: MadeShape;
  encoding: Encoding;
  masks: MadeMasks;
  params: Float32Array;
  rounds: number;
}

function config(json: JsonObject): NeuralConfig {
  return json as unknown as NeuralConfig;
}

function roundMechanisms(c: NeuralConfig, sigma: number, rounds: number): Mechanism[] {
  return [
    { kind: "subsampled-gaussian", samplingRate: c.samplingRate, noiseMultiplier: sigma, steps: c.stepsPerRound * rounds, clipNorm: c.clipNorm },
    { kind: "gaussian", l2Sensitivity: 1, sigma: c.countSigma, repetitions: rounds },
  ] as Mechanism[];
}

function modelOf(schema: Schema, c: NeuralConfig, params?: Float32Array, rounds = 0): NeuralModel {
  const encoding = encodingFor(schema);
  const shape: MadeShape = { width: encoding.width, hidden: c.hidden };
  return { shape, encoding, masks: madeMasks(encoding, c.hidden), params: params ?? flattenParams(initParams(shape, new SeededRng(c.initSeed))), rounds };
}

export const neuralEngine: Engine<NeuralModel> = {
  name: NEURAL_ENGINE_NAME,
  description: "MADE (masked autoregressive network) trained with DP-SGD at each site, federated averaging",

  async prepare(): Promise<void> {
    const { initTensorflow } = await import("../../tf/backend.js");
    await initTensorflow();
    runtime ??= await import("./runtime.js");
  },

  configure(schema: Schema, privacy: StudyPrivacy): JsonObject {
    const base = { ...NEURAL_DEFAULTS };
    const settings = (sigma: number): NeuralConfig => ({ ...base, noiseMultiplier: sigma, countSigma: base.countNoiseRatio * sigma });
    const noiseMultiplier = calibrateSigma({
      epsilon: privacy.epsilon, delta: privacy.delta,
      mechanismsForSigma: (sigma) => roundMechanisms(settings(sigma), sigma, privacy.rounds),
    });
    void schema;
    return settings(noiseMultiplier) as unknown as JsonObject;
  },

  init(schema: Schema, json: JsonObject): NeuralModel {
    return modelOf(schema, config(json));
  },

  planRound(): JsonObject {
    return {};
  },

  needsModel(): boolean {
    return true;
  },

  charge(ctx: TaskContext): Mechanism[] {
    const c = config(ctx.config);
    return roundMechanisms(c, c.noiseMultiplier, 1);
  },

  updateLength(ctx: TaskContext): number {
    const c = config(ctx.config);
    return parameterCount({ width: encodingFor(ctx.schema).width, hidden: c.hidden }) + 1;
  },

  localUpdate(ctx, model, table, noise): Float64Array {
    const { trainLocal } = requireRuntime();
    if (!model) throw new FedsynthError("internal", "the neural engine needs the pooled model to train from");
    const c = config(ctx.config);
    const rows = table.rowCount;
    // The count is released (noised) first; everything after it is post-processing of DP releases.
    const noisyCount = Math.max(1, rows + c.countSigma * gaussian(noise));
    const x = encodeTable(model.encoding, table);
    const { params } = trainLocal(model.shape, model.masks, model.encoding.blocks.length, model.params, x, rows, {
      samplingRate: c.samplingRate, steps: c.stepsPerRound, clipNorm: c.clipNorm, noiseMultiplier: c.noiseMultiplier, learningRate: c.learningRate,
    }, c.samplingRate * noisyCount, noise);
    const update = new Float64Array(params.length + 1);
    for (let i = 0; i < params.length; i++) update[i] = noisyCount * (params[i] - model.params[i]);
    update[params.length] = noisyCount;
    return update;
  },

  aggregate(model, sum): NeuralModel {
    const weight = sum[sum.length - 1];
    const params = Float32Array.from(model.params);
    if (weight > 0) for (let i = 0; i < params.length; i++) params[i] += sum[i] / weight;
    return { ...model, params, rounds: model.rounds + 1 };
  },

  sample(model, n, rng) {
    return requireRuntime().sampleRows(model.shape, model.masks, model.encoding, model.params, n, rng);
  },

  serialize(model): Uint8Array {
    const header = Buffer.from(JSON.stringify({ version: 1, width: model.shape.width, hidden: model.shape.hidden, rounds: model.rounds }));
    const out = Buffer.alloc(4 + header.length + model.params.byteLength);
    out.writeUInt32LE(header.length, 0);
    header.copy(out, 4);
    Buffer.from(model.params.buffer, model.params.byteOffset, model.params.byteLength).copy(out, 4 + header.length);
    return new Uint8Array(out);
  },

  deserialize(bytes, schema, json): NeuralModel {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const bad = (why: string) => new FedsynthError("invalid-argument", `not a usable neural model: ${why}`);
    if (buf.length < 4) throw bad("too short");
    const headerLength = buf.readUInt32LE(0);
    if (4 + headerLength > buf.length) throw bad("truncated header");
    let header: { version: number; width: number; hidden: number; rounds: number };
    try {
      header = JSON.parse(buf.toString("utf8", 4, 4 + headerLength));
    } catch {
      throw bad("unreadable header");
    }
    const c = config(json);
    const model = modelOf(schema, c, undefined, header.rounds);
    if (header.version !== 1 || header.width !== model.shape.width || header.hidden !== model.shape.hidden) {
      throw bad(`it was made for a different schema or network (width ${header.width}, hidden ${header.hidden})`);
    }
    const body = buf.subarray(4 + headerLength);
    if (body.byteLength !== model.params.byteLength) throw bad(`${body.byteLength} parameter bytes instead of ${model.params.byteLength}`);
    const params = new Float32Array(model.params.length);
    new Uint8Array(params.buffer).set(body);
    return { ...model, params };
  },
};
