import { describe, expect, it } from "vitest";
import { sameMechanisms } from "./budget.js";
import type { Mechanism } from "../shared/privacy/mechanism.js";

const g: Mechanism = { kind: "gaussian", l2Sensitivity: Math.sqrt(14), sigma: 13.95, repetitions: 1 };
const s: Mechanism = { kind: "subsampled-gaussian", samplingRate: 256 / 60000, noiseMultiplier: 1.1, steps: 14_062, clipNorm: 1 };

describe("sameMechanisms", () => {
  it("compares per kind, up to rounding in the last bits", () => {
    expect(sameMechanisms([g, s], [{ ...g }, { ...s, noiseMultiplier: 1.1 * (1 + 1e-15) }])).toBe(true);
    expect(sameMechanisms([g, s], [s, g])).toBe(false);
    expect(sameMechanisms([s], [{ ...s, steps: 14_063 }])).toBe(false);
    expect(sameMechanisms([s], [{ ...s, clipNorm: 2 }])).toBe(false);
    expect(sameMechanisms([s], [{ ...s, noiseMultiplier: 1.0999 }])).toBe(false);
    expect(sameMechanisms([g], [{ ...g, sigma: 13.96 }])).toBe(false);
    expect(sameMechanisms([g], [g, g])).toBe(false);
  });

  it("compares small sampling rates relatively", () => {
    const tiny: Mechanism = { ...s, samplingRate: 1e-6 } as Mechanism;
    expect(sameMechanisms([tiny], [{ ...tiny, samplingRate: 1.0000001e-6 } as Mechanism])).toBe(false);
    expect(sameMechanisms([tiny], [{ ...tiny, samplingRate: 1e-6 * (1 + 1e-15) } as Mechanism])).toBe(true);
  });
});
