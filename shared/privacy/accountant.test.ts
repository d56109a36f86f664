import { describe, expect, it } from "vitest";
import { Accountant } from "./accountant.js";
import { epsilonForDelta } from "./gaussian.js";
import type { Mechanism } from "./mechanism.js";
import { FedsynthError } from "../errors.js";

const g = (l2Sensitivity: number, sigma: number, repetitions = 1): Mechanism => ({
  kind: "gaussian",
  l2Sensitivity,
  sigma,
  repetitions,
});

describe("Accountant", () => {
  it("an empty history costs nothing", () => {
    expect(new Accountant().epsilon(1e-5)).toBe(0);
    expect(Accountant.epsilonOf([], 1e-5)).toBe(0);
  });

  it("records an append-only history and returns copies", () => {
    const acc = new Accountant([g(1, 2)]);
    acc.record(g(2, 3, 4));
    const h = acc.history();
    expect(h).toEqual([g(1, 2), g(2, 3, 4)]);
    h.pop();
    (h[0] as { sigma: number }).sigma = 1e-9;
    expect(acc.history()).toEqual([g(1, 2), g(2, 3, 4)]);
  });

  it("does not alias the mechanisms it was given", () => {
    const m = g(1, 2);
    const acc = new Accountant();
    acc.record(m);
    (m as { sigma: number }).sigma = 0.001;
    expect(acc.history()[0]).toEqual(g(1, 2));
  });

  it("composes Gaussian mechanisms exactly in GDP", () => {
    const acc = new Accountant();
    acc.record(g(3, 1));
    acc.record(g(4, 1));
    expect(acc.epsilon(1e-5)).toBe(epsilonForDelta(5, 1e-5));
    expect(Accountant.epsilonOf([g(1, 2, 4)], 1e-6)).toBeCloseTo(Accountant.epsilonOf([g(1, 1)], 1e-6), 7);
  });

  it("spends more with every record (monotone)", () => {
    const acc = new Accountant();
    let prev = 0;
    for (let i = 0; i < 10; i++) {
      acc.record(g(Math.sqrt(7), 20));
      const e = acc.epsilon(1e-5);
      expect(e).toBeGreaterThan(prev);
      prev = e;
    }
    expect(Accountant.epsilonOf(acc.history(), 1e-5)).toBe(prev);
  });

  it("rejects unknown kinds and invalid parameters with FedsynthError('invalid-argument')", () => {
    const unknown = { kind: "laplace", l1Sensitivity: 1, scale: 1 } as unknown as Mechanism;
    let err: unknown;
    try {
      Accountant.epsilonOf([unknown], 1e-5);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FedsynthError);
    expect((err as FedsynthError).code).toBe("invalid-argument");
    expect((err as FedsynthError).message).toContain("laplace");
    expect(() => new Accountant([unknown])).toThrow(FedsynthError);
    expect(() => new Accountant().record(g(1, 0))).toThrow(FedsynthError);
    expect(() => new Accountant().record(null as unknown as Mechanism)).toThrow(FedsynthError);
    expect(() => Accountant.epsilonOf([g(1, 1)], 0)).toThrow(FedsynthError);
    expect(() => Accountant.epsilonOf([g(1, 1)], 1)).toThrow(FedsynthError);
  });
});
