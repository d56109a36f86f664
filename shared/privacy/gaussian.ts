/**
 * Exact privacy of (compositions of) the Gaussian mechanism.
 *
 * 1. A Gaussian mechanism with L2 sensitivity Δ and noise standard deviation σ is μ-GDP with μ = Δ/σ, and
 *    GDP composes exactly: applying mechanisms i = 1..m (mechanism i `reps_i` times) is μ-GDP with
 *        μ = sqrt(Σ_i reps_i · (Δ_i/σ_i)²)
 *    (Dong, Roth & Su, "Gaussian Differential Privacy", 2019, Corollary 3.3).
 *
 * 2. μ-GDP is equivalent to (ε, δ(ε))-DP for every ε ≥ 0 with
 *        δ(ε) = Φ(−ε/μ + μ/2) − e^ε · Φ(−ε/μ − μ/2)
 *    (Dong, Roth & Su 2019, Corollary 2.13; the same curve is the "analytic Gaussian mechanism" of
 *    Balle & Wang, "Improving the Gaussian Mechanism for Differential Privacy", ICML 2018, Theorem 8).
 *    The curve is exact, hence tighter than the classical σ = Δ·sqrt(2 ln(1.25/δ))/ε bound.
 *
 * Numerics. With t1 = ε/μ − μ/2 and t2 = ε/μ + μ/2 we have t2² − t1² = 2ε, so with the scaled tail
 *        R(t) = e^{t²/2} · Φ(−t)          (decreasing, 0 < R ≤ 1/2 for t ≥ 0)
 * the second term is e^ε Φ(−t2) = e^{−t1²/2} R(t2), and
 *        δ(ε) = e^{−t1²/2} · (R(t1) − R(t2))                 when t1 ≥ 0,
 *        δ(ε) = 1 − e^{−t1²/2} · (R(−t1) + R(t2))             when t1 < 0 (t2 > 0 always, as ε ≥ 0).
 * No e^ε is ever formed, so nothing overflows for large ε, and δ is carried as a logarithm so that it
 * never underflows. R comes from W. J. Cody's rational Chebyshev approximations for the normal integral
 * ("Rational Chebyshev approximations for the error function", Math. Comp. 23, 1969; the coefficients are
 * those of his ANORM / CALERF routines, as used by R's pnorm), which give R directly (not as a quotient
 * of tiny numbers) with close to full double precision.
 *
 * Safety. The inversion `epsilonForDelta` never trusts the rounded value: it inverts an upper bound on
 * δ(ε) that allows for rounding in μ, in t1/t2, in R and in the cancellation R(t1) − R(t2), and it returns
 * the upper end of the final bisection bracket. Reported epsilons can only be (slightly) too high.
 */
import type { GaussianMechanism } from "./mechanism.js";
import { FedsynthError } from "../errors.js";

const SQRT_32 = 5.656854249492380195206754896838;
const ONE_OVER_SQRT_2PI = 0.398942280401432677939946059934;
/** Cody's split point for the central interval: Φ⁻¹(3/4). */
const CENTRAL_LIMIT = 0.67448975;

// Cody's coefficients (ANORM): central interval |x| ≤ 0.674…
const A = [2.2352520354606839287, 161.02823106855587881, 1067.6894854603709582, 18154.981253343561249, 0.065682337918207449113];
const B = [47.20258190468824187, 976.09855173777669322, 10260.932208618978205, 45507.789335026729956];
// 0.674… < |x| ≤ sqrt(32)
const C = [
  0.39894151208813466764, 8.8831497943883759412, 93.506656132177855979, 597.27027639480026226, 2494.5375852903726711,
  6848.1904505362823326, 11602.651437647350124, 9842.7148383839780218, 1.0765576773720192317e-8,
];
const D = [
  22.266688044328115691, 235.38790178262499861, 1519.377599407554805, 6485.558298266760755, 18615.571640885098091,
  34900.952721145977266, 38912.003286093271411, 19685.429676859990727,
];
// |x| > sqrt(32) (asymptotic series in 1/x²)
const P = [0.21589853405795699, 0.1274011611602473639, 0.022235277870649807, 0.001421619193227893466, 2.9112874951168792e-5, 0.02307344176494017303];
const Q = [1.28426009614491121, 0.468238212480865118, 0.0659881378689285515, 0.00378239633202758244, 7.29751555083966205e-5];

/** Cody's central approximation: Φ(x) = 1/2 + centralOdd(x) for |x| ≤ 0.674… */
function centralOdd(x: number): number {
  const xsq = x * x;
  let xnum = A[4] * xsq;
  let xden = xsq;
  for (let i = 0; i < 3; i++) {
    xnum = (xnum + A[i]) * xsq;
    xden = (xden + B[i]) * xsq;
  }
  return (x * (xnum + A[3])) / (xden + B[3]);
}

