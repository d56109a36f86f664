/**
 * From a float update to the integers secure aggregation adds, and back.
 *
 *   clip to L2 norm c (reported, never silent) → scale by 1/γ → stochastic rounding to integers (unbiased,
 *   from the OS CSPRNG) → [the caller adds its integer noise, |noise| ≤ B per coordinate] → two's
 *   complement words in Z_2^32 → masked, summed → the sum read as signed 32-bit integers × γ.
 *
 * The sum can never wrap: `planQuantization` picks γ so that n sites each at the largest magnitude they
 * can produce, ceil(c/γ) + B per coordinate, still sum to less than 2^31 in absolute value, and
 * `embedInRing` refuses any vector that is outside that bound (e.g. noise larger than declared).
 */
import { randomFillSync } from "node:crypto";
import { FedsynthError } from "../errors.js";

const INT32_MAX = 2 ** 31 - 1;
const TWO_POW_32 = 2 ** 32;
const RANDOM_CHUNK = 16384;

export interface QuantizationPlan {
  clipNorm: number;
  dimension: number;
  sites: number;
  /** Largest |integer noise| a site adds to any coordinate. */
  noiseBound: number;
  /** Quantization step: an integer k stands for k·γ. A power of two, so scaling and decoding are exact. */
  gamma: number;
  /** Largest |coordinate| of one site's integer vector: ceil(c/γ) + noiseBound. */
  maxAbsPerSite: number;
  /** sites · maxAbsPerSite ≤ 2^31 − 1: the sum's headroom. */
  maxAbsSum: number;
  /** Bound on the L2 norm of a site's rounded vector before noise, c/γ + √d (each coordinate moves by < 1), for calibrating integer noise. */
  roundedNormBound: number;
}

export interface PlanInput {
  clipNorm: number;
  dimension: number;
  sites: number;
  noiseBound: number;
}

/**
 * The finest power-of-two γ whose sum of `sites` vectors cannot wrap around. A vector clipped to L2 norm
 * c has every |coordinate| ≤ c, so after scaling and rounding every |coordinate| ≤ ceil(c/γ); that bound
 * is what makes the headroom hold whatever the dimension.
 */
export function planQuantization(input: PlanInput): QuantizationPlan {
  const { clipNorm, dimension, sites, noiseBound } = input;
  if (!(clipNorm > 0) || !Number.isFinite(clipNorm)) throw new FedsynthError("invalid-argument", `the clipping norm must be a positive number, not ${clipNorm}`);
  if (!Number.isInteger(dimension) || dimension < 1 || dimension > 0xffffffff) {
    throw new FedsynthError("invalid-argument", `the dimension must be a whole number from 1 to 2^32 − 1, not ${dimension}`);
  }
  if (!Number.isInteger(sites) || sites < 1) throw new FedsynthError("invalid-argument", `the number of sites must be a positive whole number, not ${sites}`);
  if (!Number.isInteger(noiseBound) || noiseBound < 0) throw new FedsynthError("invalid-argument", `the noise bound must be a whole number ≥ 0, not ${noiseBound}`);
  const perSiteBudget = Math.floor(INT32_MAX / sites) - noiseBound;
  if (perSiteBudget < 1) {
    throw new FedsynthError("invalid-argument", `${sites} sites each adding integer noise up to ${noiseBound} can overflow a 32-bit sum before any data is added`, {
      hint: `keep sites × (noise bound + 1) below 2^31, i.e. the noise bound below ${Math.floor(INT32_MAX / sites) - 1}`,
    });
  }
  let gamma = 2 ** Math.ceil(Math.log2(clipNorm / perSiteBudget));
  while (Math.ceil(clipNorm / gamma) > perSiteBudget) gamma *= 2;
  while (Math.ceil(clipNorm / (gamma / 2)) <= perSiteBudget) gamma /= 2;
  const maxAbsPerSite = Math.ceil(clipNorm / gamma) + noiseBound;
  return {
    clipNorm,
    dimension,
    sites,
    noiseBound,
    gamma,
    maxAbsPerSite,
    maxAbsSum: sites * maxAbsPerSite,
    roundedNormBound: clipNorm / gamma + Math.sqrt(dimension),
  };
}

