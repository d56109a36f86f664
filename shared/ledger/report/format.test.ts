import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { niceStep, epsilonScale, timeScale } from "./chart-scale.js";
import { describeMechanisms, formatDelta, formatEpsilon, formatTime, keyFingerprint } from "./format.js";

describe("report formats", () => {
  it("writes times in UTC and says so, and survives times no Date can hold", () => {
    expect(formatTime(Date.UTC(2026, 2, 1, 9, 5, 7))).toBe("2026-03-01 09:05:07 UTC");
    expect(formatTime(Date.UTC(2026, 2, 1, 9, 5, 7, 250))).toBe("2026-03-01 09:05:07.250 UTC");
    expect(formatTime(9e15)).toBe("9000000000000000 ms after 1970");
  });

  it("writes epsilons to five significant digits and deltas as written", () => {
    expect([formatEpsilon(1.23456789), formatEpsilon(0), formatEpsilon(null), formatEpsilon(2)]).toEqual(["1.2346", "0", "—", "2"]);
    expect([formatDelta(1e-5), formatDelta(0.01)]).toEqual(["1e-5", "0.01"]);
  });

  it("fingerprints a key as the SHA-256 of its raw bytes, and says when it is not a key", () => {
    const key = Buffer.alloc(32, 7);
    const hex = createHash("sha256").update(key).digest("hex");
    expect(keyFingerprint(key.toString("base64")).replace(/^SHA-256 | /g, "")).toBe(hex);
    expect(keyFingerprint("not base64")).toMatch(/not a 32-byte/);
  });

  it("describes each kind of mechanism with its parameters", () => {
    expect(describeMechanisms([
      { kind: "gaussian", l2Sensitivity: 2, sigma: 9, repetitions: 3 },
      { kind: "subsampled-gaussian", samplingRate: 0.05, noiseMultiplier: 1.3, steps: 10, clipNorm: 1.5 },
      { kind: "distributed-discrete-gaussian", l2Sensitivity: 120, dimension: 500, sigma: 2000, sites: 3, repetitions: 1 },
    ])).toBe(
      "Gaussian noise σ=9, L2 sensitivity 2 ×3; DP-SGD: 10 steps, sampling rate 0.05, noise multiplier 1.3, clip norm 1.5; " +
      "secure-aggregation discrete Gaussian σ=2000 per site, ≥3 sites, sensitivity 120, 500 coordinates",
    );
  });

  it("puts chart ticks on round numbers that cover the data", () => {
    expect([niceStep(0.37), niceStep(1.2), niceStep(4), niceStep(7), niceStep(0)]).toEqual([0.5, 2, 5, 10, 1]);
    const y = epsilonScale(2.08, 256, 16);
    expect(y.ticks).toEqual([0, 0.5, 1, 1.5, 2, 2.5]);
    expect([y(0), y(2.5)]).toEqual([256, 16]);
    const t = timeScale(Date.UTC(2026, 0, 1), Date.UTC(2026, 0, 1), 0, 100);
    expect(t.ticks).toHaveLength(5);
    expect(t.label(t.ticks[0])).toBe("00:00:00");
  });
});
