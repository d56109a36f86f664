/**
 * The privacy accountant. Its whole state is the append-only history of mechanisms applied (as in
 * Opacus): the spent epsilon is always recomputed from that history with one function, so a site, the
 * coordinator and an auditor who hold the same history get the same number.
 *
 * Accounting by kind:
 *  - If every mechanism is a Gaussian one, they are composed exactly in Gaussian DP (μ-GDP, Dong, Roth &
 *    Su 2019) and converted to (ε, δ) with the exact analytic-Gaussian curve (see gaussian.ts). A
 *    subsampled Gaussian with sampling rate 1 IS a Gaussian mechanism (sensitivity = clip norm, noise =
 *    σ·clip norm, so Δ/σ = 1/σ per step) and is accounted as one; one with sampling rate 0 never looks
 *    at the data and costs nothing.
 *  - Otherwise (some subsampled Gaussian with 0 < q < 1) everything is composed in Rényi DP at Opacus's
 *    default orders — the Gaussian mechanism exactly as αΣ reps·(Δ/σ)²/2, each subsampled one as `steps`
 *    times the RDP of the sampled Gaussian mechanism (Mironov, Talwar & Zhang 2019) — and converted with
 *    Balle et al. 2020, Theorem 21 (see rdp.ts). Subsampled mechanisms with the same q and σ are pooled
 *    (their steps added) first, which is exact.
 *  - A distributed discrete Gaussian (noise shares summed under secure aggregation) is never accounted in
 *    GDP: the sum of discrete Gaussians is not a Gaussian, and its only proven guarantee is concentrated DP
 *    (below). Any history containing one goes through the RDP path, where a ρ-zCDP mechanism contributes
 *    exactly α·ρ at every order α (Bun & Steinke 2016, Definition 1.1).
 * Both paths return upper bounds: rounding can only raise the reported epsilon.
 *
 * The distributed discrete Gaussian (DDG), released sum. The observer of the sum learns x + Z, where Z is
 * the sum of the noise shares of at least t = `sites` sites, Z = X_1 + … + X_t with X_i ~ N_Z(0, σ²)^d
 * independent (shares from further sites are independent of the data, so they can only help: post-
 * processing). For integer vectors x, x' with ‖x − x'‖₂ ≤ Δ, Kairouz, Liu & Steinke 2021 (arXiv:2102.06387,
 * Theorem 1, "privacy for sums of discrete Gaussians", σ ≥ 1/2) give, for every α ≥ 1,
 *     D_α(x + Z ‖ x' + Z) ≤ (α/2)·ε²,   ε = Δ/(√t·σ) + τ·√d,   τ = 10·Σ_{k=1}^{t−1} exp(−2π²σ²·k/(k+1)),
 * i.e. ½ε²-zCDP per release. This is the third term of their Proposition 14, min{α/2·Δ²/(tσ²) + τd,
 * α/2·(Δ²/(tσ²) + 2τ‖Δ‖₁/(√t σ) + τ²d), α/2·(Δ/(√t σ) + τ√d)²}, as implemented by the authors in
 * google-research/federated distributed_dp/accounting_utils.py (`compute_rdp_dgaussian`, with `tau` from
 * `ddgauss_epsilon`). We use only that third term: it is the one in zCDP form, so it composes as α·ρ at
 * every order with no further conditions; the other two only differ by amounts of order τ, and
 * τ ≤ 10(t − 1)·e^{−π²σ²} is below 1e-31 for σ ≥ 3 and t ≤ 10^6 (its terms underflow to 0 for σ ≳ 8.7),
 * so nothing measurable is lost for the σ that secure aggregation uses (hundreds to millions of grid units). Without the τ term this is exactly the
 * Gaussian's α·Δ²/(2tσ²) for variance tσ².
 *
 * The collusion (local) guarantee. If the coordinator colludes with all the other sites it can subtract
 * their inputs and noise, and sees one site's x + X with X ~ N_Z(0, σ²)^d alone: by Canonne, Kamath &
 * Steinke 2020 (arXiv:2004.00010, Theorem 14: the multivariate discrete Gaussian mechanism with
 * Σ_j (x_j − x'_j)²/σ² ≤ ε² is ½ε²-concentrated DP) that is ½(Δ/σ)²-zCDP — the DDG formula with t = 1
 * (τ = 0). Mechanisms of the other kinds add all their noise at the site, so for them the two guarantees
 * coincide.
 */