/**
 * R(t) = e^{t²/2} · Φ(−t) for t ≥ 0, to near full double precision. (In the two outer intervals Cody's
 * approximation is exactly of the form Φ(−t) = e^{−t²/2} · rational(t), so R is the rational itself.)
 */
export function scaledUpperTail(t: number): number {
  if (!(t >= 0)) throw new RangeError(`scaledUpperTail needs t >= 0, got ${t}`);
  if (t === Infinity) return 0;
  if (t <= CENTRAL_LIMIT) return Math.exp(0.5 * t * t) * (0.5 - centralOdd(t));
  if (t <= SQRT_32) {
    let xnum = C[8] * t;
    let xden = t;
    for (let i = 0; i < 7; i++) {
      xnum = (xnum + C[i]) * t;
      xden = (xden + D[i]) * t;
    }
    return (xnum + C[7]) / (xden + D[7]);
  }
  const xsq = 1 / (t * t);
  let xnum = P[5] * xsq;
  let xden = xsq;
  for (let i = 0; i < 4; i++) {
    xnum = (xnum + P[i]) * xsq;
    xden = (xden + Q[i]) * xsq;
  }
  const r = (xsq * (xnum + P[4])) / (xden + Q[4]);
  return (ONE_OVER_SQRT_2PI - r) / t;
}

/** e^{−y²/2} for y ≥ 0, splitting y so that the square is formed exactly (Cody's trick). */
function expHalfSquare(y: number): number {
  const ys = Math.trunc(y * 16) / 16;
  const del = (y - ys) * (y + ys);
  return Math.exp(-ys * ys * 0.5) * Math.exp(-del * 0.5);
}

/** log Φ(x), accurate in both tails. */
export function logNormalCdf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x === -Infinity) return -Infinity;
  if (x === Infinity) return 0;
  const y = Math.abs(x);
  if (y <= CENTRAL_LIMIT) return Math.log(0.5 + centralOdd(x));
  // Φ(−y) = e^{−y²/2} R(y)
  const ys = Math.trunc(y * 16) / 16;
  const del = (y - ys) * (y + ys);
  const logLower = -ys * ys * 0.5 - del * 0.5 + Math.log(scaledUpperTail(y));
  return x < 0 ? logLower : Math.log1p(-Math.exp(logLower));
}

/** Standard normal CDF Φ(x) (W. J. Cody's algorithm), with full relative accuracy in the lower tail. */
export function normalCdf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const y = Math.abs(x);
  if (y <= CENTRAL_LIMIT) return 0.5 + centralOdd(x);
  if (y === Infinity) return x > 0 ? 1 : 0;
  const lower = expHalfSquare(y) * scaledUpperTail(y);
  return x < 0 ? lower : 1 - lower;
}

/** Complementary error function, erfc(x) = 2 Φ(−x·√2). */
export function erfc(x: number): number {
  return 2 * normalCdf(-x * Math.SQRT2);
}

function invalid(message: string, hint?: string): FedsynthError {
  return new FedsynthError("invalid-argument", message, { hint });
}

/** Checks one Gaussian mechanism's public parameters; throws FedsynthError("invalid-argument"). */
export function validateGaussian(m: GaussianMechanism): void {
  const { l2Sensitivity, sigma, repetitions } = m as Partial<GaussianMechanism>;
  if (typeof l2Sensitivity !== "number" || !Number.isFinite(l2Sensitivity) || l2Sensitivity < 0) {
    throw invalid(`Gaussian mechanism has an invalid l2Sensitivity (${String(l2Sensitivity)})`, "The L2 sensitivity must be a finite number >= 0.");
  }
  if (typeof sigma !== "number" || !Number.isFinite(sigma) || sigma <= 0) {
    throw invalid(`Gaussian mechanism has an invalid sigma (${String(sigma)})`, "The noise standard deviation must be a finite number > 0.");
  }
  if (typeof repetitions !== "number" || !Number.isSafeInteger(repetitions) || repetitions < 0) {
    throw invalid(`Gaussian mechanism has an invalid repetitions count (${String(repetitions)})`, "Repetitions must be a whole number >= 0.");
  }
}

/**
 * μ of the composition, μ = sqrt(Σ reps·(Δ/σ)²) (Dong, Roth & Su 2019). Empty input gives 0.
 * This is the plain rounded value; `epsilonForDelta` allows for its rounding error.
 */
export function gdpMu(mechanisms: GaussianMechanism[]): number {
  let sum = 0;
  for (const m of mechanisms) {
    validateGaussian(m);
    const ratio = m.l2Sensitivity / m.sigma;
    sum += m.repetitions * ratio * ratio;
  }
  return Math.sqrt(sum);
}