export interface ClipResult {
  vector: Float64Array;
  /** The L2 norm before clipping. */
  norm: number;
  /** Whether the vector was scaled down to the clipping norm. */
  clipped: boolean;
}

/** Scales `vector` down to L2 norm `clipNorm` if it is longer; a copy either way. */
export function clipL2(vector: ArrayLike<number>, clipNorm: number): ClipResult {
  if (!(clipNorm > 0) || !Number.isFinite(clipNorm)) throw new FedsynthError("invalid-argument", `the clipping norm must be a positive number, not ${clipNorm}`);
  const out = Float64Array.from(vector);
  let sumSq = 0;
  for (let i = 0; i < out.length; i++) {
    const v = out[i];
    if (!Number.isFinite(v)) throw new FedsynthError("invalid-argument", `the update has a non-finite value (${v}) at position ${i}`);
    sumSq += v * v;
  }
  const norm = Math.sqrt(sumSq);
  if (!Number.isFinite(norm)) throw new FedsynthError("invalid-argument", "the update's norm overflows a double");
  if (norm <= clipNorm) return { vector: out, norm, clipped: false };
  const scale = clipNorm / norm;
  for (let i = 0; i < out.length; i++) out[i] *= scale;
  return { vector: out, norm, clipped: true };
}

/**
 * Integers k_i with E[k_i] = v_i/γ exactly (up to the 2^-32 resolution of the uniforms): floor(v_i/γ),
 * plus one with probability equal to the fractional part. Coordinates are first held to ±c/γ, so float
 * rounding in an earlier clip can never push one past the plan's bound.
 */
export function stochasticRound(vector: ArrayLike<number>, plan: QuantizationPlan): Int32Array {
  if (vector.length !== plan.dimension) {
    throw new FedsynthError("invalid-argument", `the update has ${vector.length} values but the quantization plan is for ${plan.dimension}`);
  }
  const limit = plan.clipNorm / plan.gamma;
  const inv = 1 / plan.gamma;
  const out = new Int32Array(vector.length);
  const uniforms = new Uint32Array(Math.min(RANDOM_CHUNK, vector.length));
  for (let off = 0; off < vector.length; off += uniforms.length) {
    const n = Math.min(uniforms.length, vector.length - off);
    randomFillSync(uniforms);
    for (let i = 0; i < n; i++) {
      const v = vector[off + i];
      if (!Number.isFinite(v)) throw new FedsynthError("invalid-argument", `the update has a non-finite value (${v}) at position ${off + i}`);
      let z = v * inv;
      if (z > limit) z = limit;
      else if (z < -limit) z = -limit;
      const floor = Math.floor(z);
      out[off + i] = floor + (uniforms[i] < (z - floor) * TWO_POW_32 ? 1 : 0);
    }
  }
  return out;
}

/**
 * Two's complement words for secure aggregation. Refuses a coordinate beyond the plan's per-site bound,
 * because that is the one thing that could make the sum wrap around and decode to garbage.
 */
export function embedInRing(values: Int32Array, plan: QuantizationPlan): Uint32Array {
  if (values.length !== plan.dimension) {
    throw new FedsynthError("invalid-argument", `the vector has ${values.length} values but the quantization plan is for ${plan.dimension}`);
  }
  const bound = plan.maxAbsPerSite;
  const out = new Uint32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v > bound || v < -bound) {
      throw new FedsynthError("invalid-argument", `coordinate ${i} is ${v}, beyond the plan's per-site bound ±${bound} (clip ${plan.clipNorm}, γ = ${plan.gamma}, noise bound ${plan.noiseBound}); the sum of ${plan.sites} sites could wrap around`, {
        hint: "clip and round with this plan, and keep the integer noise within the declared noise bound",
      });
    }
    out[i] = v >>> 0;
  }
  return out;
}

/** The float vector a sum of embedded vectors stands for: each word read as a signed 32-bit integer, times γ. */
export function decodeSum(sum: Uint32Array, plan: QuantizationPlan): Float64Array {
  if (sum.length !== plan.dimension) {
    throw new FedsynthError("invalid-argument", `the sum has ${sum.length} values but the quantization plan is for ${plan.dimension}`);
  }
  const out = new Float64Array(sum.length);
  const gamma = plan.gamma;
  for (let i = 0; i < sum.length; i++) out[i] = (sum[i] | 0) * gamma;
  return out;
}
