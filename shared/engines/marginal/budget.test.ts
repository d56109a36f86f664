/** The budget split: each release gets its share of μ² (plaintext) or ρ (secure), and the total is ε. */
import { describe, expect, it } from "vitest";
import { FINE_NOISE_MULTIPLIER, gridWeights, planPlain, planSecure, plainRoundMechanisms, secureRoundMechanism, shares } from "./budget.js";
import { budgetShape, MARGINAL_DEFAULTS, roundParts } from "./config.js";
import { conformanceSchema } from "../conformance.js";
import { Accountant } from "../../privacy/accountant.js";

const settings = MARGINAL_DEFAULTS;

describe("marginal budget", () => {
  it("lays the releases out over the rounds: marginals, all pairs, then selected tables", () => {
    const three = budgetShape(conformanceSchema, 3, settings);
    expect([1, 2, 3].map((r) => roundParts(three, r))).toEqual([
      { marginals: true, pairs: false, selected: false },
      { marginals: false, pairs: true, selected: false },
      { marginals: false, pairs: false, selected: true },
    ]);
    const one = budgetShape(conformanceSchema, 1, settings);
    expect(roundParts(one, 1)).toEqual({ marginals: true, pairs: true, selected: false });
    const two = budgetShape(conformanceSchema, 2, settings);
    expect([roundParts(two, 1), roundParts(two, 2)]).toEqual([{ marginals: true, pairs: false, selected: false }, { marginals: false, pairs: true, selected: false }]);
    const k = conformanceSchema.columns.length;
    expect(three.pairs).toBe((k * (k - 1)) / 2);
    expect(three.selectedRounds).toBe(1);
  });

  it("gives the marginals, the pairs and the selected tables their shares of μ², spending ε", () => {
    const shape = budgetShape(conformanceSchema, 4, settings);
    const b = planPlain(shape, settings, { epsilon: 1, delta: 1e-5, rounds: 4 });
    const all = [1, 2, 3, 4].flatMap((r) => plainRoundMechanisms({ ...b, ...shape }, r));
    const square = (r: number) => plainRoundMechanisms({ ...b, ...shape }, r).reduce((s, m) => s + (m.l2Sensitivity / m.sigma) ** 2, 0);
    const total = [1, 2, 3, 4].reduce((s, r) => s + square(r), 0);
    expect(square(1) / total).toBeCloseTo(settings.marginalShare, 9);
    expect(square(2) / total).toBeCloseTo(settings.pairsShare, 9);
    expect(square(3) / total).toBeCloseTo((1 - settings.marginalShare - settings.pairsShare) / 2, 9);
    expect(square(4)).toBeCloseTo(square(3), 9);
    // Round 1's coarse cells at σ_m, fine cells at α σ_m; a selected round is one weighted vector of sensitivity 1.
    expect(plainRoundMechanisms({ ...b, ...shape }, 1)).toEqual([
      { kind: "gaussian", l2Sensitivity: Math.sqrt(shape.columns), sigma: b.sigmaMarginals, repetitions: 1 },
      { kind: "gaussian", l2Sensitivity: Math.sqrt(shape.fineColumns), sigma: FINE_NOISE_MULTIPLIER * b.sigmaMarginals, repetitions: 1 },
    ]);
    expect(plainRoundMechanisms({ ...b, ...shape }, 3)).toEqual([{ kind: "gaussian", l2Sensitivity: 1, sigma: b.sigmaSelected, repetitions: 1 }]);
    expect(Accountant.epsilonOf(all, 1e-5)).toBeLessThanOrEqual(1);
    expect(Accountant.epsilonOf(all, 1e-5)).toBeGreaterThan(0.999);
  });

  it("under secure aggregation weights each release so one grid noise gives it its share", () => {
    const privacy = { epsilon: 1, delta: 1e-5, rounds: 3, secureAggregation: { threshold: 3, sites: 4 } };
    const shape = budgetShape(conformanceSchema, 3, settings);
    const b = planSecure(shape, settings, privacy);
    const w = gridWeights(shape, settings);
    const a = shares(shape, settings);
    // The weighted sensitivities are √share (before rounding adds its √d).
    expect(w.marginals * Math.sqrt(shape.columns + shape.fineColumns / FINE_NOISE_MULTIPLIER ** 2)).toBeCloseTo(Math.sqrt(a.m), 12);
    expect(w.pairs * Math.sqrt(shape.pairs)).toBeCloseTo(Math.sqrt(a.p), 12);
    expect(w.selected).toBeCloseTo(Math.sqrt(a.s), 12);
    const charges = [1, 2, 3].map((r) => secureRoundMechanism(b, r));
    expect(charges.map((m) => m.dimension)).toEqual([shape.cells, shape.pairsCells, shape.selectedCells]);
    const spent = Accountant.epsilonOf(charges, 1e-5);
    expect(spent).toBeLessThanOrEqual(1);
    expect(spent).toBeGreaterThanOrEqual(0.99);
    // Each site's noise share in counts is below the plaintext σ: the sum carries ≥ t shares.
    const plain = planPlain(shape, settings, privacy);
    expect(b.sigmaMarginals).toBeLessThan(plain.sigmaMarginals);
    expect(b.sigmaSelected).toBeLessThan(plain.sigmaSelected);
  });

  it("a one-column schema releases its marginals only, with the whole budget", () => {
    const one = { ...conformanceSchema, columns: [conformanceSchema.columns[0]] };
    const shape = budgetShape(one, 1, settings);
    expect(shape.pairs).toBe(0);
    expect(shape.pairsRound).toBe(0);
    const b = planPlain(shape, settings, { epsilon: 1, delta: 1e-5, rounds: 1 });
    expect(plainRoundMechanisms({ ...b, ...shape }, 1).map((m) => m.l2Sensitivity)).toEqual([1, 1]);
  });
});
