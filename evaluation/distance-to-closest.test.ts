import { describe, expect, it } from "vitest";
import { SeededRng } from "../shared/random/rng.js";
import type { Cell, Schema, Table } from "../shared/schema/schema.js";
import { closestDistances, distanceToClosest, encodeRows, median, rowDistance, sampleRows } from "./distance-to-closest.js";

const schema: Schema = {
  missing: [""],
  columns: [
    { name: "x", type: "numeric", min: 0, max: 10, integer: false },
    { name: "c", type: "categorical", values: ["a", "b", "c"] },
  ],
};

function table(x: Cell[], c: Cell[]): Table {
  return { schema, rowCount: x.length, columns: [x, c] };
}

function randomTable(s: Schema, n: number, seed: number, missingRate = 0.05): Table {
  const rng = new SeededRng(seed);
  const columns = s.columns.map((c) =>
    Array.from({ length: n }, (): Cell => {
      if (rng.next() < missingRate) return null;
      return c.type === "numeric" ? c.min + rng.next() * (c.max - c.min) : Math.floor(rng.next() * c.values.length);
    }),
  );
  return { schema: s, rowCount: n, columns };
}

describe("row distance", () => {
  it("averages per-column distances, missingness included", () => {
    const t = table([0, 5, null, null, 10], [0, 1, 1, null, 0]);
    const e = encodeRows(schema, t);
    expect(rowDistance(e, 0, e, 1, 2)).toBeCloseTo((0.5 + 1) / 2, 12);
    expect(rowDistance(e, 1, e, 2, 2)).toBeCloseTo((1 + 0) / 2, 12); // missing vs present
    expect(rowDistance(e, 2, e, 3, 2)).toBeCloseTo((0 + 1) / 2, 12); // missing vs missing
    expect(rowDistance(e, 3, e, 3, 2)).toBe(0);
    expect(rowDistance(e, 0, e, 4, 2)).toBeCloseTo((1 + 0) / 2, 12);
  });

  it("finds the closest reference row", () => {
    const ref = encodeRows(schema, table([0, 5, 10], [0, 1, 2]));
    const q = encodeRows(schema, table([4, 9, null], [1, 2, 0]));
    const d = closestDistances(q, ref, 2);
    expect(d[0]).toBeCloseTo(0.05, 12);
    expect(d[1]).toBeCloseTo(0.05, 12);
    expect(d[2]).toBeCloseTo(0.5, 12);
  });
});

describe("helpers", () => {
  it("computes medians", () => {
    expect(median(Float64Array.from([3, 1, 2]))).toBe(2);
    expect(median(Float64Array.from([4, 1, 2, 3]))).toBe(2.5);
    expect(median(new Float64Array(0))).toBe(0);
  });

  it("samples distinct rows reproducibly", () => {
    const a = sampleRows(100, 10, new SeededRng(7));
    expect(new Set(a).size).toBe(10);
    expect(Array.from(a)).toEqual(Array.from(sampleRows(100, 10, new SeededRng(7))));
    expect(Array.from(sampleRows(3, 10, new SeededRng(7)))).toEqual([0, 1, 2]);
  });
});

describe("distanceToClosest", () => {
  it("flags synthetic rows copied from the real rows", () => {
    const real = randomTable(schema, 500, 1);
    const holdout = randomTable(schema, 200, 2);
    const picks = Array.from({ length: 300 }, (_, i) => (i * 7) % 500);
    const copies: Table = { schema, rowCount: picks.length, columns: real.columns.map((col) => picks.map((i) => col[i])) };
    const r = distanceToClosest({ schema, real, synthetic: copies, holdout });
    expect(r.shareExactCopies).toBe(1);
    expect(r.syntheticMedian).toBe(0);
    expect(r.holdoutMedian).toBeGreaterThan(0);
    expect(r.ratio).toBeLessThan(1);
    expect(r.shareCloserThanHoldoutMedian).toBe(1);
  });

  it("gives a ratio near 1 for a fresh sample from the same distribution", () => {
    // No missing cells: with continuous values, no row then coincides with another by chance.
    const real = randomTable(schema, 1000, 3, 0);
    const r = distanceToClosest({ schema, real, synthetic: randomTable(schema, 500, 4, 0), holdout: randomTable(schema, 500, 5, 0) });
    expect(r.ratio).toBeGreaterThan(0.7);
    expect(r.ratio).toBeLessThan(1.4);
    expect(r.shareExactCopies).toBe(0);
  });

  it("samples at most maxRows rows and is reproducible", () => {
    const real = randomTable(schema, 100, 6);
    const syn = randomTable(schema, 300, 7);
    const a = distanceToClosest({ schema, real, synthetic: syn, holdout: syn, maxRows: 50, seed: 3 });
    const b = distanceToClosest({ schema, real, synthetic: syn, holdout: syn, maxRows: 50, seed: 3 });
    expect(a.sampled).toEqual({ synthetic: 50, holdout: 50 });
    expect(a).toEqual(b);
  });

  it("handles empty tables without NaN", () => {
    const empty = table([], []);
    const r = distanceToClosest({ schema, real: empty, synthetic: randomTable(schema, 10, 8), holdout: empty });
    for (const v of [r.syntheticMedian, r.holdoutMedian, r.ratio, r.shareExactCopies, r.shareCloserThanHoldoutMedian]) {
      expect(Number.isFinite(v)).toBe(true);
    }
  });

  it("subsamples a large synthetic table to 2000 rows against 5000 real rows", () => {
    const wide: Schema = {
      missing: [""],
      columns: Array.from({ length: 16 }, (_, j) =>
        j % 2 === 0
          ? { name: `n${j}`, type: "numeric" as const, min: 0, max: 100, integer: j % 4 === 0 }
          : { name: `c${j}`, type: "categorical" as const, values: ["a", "b", "c", "d"] },
      ),
    };
    const real = randomTable(wide, 5000, 9);
    const syn = randomTable(wide, 3000, 10);
    const hold = randomTable(wide, 1000, 11);
    const r = distanceToClosest({ schema: wide, real, synthetic: syn, holdout: hold });
    expect(r.sampled.synthetic).toBe(2000);
  });
});
