/**
 * Denoising of a numeric column's released bin counts, as post-processing (it reads only the noisy
 * counts and their public noise variance). At ε = 1 a heart-disease site's coarse cell carries Gaussian
 * noise of sd ≈ 10 on counts of a few tens, so a numeric column's 15–17 bins are mostly noise; the
 * densities behind them are smooth in the bin order, which categorical columns do not have. Whittaker
 * smoothing (penalised least squares on second differences) with its penalty chosen by Stein's unbiased
 * risk estimate — possible exactly because the noise variance is known — keeps a sharp bin (e.g. the
 * spike of oldpeak = 0) when the counts show it and flattens what is indistinguishable from noise.
 */

/** Penalties tried, from almost none to almost a straight line; SURE picks one per column. */
const LAMBDAS = Array.from({ length: 25 }, (_, k) => 10 ** (-2 + k / 4));
/** Past this many bins the dense solve is not worth it (schemas with that many bins have small noise per unit of mass anyway). */
export const MAX_SMOOTHED_BINS = 256;

/** Inverse of a symmetric positive definite matrix (row-major, n × n) by Gauss–Jordan. */
function inverse(a: Float64Array, n: number): Float64Array {
  const m = Float64Array.from(a);
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) inv[i * n + i] = 1;
  for (let col = 0; col < n; col++) {
    const pivot = m[col * n + col];
    for (let k = 0; k < n; k++) {
      m[col * n + k] /= pivot;
      inv[col * n + k] /= pivot;
    }
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = m[r * n + col];
      if (f === 0) continue;
      for (let k = 0; k < n; k++) {
        m[r * n + k] -= f * m[col * n + k];
        inv[r * n + k] -= f * inv[col * n + k];
      }
    }
  }
  return inv;
}

/**
 * The smoothed counts s = (I + λDᵀD)⁻¹c, D the second differences, with λ minimising SURE
 * ‖c − s‖² − n·v + 2v·tr(H). Returns the counts unchanged when there are too few or too many bins.
 */
export function smoothCounts(counts: ArrayLike<number>, variance: number): Float64Array {
  const n = counts.length;
  const c = Float64Array.from(counts);
  if (n < 4 || n > MAX_SMOOTHED_BINS || !(variance > 0) || !Number.isFinite(variance)) return c;
  // DᵀD of the second-difference operator.
  const dtd = new Float64Array(n * n);
  for (let r = 0; r + 2 < n; r++) {
    const row = [r, r + 1, r + 2];
    const w = [1, -2, 1];
    for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) dtd[row[a] * n + row[b]] += w[a] * w[b];
  }
  let best = c;
  let bestRisk = 2 * variance * n; // λ = 0: s = c, risk n·v (SURE: 0 − n·v + 2v·n)
  for (const lambda of LAMBDAS) {
    const a = new Float64Array(n * n);
    for (let i = 0; i < n * n; i++) a[i] = lambda * dtd[i];
    for (let i = 0; i < n; i++) a[i * n + i] += 1;
    const h = inverse(a, n);
    const s = new Float64Array(n);
    let trace = 0;
    for (let i = 0; i < n; i++) {
      trace += h[i * n + i];
      for (let k = 0; k < n; k++) s[i] += h[i * n + k] * c[k];
    }
    let rss = 0;
    for (let i = 0; i < n; i++) rss += (c[i] - s[i]) ** 2;
    const risk = rss + 2 * variance * trace;
    if (risk < bestRisk) {
      bestRisk = risk;
      best = s;
    }
  }
  return best;
}
