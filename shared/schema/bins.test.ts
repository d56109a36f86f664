import { describe, expect, it } from "vitest";
import { binIndex, decimalPlaces, numericBins, numericGrid, snapToGrid } from "./bins.js";
import type { NumericColumn } from "./schema.js";

const numeric = (c: Partial<NumericColumn>): NumericColumn => ({ name: "x", type: "numeric", min: 0, max: 10, integer: false, ...c });

describe("numericGrid", () => {
  it("has no grid for a continuous column without a step", () => {
    expect(numericGrid(numeric({}))).toBeUndefined();
  });

  it("integer columns: the whole numbers from ceil(min), or every step-th of them", () => {
    const g = numericGrid(numeric({ min: 17.5, max: 90.2, integer: true }))!;
    expect([g.count, g.origin, g.step, g.decimals]).toEqual([73, 18, 1, 0]);
    expect([g.value(0), g.value(72)]).toEqual([18, 90]);
    const bp = numericGrid(numeric({ min: 80, max: 225, integer: true, step: 10 }))!;
    expect([bp.count, bp.value(14)]).toEqual([15, 220]);
    expect([bp.index(124.9), bp.index(125), bp.index(300), bp.index(-5)]).toEqual([4, 5, 14, 0]);
  });

  it("step columns: min + k·step written exactly, never outside the bounds", () => {
    const g = numericGrid(numeric({ min: -3, max: 7, step: 0.1 }))!;
    expect([g.count, g.decimals]).toEqual([101, 1]);
    expect(Array.from({ length: g.count }, (_, k) => g.value(k))).toEqual(Array.from({ length: 101 }, (_, k) => Number(((k - 30) / 10).toFixed(1)) || 0));
    expect(g.value(30)).toBe(0);
    expect(Object.is(g.value(30), -0)).toBe(false);
    expect(g.index(0.04)).toBe(30);
    expect(g.index(6.96)).toBe(100);
    // The last multiple below max when max is off the grid; min's decimals count too.
    const h = numericGrid(numeric({ min: 0.05, max: 1, step: 0.25 }))!;
    expect([h.count, h.decimals, h.value(3)]).toEqual([4, 2, 0.8]);
    expect(snapToGrid(numeric({ min: 0.05, max: 1, step: 0.25 }), 1)).toBe(0.8);
    // A step wider than the range: one value.
    expect(numericGrid(numeric({ min: 0, max: 1, step: 5 }))!.count).toBe(1);
  });

  it("counts decimal places of the shortest decimal form", () => {
    expect([0, 3, 0.1, 0.25, -1.125, 1e-7, 1.5e-7, 2.5e21].map(decimalPlaces)).toEqual([0, 0, 1, 2, 3, 7, 8, 0]);
  });
});

describe("numericBins", () => {
  it("keeps integer columns as before: one bin per value up to 32 values, else 16 bins of whole integers", () => {
    const small = numericBins(numeric({ min: 0, max: 10, integer: true }));
    expect(small.lo).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(small.hi).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const age = numericBins(numeric({ min: 18, max: 90, integer: true }));
    expect(age.perBin).toBe(5);
    expect(age.lo.length).toBe(15);
    expect([age.lo[0], age.hi[0], age.lo[14], age.hi[14]]).toEqual([18, 23, 88, 91]);
    expect([binIndex(age, 22), binIndex(age, 23), binIndex(age, 90)]).toEqual([0, 1, 14]);
  });

  it("step columns: one bin per grid value up to 32 values, else bins of whole blocks of grid values", () => {
    const half = numericBins(numeric({ min: 0, max: 10, step: 0.5 }));
    expect(half.lo.length).toBe(21);
    expect([binIndex(half, 0.24), binIndex(half, 0.26), binIndex(half, 10)]).toEqual([0, 1, 20]);
    const oldpeak = numericBins(numeric({ min: -3, max: 7, step: 0.1 }));
    expect(oldpeak.perBin).toBe(7);
    expect(oldpeak.lo.length).toBe(15);
    expect(oldpeak.lo.slice(0, 3)).toEqual([-3, -2.3, -1.6]);
    expect(oldpeak.hi[14]).toBe(7);
    // 0 is grid value 30, in the block 28..34 (bin 4); -0.3 (27) is in bin 3.
    expect([binIndex(oldpeak, 0), binIndex(oldpeak, -0.2), binIndex(oldpeak, -0.3), binIndex(oldpeak, 7)]).toEqual([4, 4, 3, 14]);
    // An explicit "bins" still sets how many blocks.
    expect(numericBins(numeric({ min: -3, max: 7, step: 0.1, bins: 20 })).perBin).toBe(6);
  });

  it("continuous columns: equal-width bins as before", () => {
    const b = numericBins(numeric({ min: 0, max: 8, bins: 4 }));
    expect(b.lo).toEqual([0, 2, 4, 6]);
    expect(b.hi).toEqual([2, 4, 6, 8]);
    expect(b.grid).toBeUndefined();
    expect([binIndex(b, 1.99), binIndex(b, 2), binIndex(b, 8)]).toEqual([0, 1, 3]);
  });
});
