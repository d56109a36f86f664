import { describe, expect, it } from "vitest";
import { macroOneVsRestAuc, rocAuc } from "./auc.js";

describe("rocAuc", () => {
  it("matches the hand-computed example", () => {
    expect(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toBeCloseTo(0.75, 12);
  });

  it("counts ties between a positive and a negative as one half", () => {
    // Pairs (pos, neg): (0.5, 0.5) tie → ½, (0.5, 0.1) → 1, (0.9, 0.5) → 1, (0.9, 0.1) → 1 → 3.5 / 4
    expect(rocAuc([0.1, 0.5, 0.5, 0.9], [0, 0, 1, 1])).toBeCloseTo(0.875, 12);
    // All scores equal: 0.5
    expect(rocAuc([0.3, 0.3, 0.3, 0.3, 0.3], [1, 0, 1, 0, 0])).toBeCloseTo(0.5, 12);
    // Ties within one class do not matter.
    expect(rocAuc([0.2, 0.2, 0.7, 0.7], [0, 0, 1, 1])).toBe(1);
  });

  it("is 0 for perfectly inverted scores and null without both classes", () => {
    expect(rocAuc([0.9, 0.8, 0.1], [0, 0, 1])).toBe(0);
    expect(rocAuc([0.1, 0.2], [1, 1])).toBeNull();
    expect(rocAuc([], [])).toBeNull();
  });
});

describe("macroOneVsRestAuc", () => {
  it("averages one-vs-rest AUCs over classes with positives and negatives", () => {
    // 3 classes, class 2 never occurs → averaged over classes 0 and 1.
    const proba = [
      0.8, 0.2, 0,
      0.6, 0.4, 0,
      0.3, 0.7, 0,
      0.6, 0.4, 0,
    ];
    const labels = [0, 0, 1, 1];
    // class 0 scores [.8,.6,.3,.6], positives {0,1}: pairs (.8,.3)=1 (.8,.6)=1 (.6,.3)=1 (.6,.6)=½ → 3.5/4
    // class 1 scores [.2,.4,.7,.4], positives {2,3}: (.7,.2)=1 (.7,.4)=1 (.4,.2)=1 (.4,.4)=½ → 3.5/4
    const r = macroOneVsRestAuc(proba, 3, labels)!;
    expect(r.auc).toBeCloseTo(0.875, 12);
    expect(r.perClass[2]).toBeNull();
  });

  it("is null when no class has both positives and negatives", () => {
    expect(macroOneVsRestAuc([0.5, 0.5, 0.5, 0.5], 2, [1, 1])).toBeNull();
  });
});