import type { DistributedDiscreteGaussianMechanism, GaussianMechanism, Mechanism, SubsampledGaussianMechanism } from "./mechanism.js";
import { epsilonForDelta, gdpMu, validateGaussian } from "./gaussian.js";
import { DEFAULT_ORDERS, gaussianRdp, rdpToEpsilon, subsampledGaussianRdpCurve } from "./rdp.js";
import { FedsynthError } from "../errors.js";

/** Checks one subsampled Gaussian mechanism's public parameters; throws FedsynthError("invalid-argument"). */
export function validateSubsampledGaussian(m: SubsampledGaussianMechanism): void {
  const { samplingRate, noiseMultiplier, steps, clipNorm } = m as Partial<SubsampledGaussianMechanism>;
  const bad = (field: string, value: unknown, hint: string) =>
    new FedsynthError("invalid-argument", `Subsampled Gaussian mechanism has an invalid ${field} (${String(value)})`, { hint });
  if (typeof samplingRate !== "number" || !(samplingRate >= 0 && samplingRate <= 1)) {
    throw bad("samplingRate", samplingRate, "The Poisson sampling rate q must be a number in [0, 1] (the expected batch size divided by the number of records).");
  }
  if (typeof noiseMultiplier !== "number" || !Number.isFinite(noiseMultiplier) || noiseMultiplier <= 0) {
    throw bad("noiseMultiplier", noiseMultiplier, "The noise multiplier sigma (noise standard deviation / clip norm) must be a finite number > 0.");
  }
  if (typeof steps !== "number" || !Number.isSafeInteger(steps) || steps < 1) {
    throw bad("steps", steps, "steps must be a whole number >= 1 (the number of noisy gradient steps).");
  }
  if (typeof clipNorm !== "number" || !Number.isFinite(clipNorm) || clipNorm <= 0) {
    throw bad("clipNorm", clipNorm, "The per-record clipping norm must be a finite number > 0.");
  }
}

/** Unit roundoff of IEEE double precision. */
const U = 2 ** -53;

/** Checks one distributed discrete Gaussian mechanism's public parameters; throws FedsynthError("invalid-argument"). */
export function validateDistributedDiscreteGaussian(m: DistributedDiscreteGaussianMechanism): void {
  const { l2Sensitivity, dimension, sigma, sites, repetitions } = m as Partial<DistributedDiscreteGaussianMechanism>;
  const bad = (field: string, value: unknown, hint: string) =>
    new FedsynthError("invalid-argument", `Distributed discrete Gaussian mechanism has an invalid ${field} (${String(value)})`, { hint });
  if (typeof l2Sensitivity !== "number" || !Number.isFinite(l2Sensitivity) || l2Sensitivity < 0) {
    throw bad("l2Sensitivity", l2Sensitivity, "The L2 sensitivity (in grid units, after scaling and rounding) must be a finite number >= 0; use roundedL2Sensitivity(clip, gamma, dimension).");
  }
  if (l2Sensitivity > 0 && l2Sensitivity < 1) {
    // A non-zero change of an integer vector has norm >= 1: this is almost certainly a sensitivity in the
    // original (unscaled) units, which would under-report epsilon by the factor 1/gamma.
    throw bad("l2Sensitivity", l2Sensitivity, "The sensitivity is in grid units: an integer vector that changes at all moves by at least 1. Pass roundedL2Sensitivity(clip, gamma, dimension), not the clip norm.");
  }
  if (typeof dimension !== "number" || !Number.isSafeInteger(dimension) || dimension < 1) {
    throw bad("dimension", dimension, "dimension must be a whole number >= 1: the number of coordinates that get noise.");
  }
  if (typeof sites !== "number" || !Number.isSafeInteger(sites) || sites < 1) {
    throw bad("sites", sites, "sites must be a whole number >= 1: the secure aggregation threshold (the fewest sites whose noise is in any sum that is unmasked).");
  }
  if (typeof sigma !== "number" || !Number.isFinite(sigma) || sigma <= 0) {
    throw bad("sigma", sigma, "Each site's discrete Gaussian sigma (grid units) must be a finite number > 0.");
  }
  if (sites >= 2 && sigma < 0.5) {
    throw bad("sigma", sigma, "With 2 or more sites each site's sigma must be >= 0.5 grid units (Kairouz, Liu & Steinke 2021, Theorem 1 needs it); use a finer grid (smaller gamma).");
  }
  if (typeof repetitions !== "number" || !Number.isSafeInteger(repetitions) || repetitions < 0) {
    throw bad("repetitions", repetitions, "repetitions must be a whole number >= 0 (the number of noisy sums released).");
  }
}

