import { describe, expect, it } from "vitest";
import { Accountant } from "../privacy/accountant.js";
import type { Mechanism } from "../privacy/mechanism.js";
import { BudgetTracker } from "./budget-tracker.js";
import { EpsilonCache } from "./epsilon-cache.js";

const g = (sigma: number): Mechanism => ({ kind: "gaussian", l2Sensitivity: 1, sigma, repetitions: 1 });

describe("EpsilonCache and BudgetTracker", () => {
  it("answers exactly as the accountant, per delta and per parameters", () => {
    const cache = new EpsilonCache(3);
    for (const [ms, delta] of [[[g(3)], 1e-5], [[g(3)], 1e-6], [[g(3.0000001)], 1e-5], [[g(3)], 1e-5], [[g(2), g(5)], 1e-5]] as const) {
      expect(cache.epsilonOf([...ms], delta)).toBe(Accountant.epsilonOf([...ms], delta));
    }
    expect(cache.size).toBeLessThanOrEqual(3); // starts over instead of growing past its limit
    expect(() => cache.epsilonOf([g(-1)], 1e-5)).toThrow(/sigma/);
  });

  it("composes a site's charges within a study and adds its studies, counting a charge only on commit", () => {
    const budgets = new BudgetTracker(new EpsilonCache());
    const key = (ms: Mechanism[]) => EpsilonCache.keyOf(ms);
    budgets.preview("a", "s1", [g(4)], key([g(4)]), 1e-5).commit();
    const second = budgets.preview("a", "s1", [g(4)], key([g(4)]), 1e-5);
    expect(second.studyEpsilon).toBe(Accountant.epsilonOf([g(4), g(4)], 1e-5));
    expect(second.studyEpsilon).toBeLessThan(2 * Accountant.epsilonOf([g(4)], 1e-5)); // exact composition beats adding
    second.commit();
    const other = budgets.preview("a", "s2", [g(2)], key([g(2)]), 1e-6);
    expect(other.siteEpsilon).toBeCloseTo(second.studyEpsilon + Accountant.epsilonOf([g(2)], 1e-6), 12);
    expect(other.siteDelta).toBeCloseTo(1e-5 + 1e-6, 15);
    // Not committed: not counted.
    expect(budgets.spends()).toEqual([{ siteName: "a", studyId: "s1", charges: 2, epsilon: second.studyEpsilon, delta: 1e-5 }]);
  });
});
