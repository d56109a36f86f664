/**
 * The estimation pieces: the junction tree covers what it must and has the running intersection
 * property; the fit recovers known distributions from their exact marginals, on a tree and on a loop;
 * the shrinkage keeps dependence that stands out of the noise and drops what does not; the smoother
 * leaves rough or precise histograms alone and pools noise away from smooth ones; the sampler follows
 * the fitted marginals.
 */
import { describe, expect, it } from "vitest";
import { junctionTree, tableSize } from "./junction-tree.js";
import { fitModel, modelMarginal, type Measurement } from "./pgm.js";
import { coarsen, refinement, shrinkContrast, shrinkInteraction, signRuns, type JointModel } from "./estimate.js";
import { smoothCounts } from "./smooth.js";
import { decimalFormatter, fastDecimal, modelSampler } from "./model-sampler.js";
import { SeededRng, gaussian } from "../../random/rng.js";

/** Every pair of cliques sharing a column is joined by a path of cliques that all hold it. */
function runningIntersection(tree: ReturnType<typeof junctionTree>): boolean {
  const { cliques, parent } = tree;
  const columns = new Set(cliques.flat());
  for (const v of columns) {
    const holding = cliques.map((c, i) => (c.includes(v) ? i : -1)).filter((i) => i >= 0);
    // The holders form a connected subtree: all but one of them have a parent that holds v too.
    const rooted = holding.filter((i) => parent[i] < 0 || !cliques[parent[i]].includes(v));
    if (rooted.length !== 1) return false;
  }
  return true;
}

/** The joint of three binary-or-more columns as a dense table (row-major a, b, c). */
function joint3(da: number, db: number, dc: number, f: (a: number, b: number, c: number) => number): Float64Array {
  const t = new Float64Array(da * db * dc);
  let s = 0;
  for (let a = 0; a < da; a++) for (let b = 0; b < db; b++) for (let c = 0; c < dc; c++) s += t[(a * db + b) * dc + c] = f(a, b, c);
  return t.map((x) => x / s);
}

function marginalOf(t: Float64Array, dims: number[], keep: number[]): Float64Array {
  const size = keep.reduce((n, v) => n * dims[v], 1);
  const out = new Float64Array(size);
  const digits = new Array<number>(dims.length).fill(0);
  for (let i = 0; i < t.length; i++) {
    let idx = 0;
    for (const v of keep) idx = idx * dims[v] + digits[v];
    out[idx] += t[i];
    for (let d = dims.length - 1; d >= 0; d--) {
      if (++digits[d] < dims[d]) break;
      digits[d] = 0;
    }
  }
  return out;
}

describe("junction tree", () => {
  it("covers every clique, joins cliques by their intersections and keeps the running intersection property", () => {
    const domain = [3, 2, 4, 2, 3, 2];
    // A 4-cycle 0-1-2-3 needs a chord; 4 and 5 hang off it.
    const cover = [[0, 1], [1, 2], [2, 3], [0, 3], [3, 4], [4, 5]];
    const tree = junctionTree(domain, cover);
    for (const c of cover) expect(tree.cliques.some((q) => c.every((v) => q.includes(v)))).toBe(true);
    expect(tree.parent[0]).toBe(-1);
    tree.parent.slice(1).forEach((p, i) => expect(p).toBeLessThan(i + 1));
    tree.separators.forEach((s, i) => {
      if (i > 0) expect(s).toEqual(tree.cliques[i].filter((v) => tree.cliques[tree.parent[i]].includes(v)));
    });
    expect(runningIntersection(tree)).toBe(true);
    expect(Math.max(...tree.cliques.map((c) => c.length))).toBe(3);
    expect(tree.size).toBe(tree.cliques.reduce((s, c) => s + tableSize(c, domain), 0));
    // Unmentioned columns are cliques of their own.
    expect(junctionTree([2, 2, 2], [[0, 1]]).cliques).toEqual([[0, 1], [2]]);
  });
});