/** Terms of τ summed one by one; beyond this many sites the rest are bounded by the last one (they decrease). */
const TAU_EXACT_TERMS = 10_000;

/**
 * An upper bound on τ = 10·Σ_{k=1}^{sites−1} exp(−2π²σ²·k/(k+1)) (Kairouz, Liu & Steinke 2021, Theorem 1);
 * 0 for one site.
 */
export function distributedDiscreteGaussianTau(sigma: number, sites: number): number {
  if (sites <= 1) return 0;
  const a = 2 * Math.PI * Math.PI * sigma * sigma;
  const n = sites - 1;
  const exact = Math.min(n, TAU_EXACT_TERMS);
  // The exponent is formed with a relative error below 8u; shrinking it by 16u makes every term an upper
  // bound before Math.exp's own error (allowed for with 8u), and k/(k+1) grows with k, so the terms decrease.
  const term = (k: number) => Math.exp(-a * (k / (k + 1)) * (1 - 16 * U));
  let sum = 0;
  for (let k = 1; k <= exact; k++) sum += term(k);
  if (n > exact) sum += (n - exact) * term(exact);
  // Rounding of the sum (n terms), Math.exp (8u), and terms that underflowed to 0 (each < 2^−1074).
  return 10 * (sum * (1 + (exact + 12) * U) + n * Number.MIN_VALUE) * (1 + 4 * U);
}

/**
 * An upper bound on the zCDP ρ of all repetitions of a distributed discrete Gaussian mechanism, as seen by
 * an observer of the released sum: repetitions · ½(Δ/(√t·σ) + τ√d)² (see the file comment). 0 when it
 * cannot depend on the data (Δ = 0 or no repetitions).
 */
export function distributedDiscreteGaussianRho(m: DistributedDiscreteGaussianMechanism): number {
  validateDistributedDiscreteGaussian(m);
  const { l2Sensitivity, dimension, sigma, sites, repetitions } = m;
  if (l2Sensitivity === 0 || repetitions === 0) return 0;
  const tau = distributedDiscreteGaussianTau(sigma, sites);
  const eps = (l2Sensitivity / (Math.sqrt(sites) * sigma) + tau * Math.sqrt(dimension)) * (1 + 8 * U);
  return ((repetitions * eps * eps) / 2) * (1 + 6 * U);
}

/** The same mechanism as seen by a coordinator colluding with every other site: only this site's own noise. */
function ownShareOnly(m: Mechanism): Mechanism {
  return m.kind === "distributed-discrete-gaussian" ? { ...m, sites: 1 } : m;
}