function checkMu(mu: number): void {
  if (typeof mu !== "number" || Number.isNaN(mu) || mu < 0) {
    throw invalid(`GDP parameter mu must be a number >= 0, got ${String(mu)}`);
  }
}

function checkEpsilon(epsilon: number): void {
  if (typeof epsilon !== "number" || Number.isNaN(epsilon) || epsilon < 0) {
    throw invalid(`epsilon must be a number >= 0, got ${String(epsilon)}`);
  }
}

function checkDelta(delta: number): void {
  if (typeof delta !== "number" || !Number.isFinite(delta) || delta <= 0 || delta >= 1) {
    throw invalid(`delta must lie strictly between 0 and 1, got ${String(delta)}`, "Use a small delta such as 1e-5 or 1/(10·rows).");
  }
}

/** log δ(ε) for μ-GDP, best estimate, plus (when `upper`) an upper bound allowing for rounding. */
function logDelta(mu: number, epsilon: number, upper: boolean): number {
  if (mu === 0) return -Infinity;
  if (mu === Infinity) return 0;
  if (epsilon === Infinity) return -Infinity;
  const t1 = epsilon / mu - mu / 2;
  const t2 = epsilon / mu + mu / 2;
  if (t1 >= 0) {
    const r1 = scaledUpperTail(t1);
    const r2 = scaledUpperTail(t2);
    let diff = Math.max(0, r1 - r2);
    // Rounding allowances (each generous by a factor of ten or more):
    //  - R has relative error far below 1e-13, so the difference is off by less than 1e-13·(r1 + r2);
    //  - t1 and t2 are each off by at most ~2.3e-16·t2 and |R'(t)| ≤ 0.4/(1 + t²) on [t1, ∞), which moves
    //    the difference by less than 1e-15·t2/(1 + t1²) (this matters when μ is tiny: cancellation);
    //  - the same argument errors move t1²/2 by about t1·t2·2.3e-16, and exp/log add a few ulps.
    let slack = 0;
    if (upper) {
      diff += 1e-13 * (r1 + r2) + (1e-15 * t2) / (1 + t1 * t1);
      slack = 1e-12 * (1 + t2 * t2);
    }
    if (diff <= 0) return -Infinity;
    return -0.5 * t1 * t1 + Math.log(diff) + slack;
  }
  const a = -t1;
  const g = expHalfSquare(a);
  let delta = 1 - g * (scaledUpperTail(a) + scaledUpperTail(t2));
  // Rounding allowance: e^{−a²/2}·R is accurate to ~1e-15 absolutely here, and the argument errors
  // (~2.3e-16·t2 each, with slopes below 0.4) move δ by less than 1e-16·t2.
  if (upper) delta = delta * (1 + 1e-12) + 1e-14 + 1e-15 * t2;
  delta = Math.min(1, delta);
  return delta <= 0 ? -Infinity : Math.log(delta);
}

/**
 * δ(ε) = Φ(−ε/μ + μ/2) − e^ε Φ(−ε/μ − μ/2): the smallest δ for which a μ-GDP mechanism is (ε, δ)-DP
 * (Balle & Wang 2018; Dong, Roth & Su 2019). Best estimate (use `epsilonForDelta` for accounting).
 */
export function deltaForEpsilon(mu: number, epsilon: number): number {
  checkMu(mu);
  checkEpsilon(epsilon);
  return Math.exp(logDelta(mu, epsilon, false));
}

/** Relative width of the final bisection bracket of `epsilonForDelta`. */
export const EPSILON_RELATIVE_TOLERANCE = 1e-9;
/** μ is treated as possibly this much (relatively) too small, to cover rounding in composing it. */
const MU_SAFETY = 1e-12;

/**
 * The smallest ε ≥ 0 with δ(ε) ≤ delta for a μ-GDP mechanism, as an upper bound: bisection on ε down to a
 * bracket of relative width 1e-9, returning the bracket's upper end, against an upper bound of δ(ε)
 * evaluated at μ·(1 + 1e-12). Returns 0 when μ = 0 and Infinity when μ = Infinity.
 */
export function epsilonForDelta(mu: number, delta: number): number {
  checkMu(mu);
  checkDelta(delta);
  if (mu === 0) return 0;
  if (mu === Infinity) return Infinity;
  const muSafe = mu * (1 + MU_SAFETY);
  const logTarget = Math.log(delta);
  const ok = (eps: number) => logDelta(muSafe, eps, true) <= logTarget;
  if (ok(0)) return 0;
  let lo = 0;
  let hi = 1;
  while (!ok(hi)) {
    lo = hi;
    hi *= 2;
    if (!Number.isFinite(hi)) return Infinity;
  }
  while (hi - lo > EPSILON_RELATIVE_TOLERANCE * hi) {
    const mid = lo + (hi - lo) / 2;
    if (mid <= lo || mid >= hi) break;
    if (ok(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}
