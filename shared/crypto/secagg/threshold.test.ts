import { describe, expect, it } from "vitest";
import { checkThreshold, defaultThreshold, thresholdGuarantees } from "./threshold.js";

describe("secure-aggregation thresholds", () => {
  it("the default is safe and lets a third of the sites drop, for every supported n", () => {
    for (let n = 2; n <= 255; n++) {
      const t = defaultThreshold(n);
      expect(() => checkThreshold(t, n)).not.toThrow();
      expect(2 * t).toBeGreaterThan(n);
      expect(t).toBeGreaterThanOrEqual(2);
      expect(thresholdGuarantees(t, n).maxDropouts).toBe(Math.floor(n / 3));
    }
    expect([3, 5, 6, 9, 10, 100].map(defaultThreshold)).toEqual([2, 4, 4, 6, 7, 67]);
  });

  it("reports how many colluding sites a threshold tolerates: t > (n + n_C)/2 and n_C < t", () => {
    expect(thresholdGuarantees(7, 10)).toEqual({ maxDropouts: 3, maxColludingSites: 3 });
    expect(thresholdGuarantees(67, 100)).toEqual({ maxDropouts: 33, maxColludingSites: 33 });
    expect(thresholdGuarantees(2, 3)).toEqual({ maxDropouts: 1, maxColludingSites: 0 });
    expect(thresholdGuarantees(10, 10)).toEqual({ maxDropouts: 0, maxColludingSites: 9 });
  });

  it("refuses unsafe thresholds with the reason", () => {
    expect(() => checkThreshold(5, 10)).toThrow(/threshold of 5 for 10 sites is unsafe: against a malicious coordinator it must be more than half the sites \(t > n\/2/);
    expect(() => checkThreshold(1, 2)).toThrow(/threshold of 1 is unsafe: it must be at least 2/);
    expect(() => checkThreshold(11, 10)).toThrow(/threshold of 11 cannot be met by 10 sites/);
    expect(() => checkThreshold(2.5, 4)).toThrow(/whole number/);
    expect(() => checkThreshold(2, 1)).toThrow(/at least 2 sites, not 1/);
    expect(() => checkThreshold(200, 256)).toThrow(/at most 255 sites/);
  });
});
