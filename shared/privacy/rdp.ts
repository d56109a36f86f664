/**
 * Rényi differential privacy (RDP) of the Poisson-subsampled Gaussian mechanism (DP-SGD), and the
 * conversion of an RDP curve to (ε, δ)-DP.
 *
 * 1. The sampled Gaussian mechanism (SGM) with sampling rate q and noise multiplier σ satisfies, at every
 *    order α > 1, (α, log(A_α)/(α − 1))-RDP with
 *        A_α = E_{z∼μ0}[(μ(z)/μ0(z))^α],   μ0 = 𝒩(0, σ²),   μ = (1 − q)·𝒩(0, σ²) + q·𝒩(1, σ²)
 *    (Mironov, Talwar & Zhang, "Rényi Differential Privacy of the Sampled Gaussian Mechanism", 2019,
 *    Section 3.3). A_α is computed exactly as in tensorflow-privacy's rdp_accountant.py and Opacus's
 *    opacus/accountants/analysis/rdp.py:
 *      - integer α (`_compute_log_a_int`):  A_α = Σ_{i=0..α} C(α,i) q^i (1−q)^{α−i} e^{(i²−i)/(2σ²)};
 *      - fractional α (`_compute_log_a_frac`): with z0 = σ² log(1/q − 1) + 1/2 and j = α − i,
 *          A_α = Σ_{i≥0} C(α,i) [ q^i (1−q)^j e^{(i²−i)/(2σ²)} · ½erfc((i − z0)/(√2σ))
 *                               + q^j (1−q)^i e^{(j²−j)/(2σ²)} · ½erfc((z0 − j)/(√2σ)) ],
 *        summed in log space until both terms fall below e^{−30}.
 *    Special cases as there: q = 0 costs 0, q = 1 is the plain Gaussian mechanism (α/(2σ²)), σ = 0 is ∞.
 *    Composition: RDP at a fixed order adds up over mechanisms (T steps cost T times one step).
 *
 * 2. Conversion (Balle, Barthe, Gaboardi, Hsu & Sato, "Hypothesis Testing Interpretations and Rényi
 *    Differential Privacy", AISTATS 2020, Theorem 21; Opacus's `get_privacy_spent`): an (α, ρ)-RDP
 *    mechanism is (ε, δ)-DP with
 *        ε = ρ − (log δ + log α)/(α − 1) + log((α − 1)/α),
 *    minimised over the orders. (The classical conversion ε = ρ + log(1/δ)/(α − 1), Mironov 2017, is
 *    looser by log α/(α−1) − log(1 − 1/α) > 0 at every order.)
 *
 * Safety. Every value here is an upper bound on the exact one, as in gaussian.ts: the series for A_α is
 * summed with a running bound on its rounding error (each term's logarithm is formed from a handful of
 * exactly bounded operations, plus W. J. Cody's normal integral, accurate to ~1e-14), and truncating the
 * fractional series is bounded rigorously: writing its terms as
 *     ½(1−q)^α e^{−z0²/(2σ²)} · |C(α,i)| · g(x_i),   g(x) = e^{x²} erfc(x) (decreasing), x_i increasing in i,
 * both parts have decreasing magnitudes and alternating signs once i > α, so the omitted tail is smaller
 * than the last term summed, which is added on. The result is log(A_α + error bound). When the bound is
 * not small (extreme parameters), the order is reported as ∞, which only makes the conversion skip it.
 * Reported epsilons can therefore only be (very slightly) too high, never too low. In practice the RDP is
 * within ~1e-6 (relatively) of the exact value once it exceeds ~1e-8 per step; for per-step RDP near
 * 1e-10 (q/σ ≲ 1e-5) the allowance is a few per cent of it, which is far below anything the conversion's
 * log(1/δ)/(α − 1) term leaves visible.
 */
import type { GaussianMechanism } from "./mechanism.js";
import { logNormalCdf } from "./gaussian.js";
import { FedsynthError } from "../errors.js";

