import { describe, expect, it } from "vitest";
import { SeededRng } from "../shared/random/rng.js";
import { macroOneVsRestAuc, rocAuc } from "./auc.js";
import { denseDesign, fitLogisticRegression, predictProba } from "./logistic-regression.js";

function points(n: number, seed: number): number[][] {
  const rng = new SeededRng(seed);
  return Array.from({ length: n }, () => [rng.next(), rng.next()]);
}

describe("fitLogisticRegression", () => {
  it("learns a linearly separable binary problem", () => {
    const train = points(400, 1);
    const labels = train.map(([a, b]) => (a + b > 1 ? 1 : 0));
    const model = fitLogisticRegression(denseDesign(train), labels, 2);
    const test = points(400, 2);
    const proba = predictProba(model, denseDesign(test));
    const scores = test.map((_, i) => proba[i * 2 + 1]);
    const auc = rocAuc(scores, test.map(([a, b]) => (a + b > 1 ? 1 : 0)))!;
    expect(auc).toBeGreaterThan(0.95);
    // Probabilities sum to 1 and lean the right way.
    for (let i = 0; i < test.length; i++) expect(proba[i * 2] + proba[i * 2 + 1]).toBeCloseTo(1, 12);
    const p = predictProba(model, denseDesign([[0.95, 0.95], [0.05, 0.05]]));
    expect(p[1]).toBeGreaterThan(0.8);
    expect(p[3]).toBeLessThan(0.2);
  });

  it("learns three classes with a softmax", () => {
    const cls = ([a, b]: number[]): number => (a < 0.33 ? 0 : b < 0.5 ? 1 : 2);
    const train = points(600, 3);
    const model = fitLogisticRegression(denseDesign(train), train.map(cls), 3, { iterations: 500 });
    const test = points(600, 4);
    const r = macroOneVsRestAuc(predictProba(model, denseDesign(test)), 3, test.map(cls))!;
    expect(r.auc).toBeGreaterThan(0.95);
  });

  it("gives unseen classes probability 0 and a single class probability 1", () => {
    const x = denseDesign([[0.1], [0.9], [0.5]]);
    const one = fitLogisticRegression(x, [2, 2, 2], 3);
    expect(Array.from(predictProba(one, x).slice(0, 3))).toEqual([0, 0, 1]);
    const two = fitLogisticRegression(x, [0, 2, 0], 3);
    const p = predictProba(two, x);
    expect(p[1]).toBe(0);
    expect(p[0] + p[2]).toBeCloseTo(1, 12);
  });

  it("stays finite with strong regularization and with none", () => {
    const train = points(100, 5);
    const labels = train.map(([a]) => (a > 0.5 ? 1 : 0));
    for (const l2 of [0, 10]) {
      const m = fitLogisticRegression(denseDesign(train), labels, 2, { l2 });
      expect(Array.from(m.weights).every(Number.isFinite)).toBe(true);
    }
  });
});
