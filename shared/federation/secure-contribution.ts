/**
 * A site's contribution on the integer grid of secure aggregation, and the coordinator's reading of the
 * unmasked sum. The engine fixes the grid (SecureGrid: γ, each site's noise share σ, per-coordinate
 * weights, a coordinate bound); this module is the one place where a float vector becomes ring words.
 *
 * Site: v = w ⊙ x, every coordinate clamped to ±coordinateBound (1-Lipschitz, so the sensitivity the
 * engine computed still holds; see privacy/distributed-noise.ts), scaled by 1/γ, rounded without bias,
 * plus an exact discrete Gaussian N_Z(0, σ²) from the OS CSPRNG, reduced mod 2^32.
 * Coordinator: each word of the sum read as a signed 32-bit integer (the plan leaves headroom so that the
 * true sum never wraps), times γ, divided by w.
 */
import { randomFillSync } from "node:crypto";
import type { SecureGrid } from "../engines/engine.js";
import { sampleDiscreteGaussian } from "../privacy/discrete-gaussian.js";
import { FedsynthError } from "../errors.js";

const TWO_POW_32 = 2 ** 32;
const CHUNK = 16384;

export interface EncodedContribution {
  words: Uint32Array;
  /** Coordinates whose weighted value exceeded the grid's bound and were clamped to it. */
  clamped: number;
}

export function encodeContribution(x: Float64Array, grid: SecureGrid): EncodedContribution {
  const d = x.length;
  if (grid.weights.length !== d) {
    throw new FedsynthError("internal", `the contribution has ${d} values but the secure-aggregation grid is for ${grid.weights.length}`);
  }
  const noise = new Int32Array(d);
  sampleDiscreteGaussian(noise, grid.sigma);
  const words = new Uint32Array(d);
  const uniforms = new Uint32Array(Math.min(CHUNK, d));
  const inv = 1 / grid.gamma;
  const bound = grid.coordinateBound;
  let clamped = 0;
  for (let off = 0; off < d; off += uniforms.length) {
    const n = Math.min(uniforms.length, d - off);
    randomFillSync(uniforms);
    for (let k = 0; k < n; k++) {
      const i = off + k;
      let v = grid.weights[i] * x[i];
      if (!Number.isFinite(v)) throw new FedsynthError("internal", `the contribution has a non-finite value at position ${i}`);
      if (v > bound) { v = bound; clamped++; } else if (v < -bound) { v = -bound; clamped++; }
      const z = v * inv;
      const floor = Math.floor(z);
      const rounded = floor + (uniforms[k] < (z - floor) * TWO_POW_32 ? 1 : 0);
      words[i] = (rounded + noise[i]) >>> 0;
    }
  }
  return { words, clamped };
}

export function decodeSum(sum: Uint32Array, grid: SecureGrid): Float64Array {
  if (sum.length !== grid.weights.length) {
    throw new FedsynthError("internal", `the unmasked sum has ${sum.length} words but the secure-aggregation grid is for ${grid.weights.length}`);
  }
  const out = new Float64Array(sum.length);
  for (let i = 0; i < sum.length; i++) out[i] = ((sum[i] | 0) * grid.gamma) / grid.weights[i];
  return out;
}
