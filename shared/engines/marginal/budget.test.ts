/** The budget split: each release gets its share of μ² (plaintext) or ρ (secure), and the total is ε. */
import { describe, expect, it } from "vitest";
import { FINE_NOISE_MULTIPLIER, gridWeights, MARGINAL_SHARE, planPlain, planSecure, plainRoundMechanisms, SCORE_SHARE, secureRoundMechanism } from "./budget.js";
import { budgetShape } from "./config.js";
import { conformanceSchema } from "../conformance.js";
import { Accountant } from "../../privacy/accountant.js";

const shape = budgetShape(conformanceSchema, 2);

describe("marginal budget", () => {
  it("gives the marginals, the scores and the tables their shares of μ², spending ε", () => {
    const b = planPlain(shape, { epsilon: 1, delta: 1e-5, rounds: 2 });
    const marginals = shape.columns / b.sigmaMarginals ** 2 + shape.fineColumns / (FINE_NOISE_MULTIPLIER * b.sigmaMarginals) ** 2;
    const scores = (b.sensScores / b.sigmaScores) ** 2;
    const tables = (b.sensPairs / b.sigmaPairs) ** 2;
    const total = marginals + scores + tables;
    expect(marginals / total).toBeCloseTo(MARGINAL_SHARE, 9);
    expect(scores / total).toBeCloseTo(SCORE_SHARE, 9);
    const all = [1, 2].flatMap((r) => plainRoundMechanisms({ ...b, ...shape }, r));
    expect(Accountant.epsilonOf(all, 1e-5)).toBeLessThanOrEqual(1);
    expect(Accountant.epsilonOf(all, 1e-5)).toBeGreaterThan(0.999);
  });

  it("under secure aggregation weights each block so one grid noise gives each release its share", () => {
    const privacy = { epsilon: 1, delta: 1e-5, rounds: 3, secureAggregation: { threshold: 3, sites: 4 } };
    const s3 = budgetShape(conformanceSchema, 3);
    const b = planSecure(s3, privacy);
    const w = gridWeights(s3, 3);
    // The weighted sensitivities are √share (before rounding adds its √d).
    expect(w.marginals * Math.sqrt(s3.columns + s3.fineColumns / FINE_NOISE_MULTIPLIER ** 2)).toBeCloseTo(Math.sqrt(MARGINAL_SHARE), 12);
    expect(w.scores * b.sensScores).toBeCloseTo(Math.sqrt(SCORE_SHARE), 12);
    expect(w.pairs * b.sensPairs).toBeCloseTo(Math.sqrt((1 - MARGINAL_SHARE - SCORE_SHARE) / 2), 12);
    const spent = Accountant.epsilonOf([1, 2, 3].map((r) => secureRoundMechanism(b, r)), 1e-5);
    expect(spent).toBeLessThanOrEqual(1);
    expect(spent).toBeGreaterThanOrEqual(0.99);
    // Each site's noise share in counts is below the plaintext σ: the sum carries ≥ t shares.
    const plain = planPlain(s3, privacy);
    expect(b.sigmaMarginals).toBeLessThan(plain.sigmaMarginals);
  });

  it("a single round releases the marginals only, with the whole budget", () => {
    const one = budgetShape(conformanceSchema, 1);
    expect(one.pairs).toBe(0);
    const b = planPlain(one, { epsilon: 1, delta: 1e-5, rounds: 1 });
    expect(plainRoundMechanisms({ ...b, ...one }, 1).map((m) => m.l2Sensitivity)).toEqual([Math.sqrt(one.columns), Math.sqrt(one.fineColumns)]);
  });
});