/**
 * Opacus's `RDPAccountant.DEFAULT_ALPHAS`: [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)),
 * i.e. 1.1, 1.2, …, 10.9 and 12, 13, …, 63 (151 orders; the same doubles as Python's).
 */
export const DEFAULT_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, k) => 1 + (k + 1) / 10),
  ...Array.from({ length: 52 }, (_, k) => 12 + k),
]);

/** Unit roundoff of IEEE double precision. */
const U = 2 ** -53;
const LN_HALF = Math.log(0.5);
/** Terms of the fractional series below e^{−30} end it (as in tensorflow-privacy and Opacus). */
const LOG_TERM_CUTOFF = -30;
/** Hard stop for the fractional series (never reached for sensible parameters; the order is then ∞). */
const MAX_TERMS = 10_000_000;

function invalid(message: string, hint?: string): FedsynthError {
  return new FedsynthError("invalid-argument", message, { hint });
}

// ---------------------------------------------------------------------------------------------------
// Log-space arithmetic
// ---------------------------------------------------------------------------------------------------

/** log(e^a + e^b), without overflow (−∞ stands for 0). */
export function logAdd(a: number, b: number): number {
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  if (lo === -Infinity) return hi;
  if (hi === Infinity) return Infinity;
  return Math.log1p(Math.exp(lo - hi)) + hi;
}

/** log(e^a − e^b) for a ≥ b (−∞ stands for 0). Throws a RangeError when a < b. */
export function logSub(a: number, b: number): number {
  if (a < b) throw new RangeError(`logSub: the result would be negative (log ${a} − log ${b})`);
  if (b === -Infinity) return a;
  if (a === b) return -Infinity;
  const d = a - b;
  // log(e^a − e^b) = b + log(expm1(a − b)), and for large a − b, a + log1p(−e^{b−a}).
  return d > 30 ? a + Math.log1p(-Math.exp(-d)) : b + Math.log(Math.expm1(d));
}

/** log erfc(x), accurate in both tails (erfc(x) = 2Φ(−x√2), with Cody's normal integral). */
export function logErfc(x: number): number {
  return Math.LN2 + logNormalCdf(-x * Math.SQRT2);
}

// ---------------------------------------------------------------------------------------------------
// A_α with a rigorous error bound
// ---------------------------------------------------------------------------------------------------

/** log A_α (best estimate) and the log of an upper bound on |computed − exact| (both natural logs). */
interface LogA {
  logA: number;
  logError: number;
}

/** log(e^η − 1) for a log-space relative error η ≥ 0 (how much a term may be too small, relatively). */
function logRelative(eta: number): number {
  return eta > 700 ? eta : Math.log(Math.expm1(eta));
}

/** A log-space running sum of positive terms, with a bound on the error its additions have made. */
interface LogAccumulator {
  /** log of the sum so far (−∞ when empty). */
  log: number;
  /** Bound on |computed log − log of the exact sum of the terms added|, from the additions' rounding. */
  error: number;
}

/** Adds e^s to the accumulator, tracking the rounding of logAdd (see `SignedLogSum`). */
function accumulate(acc: LogAccumulator, s: number): void {
  const lo = Math.min(acc.log, s);
  const hi = Math.max(acc.log, s);
  acc.log = logAdd(acc.log, s);
  if (lo === -Infinity) return;
  // logAdd = log1p(w) + hi with w = e^{lo − hi} ≤ 1: lo − hi is rounded (relatively, by u), which moves
  // log1p(w) by at most u·w·|lo − hi|; exp and log1p add an ulp each (≤ u·w), and the final addition one
  // rounding of the result. (Doubled, for good measure.)
  const w = Math.exp(lo - hi);
  acc.error += 2 * U * Math.abs(acc.log) + 4 * U * w * (2 + Math.abs(lo) + Math.abs(hi));
}

/**
 * Running log-space sums of the positive and of the negative terms of a series, with a bound on the
 * total error: each term's own error (its logarithm may be off by η, given by the caller) and the
 * rounding of every log-space addition.
 */
