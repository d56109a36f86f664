/** The selection scores: the sensitivity bound by brute force, and the tree chosen from them. */
import { describe, expect, it } from "vitest";
import { dependenceScore, maximumSpanningTree, pairList, SCORE_SENSITIVITY_PER_PAIR, siteScores } from "./scores.js";
import { SeededRng } from "../../random/rng.js";

/** Every table of `rows × cols` cells with at most `n` records in total. */
function* tables(rows: number, cols: number, n: number, prefix: number[] = []): Generator<number[]> {
  const used = prefix.reduce((a, b) => a + b, 0);
  if (prefix.length === rows * cols) {
    yield prefix;
    return;
  }
  for (let v = 0; v <= n - used; v++) yield* tables(rows, cols, n, [...prefix, v]);
}

describe("dependence scores", () => {
  it("change by less than 4 (and by exactly n/(n+1)·‖e_a − p‖₁·‖e_b − q‖₁) when one record is added or removed", () => {
    let worst = 0;
    for (const [rows, cols, n] of [[2, 2, 6], [2, 3, 5], [3, 3, 4]] as const) {
      for (const t of tables(rows, cols, n)) {
        const base = dependenceScore(t, rows, cols);
        const total = t.reduce((a, b) => a + b, 0);
        for (let k = 0; k < t.length; k++) {
          const added = [...t];
          added[k] += 1;
          const change = Math.abs(dependenceScore(added, rows, cols) - base);
          worst = Math.max(worst, change);
          expect(change).toBeLessThan(SCORE_SENSITIVITY_PER_PAIR);
          // The rank-one identity of the change of T − R·Cᵀ/n bounds it (scores.ts).
          const a = Math.floor(k / cols);
          const b = k % cols;
          let ra = 0;
          let cb = 0;
          for (let x = 0; x < cols; x++) ra += t[a * cols + x];
          for (let y = 0; y < rows; y++) cb += t[y * cols + b];
          const bound = total === 0 ? 0 : (total / (total + 1)) * 2 * (1 - ra / total) * 2 * (1 - cb / total);
          expect(change).toBeLessThanOrEqual(bound + 1e-9);
        }
      }
    }
    expect(worst).toBeGreaterThan(1); // the bound is not vacuous
  });

  it("the score vector of a site moves by less than 4√P in L2 when one row is added", () => {
    const rng = new SeededRng(3);
    const groupings = [[0, 1, 2], [0, 1, 2, 3], [0, 1], [0, 1, 2]];
    const rows = 40;
    const codes = groupings.map((g) => Int32Array.from({ length: rows }, () => Math.floor(rng.next() * g.length)));
    const base = siteScores(codes, groupings);
    const P = pairList(groupings.length).length;
    for (let trial = 0; trial < 50; trial++) {
      const extra = groupings.map((g) => Math.floor(rng.next() * g.length));
      const more = siteScores(codes.map((c, j) => Int32Array.from([...c, extra[j]])), groupings);
      let ss = 0;
      for (let k = 0; k < P; k++) ss += (more[k] - base[k]) ** 2;
      expect(Math.sqrt(ss)).toBeLessThan(SCORE_SENSITIVITY_PER_PAIR * Math.sqrt(P));
    }
  });

  it("is 0 for an independent table and large for a dependent one", () => {
    expect(dependenceScore([2, 4, 3, 6], 2, 2)).toBeCloseTo(0, 12);
    expect(dependenceScore([10, 0, 0, 10], 2, 2)).toBeCloseTo(20, 12);
  });

  it("the maximum spanning tree follows the strongest scores, listed from column 0 parent before child", () => {
    // 4 columns, pairs (0,1) (0,2) (0,3) (1,2) (1,3) (2,3): the chain 0–2–1–3 is strongest.
    const edges = maximumSpanningTree(4, [1, 9, 0, 8, 7, 2]);
    expect(edges).toEqual([[0, 2], [2, 1], [1, 3]]);
    expect(maximumSpanningTree(1, [])).toEqual([]);
  });
});