/** Checks a mechanism's kind and parameters (histories can come from JSON); returns a defensive copy. */
export function validateMechanism(m: Mechanism): Mechanism {
  if (m === null || typeof m !== "object") {
    throw new FedsynthError("invalid-argument", `A privacy mechanism must be an object, got ${String(m)}`);
  }
  switch (m.kind) {
    case "gaussian":
      validateGaussian(m);
      return { kind: "gaussian", l2Sensitivity: m.l2Sensitivity, sigma: m.sigma, repetitions: m.repetitions };
    case "subsampled-gaussian":
      validateSubsampledGaussian(m);
      return { kind: "subsampled-gaussian", samplingRate: m.samplingRate, noiseMultiplier: m.noiseMultiplier, steps: m.steps, clipNorm: m.clipNorm };
    case "distributed-discrete-gaussian":
      validateDistributedDiscreteGaussian(m);
      return {
        kind: "distributed-discrete-gaussian",
        l2Sensitivity: m.l2Sensitivity,
        dimension: m.dimension,
        sigma: m.sigma,
        sites: m.sites,
        repetitions: m.repetitions,
      };
    default:
      throw unknownKind(m);
  }
}

function unknownKind(m: unknown): FedsynthError {
  const kind = (m as { kind?: unknown }).kind;
  return new FedsynthError("invalid-argument", `Unknown privacy mechanism kind ${JSON.stringify(kind) ?? String(kind)}`, {
    hint: 'This version of fedsynth can account for these kinds only: "gaussian", "subsampled-gaussian", "distributed-discrete-gaussian". Upgrade fedsynth if the history was written by a newer version.',
  });
}

export class Accountant {
  private readonly log: Mechanism[] = [];

  constructor(history: Mechanism[] = []) {
    for (const m of history) this.record(m);
  }

  /** Appends one applied mechanism to the history. */
  record(m: Mechanism): void {
    this.log.push(validateMechanism(m));
  }

  /** A copy of the history, oldest first. */
  history(): Mechanism[] {
    return this.log.map((m) => ({ ...m }));
  }

  /** The epsilon spent so far at the given delta (an upper bound): the released-sum guarantee. */
  epsilon(delta: number): number {
    return Accountant.epsilonOf(this.log, delta);
  }

  /** The epsilon spent so far should the coordinator collude with every other site (see collusionSpentOf). */
  collusionEpsilon(delta: number): number {
    return Accountant.collusionEpsilonOf(this.log, delta);
  }

  /**
   * The guarantee a site keeps even if the coordinator colludes with all the other sites: every distributed
   * discrete Gaussian is accounted with this site's own noise share only (t = 1; Canonne, Kamath & Steinke
   * 2020); the other kinds add all their noise locally and cost the same as in `spentOf`. Never below
   * `spentOf` of the same history. Budgets and caps are charged with `spentOf`; this is for reports.
   */
  static collusionSpentOf(mechanisms: Mechanism[], delta: number): PrivacySpent {
    return Accountant.spentOf(mechanisms.map((m) => ownShareOnly(validateMechanism(m))), delta);
  }

  /** `collusionSpentOf(…).epsilon`. */
  static collusionEpsilonOf(mechanisms: Mechanism[], delta: number): number {
    return Accountant.collusionSpentOf(mechanisms, delta).epsilon;
  }

  /**
   * An upper bound on the epsilon at `delta` of applying all `mechanisms` (in any order) to the same data.
   * An empty list costs 0. Throws FedsynthError("invalid-argument") for an unknown kind, invalid
   * parameters, or a delta outside (0, 1).
   */
  static epsilonOf(mechanisms: Mechanism[], delta: number): number {
    return Accountant.spentOf(mechanisms, delta).epsilon;
  }