class SignedLogSum {
  private readonly pos: LogAccumulator = { log: -Infinity, error: 0 };
  private readonly neg: LogAccumulator = { log: -Infinity, error: 0 };
  private logTermError = -Infinity;

  /** Adds ±e^s, where s may be off by at most η (absolute, in log space). */
  add(s: number, negative: boolean, eta: number): void {
    if (s === -Infinity) return;
    accumulate(negative ? this.neg : this.pos, s);
    this.logTermError = logAdd(this.logTermError, s + logRelative(2 * eta + 4 * U));
  }

  /** log(Σ) and the log of a bound on its total error, plus `logExtra` (e.g. a truncated tail). */
  result(logExtra = -Infinity): LogA {
    const a = this.pos.log;
    const b = this.neg.log;
    if (!(a > b)) return { logA: NaN, logError: Infinity };
    const logA = logSub(a, b);
    // logSub: a − b is rounded by u·|a − b|, which the slope 1/(1 − e^{b−a}) of log(e^d − 1) magnifies;
    // expm1/log1p and log add an ulp each, and the final addition one rounding of the result.
    const subError = b === -Infinity ? 0 : 2 * U * (4 + 2 * Math.abs(logA) + (Math.abs(a) + Math.abs(b)) / -Math.expm1(b - a) + Math.abs(logA - b));
    // |Pos − Neg − (P̂os − N̂eg)| ≤ Pos·(e^{errPos} − 1) + Neg·(e^{errNeg} − 1), and the same for logSub.
    const additions = logAdd(a + logRelative(this.pos.error), b === -Infinity ? -Infinity : b + logRelative(this.neg.error));
    const last = subError === 0 ? -Infinity : logA + logRelative(subError);
    return { logA, logError: logAdd(logAdd(this.logTermError, additions), logAdd(last, logExtra)) };
  }
}

function checkQSigma(q: number, sigma: number): void {
  if (typeof q !== "number" || !(q >= 0 && q <= 1)) {
    throw invalid(`samplingRate must be a number in [0, 1], got ${String(q)}`, "The Poisson sampling rate q is the probability that a record takes part in a step.");
  }
  if (typeof sigma !== "number" || Number.isNaN(sigma) || sigma < 0) {
    throw invalid(`noiseMultiplier must be a number >= 0, got ${String(sigma)}`, "The noise multiplier is the noise standard deviation divided by the clipping norm.");
  }
}

function checkOrder(alpha: number): void {
  if (typeof alpha !== "number" || Number.isNaN(alpha) || !(alpha > 1)) {
    throw invalid(`RDP order alpha must be a number > 1, got ${String(alpha)}`);
  }
}

/** Integer α: Σ_{i=0..α} C(α,i) q^i (1−q)^{α−i} e^{(i²−i)/(2σ²)}, all terms positive. 0 < q < 1, σ > 0. */
function logAIntegerBounded(q: number, sigma: number, alpha: number): LogA {
  const logq = Math.log(q);
  const log1mq = Math.log1p(-q);
  const twoSigmaSq = 2 * sigma * sigma;
  const sum = new SignedLogSum();
  let logCoef = 0; // log C(α, i), accumulated as Σ log((α − k + 1)/k)
  let coefError = 0;
  for (let i = 0; i <= alpha; i++) {
    if (i > 0) {
      const step = Math.log(alpha - i + 1) - Math.log(i);
      logCoef += step;
      coefError += 3 * U * (Math.abs(logCoef) + Math.log(alpha - i + 1) + Math.log(i) + 1);
    }
    const j = alpha - i;
    const a = i * logq;
    const b = j * log1mq;
    const quad = (i * i - i) / twoSigmaSq;
    const s = logCoef + a + b + quad;
    const parts = Math.abs(logCoef) + Math.abs(a) + Math.abs(b) + quad;
    const eta = coefError + 3 * U * (Math.abs(a) + Math.abs(b)) + 6 * U * quad + 4 * U * parts;
    sum.add(s, false, eta);
  }
  return sum.result();
}

