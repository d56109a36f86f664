/**
 * The privacy accountant. Its whole state is the append-only history of mechanisms applied (as in
 * Opacus): the spent epsilon is always recomputed from that history with one function, so a site, the
 * coordinator and an auditor who hold the same history get the same number.
 *
 * Accounting by kind: all Gaussian mechanisms together are composed exactly in Gaussian DP (μ-GDP,
 * Dong, Roth & Su 2019) and converted to (ε, δ) with the exact analytic-Gaussian curve (see gaussian.ts).
 * A later accountant for other kinds (e.g. a subsampled Gaussian, accounted with Rényi DP) plugs into the
 * switch in `epsilonOf`; when histories mix families, composing them will need a common currency (e.g.
 * converting μ-GDP to RDP, ε(α) = αμ²/2, which is exact for the Gaussian) — that decision belongs there.
 */
import type { GaussianMechanism, Mechanism } from "./mechanism.js";
import { epsilonForDelta, gdpMu, validateGaussian } from "./gaussian.js";
import { FedsynthError } from "../errors.js";

/** Checks a mechanism's kind and parameters (histories can come from JSON); returns a defensive copy. */
export function validateMechanism(m: Mechanism): Mechanism {
  if (m === null || typeof m !== "object") {
    throw new FedsynthError("invalid-argument", `A privacy mechanism must be an object, got ${String(m)}`);
  }
  switch (m.kind) {
    case "gaussian":
      validateGaussian(m);
      return { kind: "gaussian", l2Sensitivity: m.l2Sensitivity, sigma: m.sigma, repetitions: m.repetitions };
    default:
      throw unknownKind(m);
  }
}

function unknownKind(m: unknown): FedsynthError {
  const kind = (m as { kind?: unknown }).kind;
  return new FedsynthError("invalid-argument", `Unknown privacy mechanism kind ${JSON.stringify(kind) ?? String(kind)}`, {
    hint: 'This version of fedsynth can account for these kinds only: "gaussian". Upgrade fedsynth if the history was written by a newer version.',
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
    if (typeof delta !== "number" || !Number.isFinite(delta) || delta <= 0 || delta >= 1) {
      throw new FedsynthError("invalid-argument", `delta must lie strictly between 0 and 1, got ${String(delta)}`, {
        hint: "Use a small delta such as 1e-5.",
      });
    }
    const gaussians: GaussianMechanism[] = [];
    for (const m of mechanisms) {
      const checked = validateMechanism(m);
      switch (checked.kind) {
        case "gaussian":
          gaussians.push(checked);
          break;
        default:
          throw unknownKind(checked);
      }
    }
    if (gaussians.length === 0) return 0;
    return epsilonForDelta(gdpMu(gaussians), delta);
  }
}
