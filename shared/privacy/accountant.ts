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
 * Both paths return upper bounds: rounding can only raise the reported epsilon.
 */
import type { GaussianMechanism, Mechanism, SubsampledGaussianMechanism } from "./mechanism.js";
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
    default:
      throw unknownKind(m);
  }
}

function unknownKind(m: unknown): FedsynthError {
  const kind = (m as { kind?: unknown }).kind;
  return new FedsynthError("invalid-argument", `Unknown privacy mechanism kind ${JSON.stringify(kind) ?? String(kind)}`, {
    hint: 'This version of fedsynth can account for these kinds only: "gaussian", "subsampled-gaussian". Upgrade fedsynth if the history was written by a newer version.',
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

  /** The epsilon spent so far at the given delta (an upper bound). */
  epsilon(delta: number): number {
    return Accountant.epsilonOf(this.log, delta);
  }

  /**
   * An upper bound on the epsilon at `delta` of applying all `mechanisms` (in any order) to the same data.
   * An empty list costs 0. Throws FedsynthError("invalid-argument") for an unknown kind, invalid
   * parameters, or a delta outside (0, 1).
   */
  static epsilonOf(mechanisms: Mechanism[], delta: number): number {
    return Accountant.spentOf(mechanisms, delta).epsilon;
  }

  /** `epsilonOf` with how it was obtained (for reports and the CLI). */
  static spentOf(mechanisms: Mechanism[], delta: number): PrivacySpent {
    if (typeof delta !== "number" || !Number.isFinite(delta) || delta <= 0 || delta >= 1) {
      throw new FedsynthError("invalid-argument", `delta must lie strictly between 0 and 1, got ${String(delta)}`, {
        hint: "Use a small delta such as 1e-5.",
      });
    }
    const gaussians: GaussianMechanism[] = [];
    /** Subsampled mechanisms with 0 < q < 1, pooled by (q, σ): their steps add up. */
    const pooled = new Map<string, { samplingRate: number; noiseMultiplier: number; steps: number }>();
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
        default:
          throw unknownKind(checked);
      }
    }
    if (pooled.size === 0) {
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
    // The sums above are rounded: allow a relative n·u (n = number of terms added per order).
    const slack = 1 + 2 ** -52 * (pooled.size + 2);
    const { epsilon, order } = rdpToEpsilon(orders, total.map((r) => r * slack), delta);
    return { epsilon, method: "rdp", order };
  }
}

/** The epsilon of a history and how it was accounted. */
export interface PrivacySpent {
  /** Upper bound on the epsilon at the given delta. */
  epsilon: number;
  /** "gdp": exact Gaussian DP; "rdp": Rényi DP at DEFAULT_ORDERS; "none": nothing was spent. */
  method: "gdp" | "rdp" | "none";
  /** For "rdp": the Rényi order that gave the bound. */
  order?: number;
}