/**
 * Fractional α (also correct at integer α, where C(α, i) = 0 for i > α ends the sum). 0 < q < 1, σ > 0.
 */
function logAFractionalBounded(q: number, sigma: number, alpha: number): LogA {
  const logq = Math.log(q);
  const log1mq = Math.log1p(-q);
  const twoSigmaSq = 2 * sigma * sigma;
  const sqrt2Sigma = Math.SQRT2 * sigma;
  const logOdds = log1mq - logq; // log(1/q − 1)
  const z0 = sigma * sigma * logOdds + 0.5;
  const z0Error = sigma * sigma * (3 * U * (Math.abs(log1mq) + Math.abs(logq)) + 2 * U * Math.abs(logOdds)) + U * Math.abs(z0);
  const sum = new SignedLogSum();

  /** log(½ erfc(x)) for x = num/(√2σ), with a bound on its error given the error of num. */
  const halfErfc = (num: number, numError: number): [number, number] => {
    const x = num / sqrt2Sigma;
    const logE = LN_HALF + logErfc(x);
    const xError = (numError + U * Math.abs(num)) / sqrt2Sigma + 4 * U * Math.abs(x);
    // The slope of log erfc at x' is 2e^{−x'²}/(√π erfc(x')): at most 1.13·e^{−x'²} for x' ≤ 0 and at
    // most 2x' + 2 for x' ≥ 0.
    const far = x + xError;
    const slope = far < 0 ? 1.13 * Math.exp(-far * far) : 2 * (Math.abs(x) + xError) + 2;
    // Evaluation: Cody's normal integral is accurate to far better than 1e-13 relatively. For x ≤ 0,
    // log erfc(x) = log 2 + log1p(−Φ(x√2)) with Φ(x√2) ≤ ½e^{−x²}, so its error is scaled down by that.
    const evalError = x <= 0 ? (1e-13 + 4 * U * (x * x + 2)) * Math.exp(-x * x) + 4 * U : 1e-13 + 4 * U * (1 + Math.abs(logE));
    return [logE, evalError + slope * xError];
  };

  let logCoef = 0; // log |C(α, i)|
  let negative = false; // sign of C(α, i)
  let coefError = 0;
  for (let i = 0; ; i++) {
    if (i > 0) {
      const factor = alpha - (i - 1); // C(α, i) = C(α, i − 1)·(α − i + 1)/i
      if (factor === 0) return sum.result(); // integer α: every further coefficient is 0
      if (factor < 0) negative = !negative;
      logCoef += Math.log(Math.abs(factor)) - Math.log(i);
      coefError += 3 * U * (Math.abs(logCoef) + Math.abs(Math.log(Math.abs(factor))) + Math.log(i) + 1) + U * (alpha + i) / Math.abs(factor);
    }
    const j = alpha - i;
    const t0a = i * logq;
    const t0b = j * log1mq;
    const t1a = j * logq;
    const t1b = i * log1mq;
    const quad0 = (i * i - i) / twoSigmaSq;
    const quad1 = (j * j - j) / twoSigmaSq;
    const [e0, e0Error] = halfErfc(i - z0, z0Error);
    const [e1, e1Error] = halfErfc(z0 - j, z0Error + U * (alpha + i));
    const s0 = logCoef + t0a + t0b + quad0 + e0;
    const s1 = logCoef + t1a + t1b + quad1 + e1;
    const parts0 = Math.abs(logCoef) + Math.abs(t0a) + Math.abs(t0b) + Math.abs(quad0) + Math.abs(e0);
    const parts1 = Math.abs(logCoef) + Math.abs(t1a) + Math.abs(t1b) + Math.abs(quad1) + Math.abs(e1);
    const jError = U * (alpha + i); // j = α − i is rounded
    const eta0 = coefError + 3 * U * (Math.abs(t0a) + Math.abs(t0b)) + jError * Math.abs(log1mq) + 6 * U * Math.abs(quad0) + e0Error + 5 * U * parts0;
    const eta1 =
      coefError + 3 * U * (Math.abs(t1a) + Math.abs(t1b)) + jError * (Math.abs(logq) + (2 * Math.abs(j) + 1) / twoSigmaSq) +
      6 * U * (Math.abs(quad1) + (j * j + Math.abs(j)) / twoSigmaSq) + e1Error + 5 * U * parts1;
    sum.add(s0, negative, eta0);
    sum.add(s1, negative, eta1);
    if (i > alpha && Math.max(s0, s1) < LOG_TERM_CUTOFF) {
      // Past α the terms alternate in sign and shrink, so the omitted tail is below this last term.
      const tail = logAdd(s0 + 4 * eta0 + 1e-12, s1 + 4 * eta1 + 1e-12);
      return sum.result(tail);
    }
    if (i >= MAX_TERMS) return { logA: NaN, logError: Infinity };
  }
}

