import { describe, expect, it } from "vitest";
import type { Schema, Table } from "../shared/schema/schema.js";
import { columnShapes, histogram, ksStatisticWithMissing, totalVariation } from "./column-shapes.js";

const schema: Schema = {
  missing: [""],
  columns: [
    { name: "x", type: "numeric", min: 0, max: 10, integer: true },
    { name: "c", type: "categorical", values: ["a", "b", "c"] },
  ],
};

function table(x: (number | null)[], c: (number | null)[]): Table {
  return { schema, rowCount: x.length, columns: [x, c] };
}

describe("ksStatisticWithMissing", () => {
  it("matches a hand-computed example with missing values", () => {
    // F_a: missing 0.25, ≤1 0.5, ≤2 0.75, ≤3 1, ≤4 1; F_b: 0, 0, 0.5, 0.5, 1 → sup |diff| = 0.5
    expect(ksStatisticWithMissing([1, 2, 3, null], [2, 2, 4, 4])).toBeCloseTo(0.5, 12);
  });

  it("counts a difference in missing rates", () => {
    // F_a: 0, 1/3, 2/3, 1; F_b: 0.4, 0.6, 0.8, 1 → 0.4 at the missing atom
    expect(ksStatisticWithMissing([1, 2, 3], [1, 2, 3, null, null])).toBeCloseTo(0.4, 12);
    expect(ksStatisticWithMissing([null, null], [null])).toBe(0);
    expect(ksStatisticWithMissing([null, null], [5])).toBe(1);
  });

  it("is 0 for equal distributions and 1 for disjoint ones", () => {
    expect(ksStatisticWithMissing([3, 1, 2, 2], [2, 1, 2, 3])).toBe(0);
    expect(ksStatisticWithMissing([1, 2], [3, 4])).toBe(1);
    expect(ksStatisticWithMissing([1, 2], [])).toBe(1);
  });
});

describe("totalVariation", () => {
  it("matches a hand-computed example", () => {
    // p = [.5, .25, .25, 0], q = [.25, .5, 0, .25] → ½ (.25 + .25 + .25 + .25) = 0.5
    expect(totalVariation([2, 1, 1, 0], [1, 2, 0, 1])).toBeCloseTo(0.5, 12);
    expect(totalVariation([1, 1], [5, 5])).toBe(0);
    expect(totalVariation([1, 0], [0, 1])).toBe(1);
  });

  it("normalizes counts and handles empty histograms", () => {
    expect(totalVariation([3, 1], [6, 2])).toBe(0);
    expect(totalVariation([0, 0], [1, 1])).toBe(1);
  });

  it("works on histograms of codes", () => {
    expect(Array.from(histogram(Int32Array.from([0, 2, 2, 3]), 4))).toEqual([1, 0, 2, 1]);
  });
});

describe("columnShapes", () => {
  it("scores identical tables 1", () => {
    const t = table([1, 2, null, 7, 7], [0, null, 2, 2, 1]);
    const r = columnShapes(schema, t, t);
    expect(r.score).toBe(1);
    expect(r.columns.x).toEqual({ metric: "KS", score: 1 });
    expect(r.columns.c).toEqual({ metric: "TVD", score: 1 });
  });

  it("uses 1 − KS and 1 − TVD with missing as a category", () => {
    const real = table([1, 2, 3, null], [0, 0, 1, 2]);
    const syn = table([2, 2, 4, 4], [0, null, 1, 1]);
    const r = columnShapes(schema, real, syn);
    expect(r.columns.x.score).toBeCloseTo(0.5, 12);
    expect(r.columns.c.score).toBeCloseTo(0.5, 12);
    expect(r.score).toBeCloseTo(0.5, 12);
  });

  it("scores 0 with a note when one side has no rows", () => {
    const r = columnShapes(schema, table([1, 2], [0, 1]), table([], []));
    expect(r.columns.x.score).toBe(0);
    expect(r.columns.x.note).toMatch(/no rows/);
    expect(r.score).toBe(0);
  });
});
