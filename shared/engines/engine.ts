/**
 * The contract between the federation and a synthesizer. The coordinator and the agent drive an engine
 * without knowing its model: a round is planned from public parameters, each site returns a flat float64
 * vector of a length known in advance, and the coordinator only ever needs the sum of those vectors. That
 * shape lets secure aggregation, noise and chunked transfer treat every engine the same way.
 */
import type { Schema, Table, OutputRow } from "../schema/schema.js";
import type { Mechanism } from "../privacy/mechanism.js";
import type { Rng } from "../random/rng.js";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** What the consortium fixed for a study: each site's total budget and the number of rounds. */
export interface StudyPrivacy {
  epsilon: number;
  delta: number;
  rounds: number;
  /**
   * Present when the study sums the sites' updates under secure aggregation: each site then adds only its
   * share of the noise, and the charge is the released sum's (see shared/federation/secure-contribution.ts).
   */
  secureAggregation?: SecureAggregationSetting;
  /** How the rounds share the budget; absent: "equal". Only engines with `budgetSplit` accept "annealed". */
  budgetSplit?: BudgetSplit;
}

/**
 * How a study's rounds share each site's budget: "equal", fixed when the study is configured, or
 * "annealed", each round's share set by the coordinator when it plans the round (carried in the round
 * config, so that each site charges and checks it like any other), the last round taking exactly what the
 * study has left.
 */
export type BudgetSplit = "equal" | "annealed";

/** What `checkSamplingData` found: nothing stored beyond the released bytes, or whether the stored part holds. */
export type SamplingDataCheck = { stored: false; detail: string } | { stored: true; ok: boolean; detail: string };

/** A study's secure aggregation: t of the n invited sites must take part in every unmasked sum. */
export interface SecureAggregationSetting {
  threshold: number;
  sites: number;
}

/**
 * How a site's contribution is put on the integer grid of secure aggregation: the engine's plan, fixed
 * for the study and public. A site sends round(weights ⊙ x / gamma) + N_Z(0, sigma²) per coordinate;
 * the coordinator decodes the sum as gamma · sum / weights, which is Σ x plus noise of standard deviation
 * √contributors · sigma · gamma / weight in each coordinate.
 */
export interface SecureGrid {
  gamma: number;
  /** Each site's discrete Gaussian noise share in grid units. */
  sigma: number;
  /** Per-coordinate weights (the engine's relative noise levels: noise on x_i is proportional to 1/w_i). */
  weights: Float64Array;
  /** |w_i · x_i| ≤ this for every coordinate (larger values are clamped, and the clamping reported). */
  coordinateBound: number;
}

/** Everything public that a site needs to carry out, and charge, one round's task. */
export interface TaskContext {
  schema: Schema;
  privacy: StudyPrivacy;
  /** The engine's study-wide settings from `configure` (e.g. the calibrated noise scale). */
  config: JsonObject;
  /** 1-based round number. */
  round: number;
  /** Round-specific public parameters from `planRound`. */
  roundConfig: JsonObject;
}

export interface Engine<M = unknown> {
  readonly name: string;
  readonly description: string;

  /**
   * Readies what the engine's computations need (e.g. a TensorFlow.js backend). Callers await it before
   * `localUpdate` and `sample`; the other methods never need it.
   */
  prepare?(): Promise<void>;

  /**
   * Fixes the study's public engine settings so that `privacy.rounds` rounds cost each site at most
   * (epsilon, delta). Throws FedsynthError("invalid-argument") when the budget cannot be met.
   */
  configure(schema: Schema, privacy: StudyPrivacy): JsonObject;

  /**
   * The split a study's config was made with, for engines that can anneal their budget (configure accepts
   * privacy.budgetSplit "annealed"); an engine without it always splits equally and refuses "annealed".
   */
  budgetSplit?(config: JsonObject): BudgetSplit;

  /** Rounds a study gets when it does not say (default 1), with or without secure aggregation. */
  defaultRounds?(secure: boolean): number;

  /** The model before round 1. */
  init(schema: Schema, config: JsonObject): M;

  /** Round-specific public parameters, from the current pooled model. */
  planRound(model: M, ctx: Omit<TaskContext, "roundConfig">): JsonObject;

  /** Whether the site needs the current pooled model to carry out the task. */
  needsModel(ctx: TaskContext): boolean;

  /** The privacy charge of one site's task, computed from public parameters only. */
  charge(ctx: TaskContext): Mechanism[];

  /** Number of float64 values in a site's update. */
  updateLength(ctx: TaskContext): number;

  /**
   * A site's update: computed from its rows, already noised as `charge` says. `model` is null when
   * `needsModel` is false. `noise` must be a secure source.
   */
  localUpdate(ctx: TaskContext, model: M | null, table: Table, noise: Rng): Float64Array;

  /** The next pooled model from the element-wise sum of `contributors` sites' updates. */
  aggregate(model: M, sum: Float64Array, contributors: number, ctx: TaskContext): M;

  /** Synthetic rows, one string per schema column ("" for missing), as many as asked. */
  sample(model: M, n: number, rng: Rng): Iterable<OutputRow>;

  serialize(model: M): Uint8Array;
  deserialize(bytes: Uint8Array, schema: Schema, config: JsonObject): M;

  /**
   * The model's bytes for a model file that will be sampled (`fedsynth model export`): `serialize`'s, plus
   * whatever post-processing of them sampling would otherwise redo on every read (the marginal engine's
   * fitted model). `deserialize` reads them. For engines whose sampling starts at once from `serialize`'s
   * bytes, omit it. The coordinator stores and releases `serialize`'s bytes, which stay cheap to make.
   */
  serializeForSampling?(model: M): Uint8Array;

  /**
   * With serializeForSampling: the released bytes (`serialize`'s) within a model file's body, the bytes the
   * ledger's release entry hashes, so that an auditor can tie a file to its release (`fedsynth model
   * verify`). Without it, the body is the released bytes.
   */
  releasedBytes?(bytes: Uint8Array, schema: Schema): Uint8Array;

  /**
   * With serializeForSampling: whether what it added to the released bytes is what they imply (the
   * marginal engine refits its graphical model and compares), since sampling trusts it. Costs what
   * serializeForSampling's own work costs.
   */
  checkSamplingData?(model: M): SamplingDataCheck;

  /**
   * Secure aggregation with distributed noise, for engines that support it. When the study's config was
   * made with `privacy.secureAggregation`, `charge` is the released sum's and a site sends
   * `secureContribution` through the grid instead of `localUpdate`; `aggregate` receives the decoded sum.
   */
  secure?: SecureSupport<M>;
}

export interface SecureSupport<M> {
  /** Whether this study's config is for secure aggregation. */
  enabled(config: JsonObject): boolean;
  grid(ctx: TaskContext): SecureGrid;
  /** The site's contribution without noise (the grid adds its noise share), `updateLength` values. */
  contribution(ctx: TaskContext, model: M | null, table: Table): Float64Array;
}