function checkOpenQ(q: number, sigma: number, alpha: number): void {
  checkQSigma(q, sigma);
  checkOrder(alpha);
  if (!(q > 0 && q < 1) || !(sigma > 0) || !Number.isFinite(sigma) || !Number.isFinite(alpha)) {
    throw invalid(`the A_alpha series needs 0 < q < 1, 0 < sigma < ∞ and a finite order (got q=${q}, sigma=${sigma}, alpha=${alpha})`);
  }
}

/**
 * log A_α of the sampled Gaussian mechanism by the integer-order formula (tensorflow-privacy's
 * `_compute_log_a_int`): a best estimate, for 0 < q < 1, σ > 0 and an integer α ≥ 2.
 */
export function logAInteger(q: number, sigma: number, alpha: number): number {
  checkOpenQ(q, sigma, alpha);
  if (!Number.isInteger(alpha)) throw invalid(`logAInteger needs an integer order, got ${alpha}`);
  return logAIntegerBounded(q, sigma, alpha).logA;
}

/**
 * log A_α of the sampled Gaussian mechanism by the fractional-order formula (tensorflow-privacy's
 * `_compute_log_a_frac`): a best estimate, for 0 < q < 1, σ > 0 and any order α > 1 (at an integer α it
 * agrees with `logAInteger`).
 */
export function logAFractional(q: number, sigma: number, alpha: number): number {
  checkOpenQ(q, sigma, alpha);
  return logAFractionalBounded(q, sigma, alpha).logA;
}

/**
 * An upper bound on the RDP at order α > 1 of ONE step of the sampled Gaussian mechanism with sampling
 * rate q ∈ [0, 1] and noise multiplier σ ≥ 0: log(A_α)/(α − 1), by the integer formula at integer orders
 * and the fractional one otherwise (as tensorflow-privacy and Opacus). q = 0 gives 0; q = 1 gives
 * α/(2σ²); σ = 0 or α = ∞ gives ∞ (as does a parameter set whose rounding cannot be bounded tightly).
 */
export function subsampledGaussianRdp(q: number, sigma: number, alpha: number): number {
  checkQSigma(q, sigma);
  checkOrder(alpha);
  if (q === 0) return 0;
  if (sigma === 0) return Infinity;
  if (q === 1) return (alpha / (2 * sigma * sigma)) * (1 + 4 * U);
  if (alpha === Infinity || sigma === Infinity) return sigma === Infinity ? 0 : Infinity;
  const { logA, logError } = Number.isInteger(alpha) ? logAIntegerBounded(q, sigma, alpha) : logAFractionalBounded(q, sigma, alpha);
  if (Number.isNaN(logA)) return Infinity;
  // The bound must be tight enough to be worth reporting: its error below 1e-6 of A_α (which is ≥ 1).
  if (!(logError < logA + Math.log(1e-6))) return Infinity;
  const upper = logAdd(logA, logError);
  // The division adds one rounding; α − 1 is exact or within an ulp.
  return (Math.max(0, upper) / (alpha - 1)) * (1 + 4 * U);
}