describe("graphical-model fit", () => {
  it("recovers a chain's joint from its exact pair marginals", () => {
    const dims = [3, 2, 4];
    const truth = joint3(3, 2, 4, (a, b, c) => [0.5, 0.3, 0.2][a] * [[0.9, 0.1], [0.4, 0.6], [0.1, 0.9]][a][b] * [[0.7, 0.1, 0.1, 0.1], [0.1, 0.2, 0.3, 0.4]][b][c]);
    const N = 1000;
    const measurements: Measurement[] = [
      { vars: [0, 1], y: marginalOf(truth, dims, [0, 1]).map((x) => x * N), variance: 1 },
      { vars: [1, 2], y: marginalOf(truth, dims, [1, 2]).map((x) => x * N), variance: 1 },
    ];
    const fit = fitModel(junctionTree(dims, [[0, 1], [1, 2]]), dims, measurements, N, { iterations: 2000, tolerance: 0 });
    // The chain's max-entropy joint is the truth: a ⊥ c | b.
    const ac = modelMarginal(fit, [0, 1])!;
    marginalOf(truth, dims, [0, 1]).forEach((p, i) => expect(ac[i]).toBeCloseTo(p, 4));
    const bc = modelMarginal(fit, [1, 2])!;
    marginalOf(truth, dims, [1, 2]).forEach((p, i) => expect(bc[i]).toBeCloseTo(p, 4));
  });

  it("fits all three pair marginals of a loop, with grouped and weighted (contrast) measurements", () => {
    const dims = [3, 3, 2];
    const truth = joint3(3, 3, 2, (a, b, c) => 1 + 3 * Number(a === b) + 2 * Number((a + c) % 2 === 0) + Number(b === 2 && c === 1));
    const N = 5000;
    const groups = [0, 0, 1];
    const ab = marginalOf(truth, dims, [0, 1]);
    const abGrouped = new Float64Array(4);
    for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) abGrouped[groups[a] * 2 + groups[b]] += ab[a * 3 + b] * N;
    const signs = [-1, 1, 1];
    const bc = marginalOf(truth, dims, [1, 2]);
    let contrast = 0;
    for (let b = 0; b < 3; b++) for (let c = 0; c < 2; c++) contrast += bc[b * 2 + c] * N * signs[b] * (c === 0 ? -1 : 1);
    const measurements: Measurement[] = [
      { vars: [0, 1], y: ab.map((x) => x * N), variance: 1 },
      { vars: [0, 1], groups: [groups, groups], groupCounts: [2, 2], y: abGrouped, variance: 1 },
      { vars: [0, 2], y: marginalOf(truth, dims, [0, 2]).map((x) => x * N), variance: 1 },
      { vars: [1, 2], y: bc.map((x) => x * N), variance: 1 },
      { vars: [1, 2], groups: [[0, 0, 0], [0, 0]], groupCounts: [1, 1], coef: [signs, [-1, 1]], y: Float64Array.of(contrast), variance: 1 },
    ];
    const tree = junctionTree(dims, [[0, 1], [0, 2], [1, 2]]);
    expect(tree.cliques).toEqual([[0, 1, 2]]);
    const fit = fitModel(tree, dims, measurements, N, { iterations: 3000, tolerance: 0 });
    for (const pair of [[0, 1], [0, 2], [1, 2]]) {
      const got = modelMarginal(fit, pair)!;
      marginalOf(truth, dims, pair).forEach((p, i) => expect(got[i]).toBeCloseTo(p, 3));
    }
    expect(fit.marginals[0].every((x) => x >= 0)).toBe(true);
  });
});

describe("shrinkage", () => {
  it("keeps an interaction that stands out of the noise, drops one that does not, and keeps the margins", () => {
    const r = [0.5, 0.5];
    const c = [0.3, 0.7];
    const N = 1000;
    const independent = Float64Array.from([N * 0.15 + 3, N * 0.35 - 3, N * 0.15 - 3, N * 0.35 + 3]);
    const weak = shrinkInteraction(independent, r, c, N, 100);
    expect(weak.keep).toBe(0);
    // Margins are kept (they are measurements of the 1-way shares); the 2 × 2 interaction goes.
    expect(weak.shrunk[0] + weak.shrunk[1]).toBeCloseTo(independent[0] + independent[1], 9);
    expect(weak.shrunk[0] + weak.shrunk[2]).toBeCloseTo(independent[0] + independent[2], 9);
    expect(weak.shrunk[0] / (weak.shrunk[0] + weak.shrunk[1])).toBeCloseTo(0.3, 9);
    const strong = shrinkInteraction(Float64Array.from([250, 250, 50, 450]), r, c, N, 100);
    expect(strong.keep).toBeGreaterThan(0.95);
    expect(strong.strength).toBeGreaterThan(100);
    const contrast = shrinkContrast(400, [0.5, 0.5, 0], [0.5, 0.5, 0], [[-1, 1, 1], [-1, 1, 1]], N, 100 ** 2);
    expect(contrast.keep).toBeCloseTo(1 - 1 / 16, 9);
    expect(contrast.shrunk[0]).toBeCloseTo(400 * (1 - 1 / 16), 9);
  });

  it("refines groupings into their common boundaries and maps refined groups back", () => {
    const g1 = [0, 0, 1, 1, 2];
    const g2 = [0, 1, 1, 1, 2];
    const fine = refinement(5, [g1, g2]);
    expect(fine).toEqual([0, 1, 2, 2, 3]);
    expect(Array.from(coarsen(fine, g1)!)).toEqual([0, 0, 1, 2]);
    expect(coarsen(g1, g2)).toBeUndefined();
    expect(refinement(4, [])).toEqual([0, 0, 0, 0]);
    expect(signRuns([-1, -1, 1, 1, -1])).toEqual([0, 0, 1, 1, 2]);
  });
});

