import { describe, expect, it } from "vitest";
import { gaussian, SeededRng } from "../shared/random/rng.js";
import type { Cell, Schema, Table } from "../shared/schema/schema.js";
import { columnShapes } from "./column-shapes.js";
import { contingencySimilarity, correlationSimilarity, pairTrends, pearson } from "./pair-trends.js";

const schema: Schema = {
  missing: [""],
  columns: [
    { name: "a", type: "numeric", min: -5, max: 5, integer: false },
    { name: "b", type: "numeric", min: -10, max: 10, integer: false },
    { name: "grp", type: "categorical", values: ["low", "high"] },
  ],
};

/** b ≈ 2a, grp = sign of a: strongly related columns, with a few missing cells. */
function correlated(n: number, seed: number): Table {
  const rng = new SeededRng(seed);
  const a: Cell[] = [];
  const b: Cell[] = [];
  const g: Cell[] = [];
  for (let i = 0; i < n; i++) {
    const x = Math.max(-5, Math.min(5, gaussian(rng) * 1.5));
    a.push(rng.next() < 0.05 ? null : x);
    b.push(rng.next() < 0.05 ? null : Math.max(-10, Math.min(10, 2 * x + 0.3 * gaussian(rng))));
    g.push(rng.next() < 0.05 ? null : x > 0 ? 1 : 0);
  }
  return { schema, rowCount: n, columns: [a, b, g] };
}

/** Every column permuted independently: marginals kept, relationships destroyed. */
function shuffledWithinColumns(t: Table, seed: number): Table {
  const rng = new SeededRng(seed);
  const columns = t.columns.map((col) => {
    const c = col.slice();
    for (let i = c.length - 1; i > 0; i--) {
      const k = Math.floor(rng.next() * (i + 1));
      [c[i], c[k]] = [c[k], c[i]];
    }
    return c;
  });
  return { ...t, columns };
}

describe("pearson and correlationSimilarity", () => {
  it("computes correlations on rows where both values are present", () => {
    expect(pearson([1, 2, 3, 4], [2, 4, 6, 8])).toBeCloseTo(1, 12);
    expect(pearson([1, 2, 3, 4], [8, 6, 4, 2])).toBeCloseTo(-1, 12);
    expect(pearson([1, 2, NaN, 3], [1, 2, 100, 3])).toBeCloseTo(1, 12);
    // x = [1,2,3], y = [1,3,2]: cov = 0.5·2/… → r = 0.5
    expect(pearson([1, 2, 3], [1, 3, 2])).toBeCloseTo(0.5, 12);
  });

  it("is undefined with fewer than 3 rows or zero variance", () => {
    expect(pearson([1, 2], [3, 4])).toBeNull();
    expect(pearson([1, 2, NaN, 4], [1, NaN, 3, 4])).toBeNull();
    expect(pearson([5, 5, 5, 5], [1, 2, 3, 4])).toBeNull();
  });

  it("gives 1 − |Δρ| / 2", () => {
    expect(correlationSimilarity(0.5, 0.5)).toBe(1);
    expect(correlationSimilarity(0.5, 0.1)).toBeCloseTo(0.8, 12);
    expect(correlationSimilarity(1, -1)).toBe(0);
    expect(correlationSimilarity(-0.3, 0.3)).toBeCloseTo(0.7, 12);
  });

  it("compares joint histograms for contingency similarity", () => {
    const x = { codes: Int32Array.from([0, 0, 1, 1]), levels: 2 };
    const y = { codes: Int32Array.from([0, 0, 1, 1]), levels: 2 };
    const yFlipped = { codes: Int32Array.from([1, 1, 0, 0]), levels: 2 };
    // joints {00: ½, 11: ½} vs {01: ½, 10: ½} → TVD 1
    expect(contingencySimilarity(x, y, x, yFlipped)).toBe(0);
    expect(contingencySimilarity(x, y, x, y)).toBe(1);
    // {00: ½, 11: ½} vs {00: ¼, 01: ¼, 10: ¼, 11: ¼} → TVD ½
    const y2 = { codes: Int32Array.from([0, 1, 0, 1]), levels: 2 };
    expect(contingencySimilarity(x, y, x, y2)).toBeCloseTo(0.5, 12);
  });
});

describe("pairTrends", () => {
  it("scores identical tables 1 and picks the metric by column types", () => {
    const t = correlated(300, 1);
    const r = pairTrends(schema, t, t);
    expect(r.score).toBe(1);
    expect(r.pairs.map((p) => [p.columns.join("-"), p.metric])).toEqual([
      ["a-b", "correlation"],
      ["a-grp", "contingency"],
      ["b-grp", "contingency"],
    ]);
    expect(columnShapes(schema, t, t).score).toBe(1);
  });

  it("keeps shapes but loses pair trends when columns are shuffled independently", () => {
    const t = correlated(2000, 2);
    const s = shuffledWithinColumns(t, 3);
    expect(columnShapes(schema, t, s).score).toBe(1);
    const r = pairTrends(schema, t, s);
    const ab = r.pairs.find((p) => p.columns[0] === "a" && p.columns[1] === "b")!;
    // ρ_real ≈ 1, ρ_shuffled ≈ 0 → similarity ≈ 0.5
    expect(ab.score).toBeGreaterThan(0.4);
    expect(ab.score).toBeLessThan(0.6);
    expect(r.score).toBeLessThan(0.75);
    // Another real sample from the same process keeps them.
    expect(pairTrends(schema, t, correlated(2000, 4)).score).toBeGreaterThan(0.9);
  });

  it("falls back to contingency when a correlation is undefined", () => {
    const t: Table = { schema, rowCount: 4, columns: [[1, 2, 3, 4], [null, null, null, 1], [0, 1, 0, 1]] };
    const r = pairTrends(schema, t, t);
    expect(r.pairs[0].metric).toBe("contingency");
    expect(r.pairs[0].score).toBe(1);
    expect(r.pairs[0].note).toMatch(/no correlation/);
  });

  it("has no pairs and a note for a single column", () => {
    const one: Schema = { missing: [], columns: [schema.columns[0]] };
    const t: Table = { schema: one, rowCount: 2, columns: [[1, 2]] };
    const r = pairTrends(one, t, t);
    expect(r.pairs).toEqual([]);
    expect(r.score).toBe(0);
    expect(r.note).toMatch(/fewer than two/);
  });
});
