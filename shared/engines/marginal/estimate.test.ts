/** The tree fit recovers a known tree distribution from its exact marginals, and its samples follow it. */
import { describe, expect, it } from "vitest";
import { fitTree, ipf, shrinkToIndependence, tableOffsets } from "./estimate.js";
import { coarseLayout, type Grouping } from "./discretise.js";
import { treeSampler } from "./tree-sampler.js";
import type { Schema } from "../../schema/schema.js";
import { SeededRng } from "../../random/rng.js";

// a (3 values) → b (2 values), a → c (4 values); no missing cells (their probability is 0).
const schema: Schema = {
  columns: [
    { name: "a", type: "categorical", values: ["a0", "a1", "a2"] },
    { name: "b", type: "categorical", values: ["b0", "b1"] },
    { name: "c", type: "categorical", values: ["c0", "c1", "c2", "c3"] },
  ],
  missing: [""],
};
const pa = [0.5, 0.3, 0.2];
const pbGivenA = [[0.9, 0.1], [0.4, 0.6], [0.1, 0.9]];
const pcGivenA = [[0.7, 0.1, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1], [0.05, 0.05, 0.1, 0.8]];
const N = 10_000;
const layout = coarseLayout(schema);
const identity = (size: number): Grouping => Array.from({ length: size }, (_, c) => c);
const groups = layout.sizes.map(identity);
const edges: [number, number][] = [[0, 1], [0, 2]];

function exactMeasurements() {
  const marginals = new Float64Array(layout.coarseTotal);
  const pb = [0, 1].map((b) => pa.reduce((s, p, a) => s + p * pbGivenA[a][b], 0));
  const pc = [0, 1, 2, 3].map((c) => pa.reduce((s, p, a) => s + p * pcGivenA[a][c], 0));
  [pa, pb, pc].forEach((p, j) => p.forEach((x, c) => (marginals[layout.offsets[j] + c] = N * x)));
  const { offsets, total } = tableOffsets(edges, groups);
  const tables = new Float64Array(total);
  for (let a = 0; a < 3; a++) {
    for (let b = 0; b < 2; b++) tables[offsets[0] + a * 3 + b] = N * pa[a] * pbGivenA[a][b];
    for (let c = 0; c < 4; c++) tables[offsets[1] + a * 5 + c] = N * pa[a] * pcGivenA[a][c];
  }
  return { layout, marginals, marginalVariance: 1e-12, edges, groups, tables, tableVariance: 1e-12 };
}

describe("tree estimation", () => {
  it("recovers a tree distribution from its exact marginals", () => {
    const tree = fitTree(exactMeasurements());
    expect(tree.rows).toBeCloseTo(N, 6);
    pa.forEach((p, a) => expect(tree.p[0][a]).toBeCloseTo(p, 6));
    for (let a = 0; a < 3; a++) {
      for (let b = 0; b < 2; b++) expect(tree.joints[0][a * 3 + b]).toBeCloseTo(pa[a] * pbGivenA[a][b], 6);
      for (let c = 0; c < 4; c++) expect(tree.joints[1][a * 5 + c]).toBeCloseTo(pa[a] * pcGivenA[a][c], 6);
    }
  });

  it("makes noisy tables non-negative and consistent with the column distributions", () => {
    const m = exactMeasurements();
    const rng = new SeededRng(9);
    const noisy = { ...m, marginals: m.marginals.map((x) => x + 300 * (rng.next() - 0.5)), tables: m.tables.map((x) => x + 900 * (rng.next() - 0.5)), marginalVariance: 7500, tableVariance: 67500 };
    const tree = fitTree(noisy);
    tree.joints.forEach((joint, e) => {
      const [a, b] = edges[e];
      const ga = layout.sizes[a];
      const gb = layout.sizes[b];
      expect(joint.every((x) => x >= 0)).toBe(true);
      for (let x = 0; x < ga; x++) expect(joint.subarray(x * gb, (x + 1) * gb).reduce((s, v) => s + v, 0)).toBeCloseTo(tree.p[a][x], 6);
      for (let y = 0; y < gb; y++) expect(Array.from({ length: ga }, (_, x) => joint[x * gb + y]).reduce((s, v) => s + v, 0)).toBeCloseTo(tree.p[b][y], 6);
    });
  });

  it("shrinks a table that is pure noise to independence and keeps a strong dependence", () => {
    const r = [0.5, 0.5];
    const noise = shrinkToIndependence([26, 24, 24, 26], r, r, 100, 25);
    expect(Array.from(noise)).toEqual([25, 25, 25, 25]);
    const strong = shrinkToIndependence([50, 0, 0, 50], r, r, 100, 25);
    expect(strong[0]).toBeGreaterThan(45);
  });

  it("IPF matches both margins", () => {
    const x = ipf(Float64Array.from([1, 2, 3, 4]), [0.3, 0.7], [0.6, 0.4]);
    expect(x[0] + x[1]).toBeCloseTo(0.3, 9);
    expect(x[0] + x[2]).toBeCloseTo(0.6, 9);
  });
});

describe("tree sampling", () => {
  it("draws rows whose joint distribution is the model's", () => {
    const tree = fitTree(exactMeasurements());
    const rows = [...treeSampler(schema.columns, tree).sample(200_000, new SeededRng(4))];
    const counts = new Map<string, number>();
    for (const r of rows) counts.set(r.join(","), (counts.get(r.join(",")) ?? 0) + 1);
    let tvd = 0;
    for (let a = 0; a < 3; a++) {
      for (let b = 0; b < 2; b++) {
        for (let c = 0; c < 4; c++) {
          const want = pa[a] * pbGivenA[a][b] * pcGivenA[a][c];
          tvd += Math.abs((counts.get(`a${a},b${b},c${c}`) ?? 0) / rows.length - want) / 2;
        }
      }
    }
    expect(rows.every((r) => r.every((cell) => cell !== ""))).toBe(true); // missing has probability 0
    expect(tvd).toBeLessThan(0.01);
  });
});

describe("fast decimals", () => {
  it("write exactly what formatDecimal writes", async () => {
    const { fastDecimal } = await import("./tree-sampler.js");
    const { formatDecimal } = await import("../independent/sampler.js");
    const rng = new SeededRng(8);
    for (let i = 0; i < 100_000; i++) {
      const scale = [1, 10, 1000, 1e-3][i % 4];
      const v = (rng.next() * 2 - 1) * scale;
      expect(fastDecimal(v, -scale, scale)).toBe(formatDecimal(v, -scale, scale));
    }
    for (const v of [0, -0, 0.00004, -0.00004, 2.5, 45, 44.99999, 1e12]) expect(fastDecimal(v, -2e12, 2e12)).toBe(formatDecimal(v, -2e12, 2e12));
  });
});