describe("histogram smoothing", () => {
  it("leaves precise or rough histograms as they are and pools noise away from smooth ones", () => {
    const width = new Array(16).fill(1);
    const smooth = Array.from({ length: 16 }, (_, b) => 60 * Math.exp(-(((b - 7.5) / 4) ** 2)));
    expect(Array.from(smoothCounts(smooth, width, 1e-9)).every((x, b) => Math.abs(x - smooth[b]) < 1e-3)).toBe(true);
    const spiky = smooth.map((x, b) => (b === 5 ? x + 400 : x));
    const keptSpike = smoothCounts(spiky, width, 1);
    expect(keptSpike[5]).toBeGreaterThan(spiky[5] - 5);
    const rng = new SeededRng(4);
    let raw = 0;
    let fitted = 0;
    for (let rep = 0; rep < 50; rep++) {
      const noisy = smooth.map((x) => x + 25 * gaussian(rng));
      const s = smoothCounts(noisy, width, 625);
      smooth.forEach((x, b) => {
        raw += (noisy[b] - x) ** 2;
        fitted += (s[b] - x) ** 2;
      });
    }
    expect(fitted).toBeLessThan(0.5 * raw);
  });
});

describe("model sampler", () => {
  it("draws rows that follow the fitted clique marginals, within groups as the column distributions say", () => {
    const dims = [2, 3, 2];
    const truth = joint3(2, 3, 2, (a, b, c) => 1 + 4 * Number(a === Math.min(b, 1)) + 3 * Number(b === 2 && c === 1));
    const N = 1000;
    const tree = junctionTree(dims, [[0, 1], [1, 2]]);
    const fit = fitModel(tree, dims, [
      { vars: [0, 1], y: marginalOf(truth, dims, [0, 1]).map((x) => x * N), variance: 1 },
      { vars: [1, 2], y: marginalOf(truth, dims, [1, 2]).map((x) => x * N), variance: 1 },
    ], N, { iterations: 2000, tolerance: 0 });
    // Column 1 has 5 cells in 3 groups (cells 0, 1 | 2, 3 | 4); within a group the cells split 1 : 3.
    const p1 = Float64Array.from([0.25, 0.75, 0.25, 0.75, 1].map((x, c) => x * marginalOf(truth, dims, [1])[[0, 0, 1, 1, 2][c]]));
    const joint: JointModel = {
      fit, refine: [[0, 1], [0, 0, 1, 1, 2], [0, 1]], pairs: [[0, 1], [1, 2]], values: [undefined, undefined, undefined],
      p: [marginalOf(truth, dims, [0]), p1, marginalOf(truth, dims, [2])],
    };
    const cells = modelSampler([], joint).cells(100_000, new SeededRng(3));
    const counts = new Float64Array(2 * 5);
    for (let r = 0; r < 100_000; r++) counts[cells[0][r] * 5 + cells[1][r]] += 1 / 100_000;
    const ab = marginalOf(truth, dims, [0, 1]);
    for (let a = 0; a < 2; a++) {
      for (let c = 0; c < 5; c++) {
        const g = [0, 0, 1, 1, 2][c];
        const share = g === 2 ? 1 : [0.25, 0.75, 0.25, 0.75][c];
        expect(counts[a * 5 + c]).toBeCloseTo(ab[a * 3 + g] * share, 2);
      }
    }
  });

  it("writes a continuous value as fastDecimal does, with each column's integer parts cached", () => {
    const rng = new SeededRng(8);
    for (const [min, max] of [[15, 45], [-2.5, 3.7], [0, 1e-3], [-99_999.5, 99_999.5]]) {
      const format = decimalFormatter(min, max);
      for (let i = 0; i < 2000; i++) {
        const v = min + rng.next() * (max - min);
        expect(format(v)).toBe(fastDecimal(v, min, max));
      }
      expect(format(max)).toBe(fastDecimal(max, min, max));
      expect(format(min)).toBe(fastDecimal(min, min, max));
    }
  });
});
