/**
 * An auditor's check of a model file's stored fit: that it is the fit of the file's own released sums.
 * The fit is deterministic given the sums — collect, fitCollected and fitModel draw nothing at random,
 * break every tie by column or table order (stable sorts, insertion-ordered sets), and use only IEEE
 * arithmetic and V8's own implementations of exp, log and pow — so with the same Node a refit equals the
 * stored fit bit for bit; a JavaScript engine whose exp or log differ in the last bit would differ by
 * rounding only (largestDifference says how much).
 * It costs one fit (seconds for 20 columns), against a study's whole run to reproduce the sums.
 */
import { fitCollected } from "./estimate.js";
import { encodeFit } from "./fitted-bytes.js";
import type { MarginalModel } from "./engine.js";
import type { SamplingDataCheck } from "../engine.js";

export type FitCheck =
  | { stored: false }
  | {
      stored: true;
      /** The stored fit's bytes are the refit's. */
      identical: boolean;
      /** Largest difference of a clique probability (Infinity when the model's structure differs). */
      largestDifference: number;
    };

export function checkStoredFit(model: MarginalModel): FitCheck {
  if (!model.storedFit) return { stored: false };
  const stored = model.fitted;
  const refit = fitCollected(model.collected);
  const a = encodeFit(stored);
  const b = encodeFit(refit);
  const identical = a.length === b.length && a.every((x, i) => x === b[i]);
  const sameShape = stored.fit.marginals.length === refit.fit.marginals.length
    && stored.fit.marginals.every((m, i) => m.length === refit.fit.marginals[i].length)
    && JSON.stringify([stored.refine, stored.fit.tree.cliques, stored.fit.tree.parent]) === JSON.stringify([refit.refine, refit.fit.tree.cliques, refit.fit.tree.parent]);
  let largestDifference = sameShape ? 0 : Infinity;
  if (sameShape) stored.fit.marginals.forEach((m, i) => m.forEach((x, c) => (largestDifference = Math.max(largestDifference, Math.abs(x - refit.fit.marginals[i][c])))));
  return { stored: true, identical, largestDifference };
}

/**
 * Clique probabilities within this of a refit's differ by rounding only (another JavaScript engine's exp
 * or log): far below what any noisy sum could move them by, and far above float64 rounding of a fit.
 */
const ROUNDING = 1e-9;

/** checkStoredFit as the engine's checkSamplingData verdict. */
export function storedFitVerdict(model: MarginalModel): SamplingDataCheck {
  const check = checkStoredFit(model);
  if (!check.stored) return { stored: false, detail: "no fitted model stored (a format-version-2 file): sampling fits the released sums itself" };
  if (check.identical) return { stored: true, ok: true, detail: "the stored fitted model is the fit of the released sums, bit for bit" };
  if (check.largestDifference <= ROUNDING) {
    return { stored: true, ok: true, detail: `the stored fitted model is the fit of the released sums up to rounding (largest difference ${check.largestDifference.toExponential(1)})` };
  }
  return {
    stored: true, ok: false,
    detail: Number.isFinite(check.largestDifference)
      ? `the stored fitted model is not the fit of the released sums: a clique probability differs by ${check.largestDifference.toPrecision(3)}`
      : "the stored fitted model is not the fit of the released sums: its cliques or bins differ",
  };
}