export interface SubsampledGaussianParams {
  samplingRate: number;
  noiseMultiplier: number;
  steps: number;
}

/**
 * RDP (upper bounds) of `steps` steps of the sampled Gaussian mechanism at each order: Opacus's
 * `compute_rdp(q, noise_multiplier, steps, orders)`.
 */
export function subsampledGaussianRdpCurve(p: SubsampledGaussianParams, orders: readonly number[] = DEFAULT_ORDERS): number[] {
  const { samplingRate, noiseMultiplier, steps } = p;
  if (typeof steps !== "number" || !Number.isSafeInteger(steps) || steps < 0) {
    throw invalid(`steps must be a whole number >= 0, got ${String(steps)}`);
  }
  return orders.map((alpha) => {
    const perStep = subsampledGaussianRdp(samplingRate, noiseMultiplier, alpha);
    return perStep === 0 || steps === 0 ? 0 : perStep * steps * (1 + 2 * U);
  });
}

/**
 * RDP (upper bounds) of applying Gaussian mechanisms, at each order: the Gaussian mechanism with
 * sensitivity Δ and noise σ is (α, αΔ²/(2σ²))-RDP exactly (Mironov 2017), and RDP composes additively,
 * so the composition is (α, α·Σ reps·(Δ/σ)²/2)-RDP.
 */
export function gaussianRdp(mechanisms: readonly GaussianMechanism[], orders: readonly number[] = DEFAULT_ORDERS): number[] {
  let sum = 0;
  for (const m of mechanisms) {
    const ratio = m.l2Sensitivity / m.sigma;
    sum += m.repetitions * ratio * ratio;
  }
  const slack = 1 + 8 * U * (mechanisms.length + 4);
  return orders.map((alpha) => ((alpha * sum) / 2) * slack);
}

export interface RdpEpsilon {
  /** The smallest ε over the orders (≥ 0; ∞ when no order gives a finite value). */
  epsilon: number;
  /** The order attaining it (NaN when epsilon is ∞). */
  order: number;
}

/**
 * (ε, δ)-DP from an RDP curve, by Balle et al. 2020, Theorem 21 (Opacus's `get_privacy_spent`):
 * ε = min over orders α > 1 of ρ(α) − (log δ + log α)/(α − 1) + log((α − 1)/α), clamped at 0.
 * Orders ≤ 1 and non-finite values (NaN, ∞) are skipped. Each candidate carries an allowance for its
 * rounding, so the result is an upper bound.
 */
export function rdpToEpsilon(orders: readonly number[], rdp: readonly number[], delta: number): RdpEpsilon {
  if (!Array.isArray(orders) || !Array.isArray(rdp) || orders.length !== rdp.length) {
    throw invalid(`rdpToEpsilon needs as many RDP values as orders (got ${(orders as unknown[])?.length} orders and ${(rdp as unknown[])?.length} values)`);
  }
  if (typeof delta !== "number" || !Number.isFinite(delta) || delta <= 0 || delta >= 1) {
    throw invalid(`delta must lie strictly between 0 and 1, got ${String(delta)}`, "Use a small delta such as 1e-5.");
  }
  const logDelta = Math.log(delta);
  let best: RdpEpsilon = { epsilon: Infinity, order: NaN };
  for (let k = 0; k < orders.length; k++) {
    const alpha = orders[k];
    const rho = rdp[k];
    if (!(alpha > 1) || !Number.isFinite(alpha) || !Number.isFinite(rho)) continue;
    if (rho < 0) throw invalid(`an RDP value must be >= 0, got ${rho} at order ${alpha}`);
    const b = (logDelta + Math.log(alpha)) / (alpha - 1);
    const c = Math.log1p(-1 / alpha);
    const eps = rho - b + c + 8 * U * (rho + Math.abs(b) + Math.abs(c) + 1);
    const clamped = Math.max(0, eps);
    if (clamped < best.epsilon) best = { epsilon: clamped, order: alpha };
  }
  return best;
}