  /**
   * `epsilonOf` with how it was obtained (for reports and the CLI). For distributed discrete Gaussians this
   * is the guarantee of the released sum (at least `sites` noise shares): what budgets and caps are charged.
   */
  static spentOf(mechanisms: Mechanism[], delta: number): PrivacySpent {
    if (typeof delta !== "number" || !Number.isFinite(delta) || delta <= 0 || delta >= 1) {
      throw new FedsynthError("invalid-argument", `delta must lie strictly between 0 and 1, got ${String(delta)}`, {
        hint: "Use a small delta such as 1e-5.",
      });
    }
    const gaussians: GaussianMechanism[] = [];
    /** Subsampled mechanisms with 0 < q < 1, pooled by (q, σ): their steps add up. */
    const pooled = new Map<string, { samplingRate: number; noiseMultiplier: number; steps: number }>();
    /** Total zCDP ρ of the distributed discrete Gaussians (each term an upper bound). */
    let zcdpRho = 0;
    let zcdpTerms = 0;
    for (const m of mechanisms) {
      const checked = validateMechanism(m);
      switch (checked.kind) {
        case "gaussian":
          gaussians.push(checked);
          break;
        case "subsampled-gaussian": {
          const { samplingRate, noiseMultiplier, steps } = checked;
          if (samplingRate === 0) break; // never touches the data
          if (samplingRate === 1) {
            // Every record in every step: T Gaussian mechanisms with sensitivity C and noise σC.
            gaussians.push({ kind: "gaussian", l2Sensitivity: 1, sigma: noiseMultiplier, repetitions: steps });
            break;
          }
          const key = `${samplingRate}:${noiseMultiplier}`;
          const entry = pooled.get(key);
          if (entry) entry.steps += steps;
          else pooled.set(key, { samplingRate, noiseMultiplier, steps });
          break;
        }
        case "distributed-discrete-gaussian": {
          const rho = distributedDiscreteGaussianRho(checked);
          if (rho > 0) {
            zcdpRho += rho;
            zcdpTerms++;
          }
          break;
        }
        default:
          throw unknownKind(checked);
      }
    }
    if (pooled.size === 0 && zcdpTerms === 0) {
      if (gaussians.length === 0) return { epsilon: 0, method: "none" };
      return { epsilon: epsilonForDelta(gdpMu(gaussians), delta), method: "gdp" };
    }
    const orders = DEFAULT_ORDERS;
    const total = gaussianRdp(gaussians, orders);
    for (const p of pooled.values()) {
      if (!Number.isSafeInteger(p.steps)) {
        throw new FedsynthError("invalid-argument", `The history's subsampled Gaussian steps add up to more than ${Number.MAX_SAFE_INTEGER}`);
      }
      const curve = subsampledGaussianRdpCurve(p, orders);
      for (let k = 0; k < orders.length; k++) total[k] += curve[k];
    }
    if (zcdpTerms > 0) {
      // ρ-zCDP is (α, αρ)-RDP at every order α > 1; ρ was summed over zcdpTerms terms.
      const rho = zcdpRho * (1 + (zcdpTerms + 1) * U);
      for (let k = 0; k < orders.length; k++) total[k] += orders[k] * rho * (1 + 8 * U);
    }
    // The sums above are rounded: allow a relative n·u (n = number of terms added per order).
    const slack = 1 + 2 ** -52 * (pooled.size + 3);
    const { epsilon, order } = rdpToEpsilon(orders, total.map((r) => r * slack), delta);
    return { epsilon, method: "rdp", order };
  }
}

/** The epsilon of a history and how it was accounted. */
export interface PrivacySpent {
  /** Upper bound on the epsilon at the given delta. */
  epsilon: number;
  /**
   * "gdp": exact Gaussian DP; "rdp": Rényi DP at DEFAULT_ORDERS (also used for zCDP mechanisms: any
   * distributed discrete Gaussian); "none": nothing was spent.
   */
  method: "gdp" | "rdp" | "none";
  /** For "rdp": the Rényi order that gave the bound. */
  order?: number;
}
