/**
 * The model sampler's rows follow the model: chi-square checks of sampled frequencies (fixed seed) against
 * the fitted clique marginals over groups, the cells' shares within their groups, a fine column's values
 * within their cells, and the values drawn within a bin (continuous columns, and the grid values of a wide
 * block), jointly with the groups of the columns they are drawn with. The model has fused and not-fused
 * draws, draws that share a uniform and draws that do not. Each check is shown to catch a bias of at most
 * 10% in what it checks; cells and values of probability 0 never appear.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { Column, OutputRow } from "../../schema/schema.js";
import { numericBins } from "../../schema/bins.js";
import { SeededRng, type Rng } from "../../random/rng.js";
import { junctionTree } from "./junction-tree.js";
import { fitModel, projectionMap } from "./pgm.js";
import type { JointModel } from "./estimate.js";
import { decimalFormatter, fastDecimal, modelSampler } from "./model-sampler.js";

const letters = (n: number) => Array.from({ length: n }, (_, i) => `v${i}`);
const columns: Column[] = [
  { name: "c1", type: "categorical", values: ["a", "b"] },
  { name: "c2", type: "categorical", values: ["a", "b", "c"] },
  // 2,000 grid values with per-value probabilities (a fine column): never fused, a group then a value.
  { name: "n", type: "numeric", min: 0, max: 1999, integer: true },
  { name: "x", type: "numeric", min: -5, max: 5, integer: false },
  // 16 blocks of 63 integers, drawn uniformly within the block.
  { name: "w", type: "numeric", min: 0, max: 999, integer: true },
  { name: "h", type: "categorical", values: letters(35) },
  // Given h's 36 groups, g's 41 cells make too large a fused table: a group, then a cell within it.
  { name: "g", type: "categorical", values: letters(40) },
  // Not fused either (given h and g): a group, a cell, then the value within the bin.
  { name: "y", type: "numeric", min: 0, max: 10, integer: false },
  { name: "z", type: "categorical", values: ["a", "b"] },
];
const bins = columns.map((c) => (c.type === "numeric" ? numericBins(c) : undefined));
const sizes = columns.map((c, j) => (c.type === "categorical" ? c.values.length + 1 : bins[j]!.lo.length + 1));
/** Cell → model group per column (the last cell is missing). */
const refine = [
  [0, 1, 2],
  [0, 0, 1, 2],
  Array.from({ length: 17 }, (_, c) => Math.min(3, Math.floor(c / 4))),
  Array.from({ length: 17 }, (_, c) => (c === 16 ? 2 : Math.floor(c / 8))),
  Array.from({ length: 17 }, (_, c) => (c < 6 ? 0 : 1)),
  Array.from({ length: 36 }, (_, c) => c),
  Array.from({ length: 41 }, (_, c) => Math.min(9, Math.floor(c / 4))),
  Array.from({ length: 17 }, (_, c) => (c === 16 ? 2 : Math.floor(c / 8))),
  [0, 1, 2],
];
const dims = refine.map((g) => Math.max(...g) + 1);
const cover = [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [5, 6, 7], [6, 8]];

function positive(rng: Rng, n: number): Float64Array {
  return Float64Array.from({ length: n }, () => 0.2 + rng.next());
}

/** A model over the cover's cliques fitted to random tables over their groups (the fit makes them agree). */
function testModel(): JointModel {
  const rng = new SeededRng(17);
  const tree = junctionTree(dims, cover);
  const N = 10_000;
  const measurements = cover.map((vars) => {
    const y = positive(rng, vars.reduce((s, v) => s * dims[v], 1));
    const total = y.reduce((a, b) => a + b, 0);
    return { vars, y: y.map((x) => (x / total) * N), variance: 1 };
  });
  const fit = fitModel(tree, dims, measurements, N, { iterations: 200 });
  const grid = bins[2]!.grid!;
  // Within its group, a cell's share follows these (random) weights; some cells and values have none.
  const p = sizes.map((s) => positive(rng, s));
  p[1][1] = 0;
  p[6][5] = 0;
  const values = Float64Array.from({ length: grid.count + 1 }, (_, k) => (k === grid.count ? 1 : k >= 10 && k < 20 ? 0 : 0.2 + rng.next()));
  return { fit, refine, p, values: columns.map((_, j) => (j === 2 ? values : undefined)), pairs: [], triples: [] };
}

/** A sampled string's cell, and where within the cell's bin it lies (numeric columns). */
function cellOf(j: number, s: string): { cell: number; at: number } {
  const column = columns[j];
  if (s === "") return { cell: sizes[j] - 1, at: 0 };
  if (column.type === "categorical") return { cell: column.values.indexOf(s), at: 0 };
  const v = Number(s);
  const b = bins[j]!;
  const cell = b.lo.findIndex((lo, c) => v >= lo && (v < b.hi[c] || (c === b.lo.length - 1 && v <= column.max)));
  return { cell: cell < 0 ? NaN : cell, at: (v - b.lo[cell]) / (b.hi[cell] - b.lo[cell]) };
}

/** Pearson's statistic and its degrees of freedom (over the cells with an expectation). */
function chiSquare(observed: ArrayLike<number>, expected: ArrayLike<number>): { stat: number; df: number; impossible: number } {
  let stat = 0;
  let df = -1;
  let impossible = 0;
  for (let i = 0; i < observed.length; i++) {
    if (expected[i] > 0) {
      stat += (observed[i] - expected[i]) ** 2 / expected[i];
      df++;
    } else impossible += observed[i];
  }
  return { stat, df, impossible };
}

/** Far beyond the 99.99th percentile of chi-square(df), which is about df + 3.7·√(2·df) for large df. */
const margin = (df: number) => 6 * Math.sqrt(2 * df) + 10;

/**
 * The statistic stays within its limit, and would not had the expectation been off by a bias b (each
 * cell's expectation moved by the share b, up and down in turn, which adds about N·b² to the statistic):
 * b is chosen to add three times the margin, and must be at most 10%.
 */
function expectFit(observed: Float64Array, expected: Float64Array): void {
  const { stat, df, impossible } = chiSquare(observed, expected);
  expect(impossible).toBe(0);
  expect(stat).toBeLessThan(df + margin(df));
  const n = expected.reduce((a, b) => a + b, 0);
  const bias = Math.sqrt((3 * margin(df)) / n);
  expect(bias).toBeLessThanOrEqual(0.1);
  const biased = expected.map((x, i) => x * (1 + (i % 2 === 0 ? bias : -bias)));
  expect(chiSquare(observed, biased).stat).toBeGreaterThan(df + margin(df));
}

describe("model sampler rows", () => {
  const model = testModel();
  const { cliques } = model.fit.tree;
  const N = 200_000;
  const rows: OutputRow[] = [...modelSampler(columns, model).sample(N, new SeededRng(5))];
  const cells = rows.map((row) => row.map((s, j) => cellOf(j, s)));
  const group = (row: { cell: number }[], j: number) => refine[j][row[j].cell];
  /** Each cell's share within its group (from p). */
  const share = model.p.map((p, j) => {
    const total = new Float64Array(dims[j]);
    p.forEach((x, c) => (total[refine[j][c]] += x));
    return Float64Array.from(p, (x, c) => x / total[refine[j][c]]);
  });
  /** The model's joint probabilities of the groups of `vars` (which one clique holds), row-major. */
  const marginal = (vars: number[]): Float64Array => {
    const i = cliques.findIndex((c) => vars.every((v) => c.includes(v)));
    const map = projectionMap(cliques[i], dims, vars);
    const out = new Float64Array(vars.reduce((s, v) => s * dims[v], 1));
    model.fit.marginals[i].forEach((x, c) => (out[map[c]] += x));
    return out;
  };

  it("writes every value within its column's cells and bounds", () => {
    expect(rows.length).toBe(N);
    expect(cells.filter((row) => row.some(({ cell }) => !Number.isInteger(cell))).length).toBe(0);
  });

  it("follows every fitted clique marginal over groups", () => {
    model.fit.marginals.forEach((m, i) => {
      const observed = new Float64Array(m.length);
      for (const row of cells) observed[cliques[i].reduce((idx, v) => idx * dims[v] + group(row, v), 0)]++;
      expectFit(observed, m.map((x) => x * N));
    });
  });

  it("splits each group into its cells as the column distribution says, whatever the other columns' groups", () => {
    // Each column's cell jointly with the group of every column it shares a clique with.
    for (const [a, b] of cliques.flatMap((c) => c.flatMap((a) => c.filter((b) => b !== a).map((b) => [a, b])))) {
      const pair = a < b ? marginal([a, b]) : marginal([b, a]);
      const observed = new Float64Array(sizes[a] * dims[b]);
      for (const row of cells) observed[row[a].cell * dims[b] + group(row, b)]++;
      const expected = observed.map((_, i) => {
        const c = Math.floor(i / dims[b]);
        const g = i % dims[b];
        return N * share[a][c] * (a < b ? pair[refine[a][c] * dims[b] + g] : pair[g * dims[a] + refine[a][c]]);
      });
      expectFit(observed, expected);
    }
  });

  it("draws a fine column's values by their shares of the cell", () => {
    const values = model.values[2]!;
    const perBin = bins[2]!.perBin;
    const cellOfValue = (k: number) => (k === values.length - 1 ? sizes[2] - 1 : Math.floor(k / perBin));
    const cellMass = new Float64Array(sizes[2]);
    values.forEach((x, k) => (cellMass[cellOfValue(k)] += x));
    const pg = marginal([2]);
    const observed = new Float64Array(values.length);
    for (const row of rows) observed[row[2] === "" ? values.length - 1 : Number(row[2])]++;
    expectFit(observed, values.map((x, k) => N * pg[refine[2][cellOfValue(k)]] * share[2][cellOfValue(k)] * (x / cellMass[cellOfValue(k)])));
  });

  it("draws values uniformly within the bin, whatever the groups of the columns drawn with them", () => {
    // Where in its bin (tenths) a continuous value lies, jointly with its cell and another column's group.
    for (const [j, other] of [[3, 2], [3, 4], [7, 6], [4, 3]]) {
      const pair = j < other ? marginal([j, other]) : marginal([other, j]);
      const wide = j === 4;
      const parts = wide ? bins[4]!.perBin : 10;
      const observed = new Float64Array(sizes[j] * dims[other] * parts);
      rows.forEach((row, r) => {
        const { cell, at } = cells[r][j];
        let part = 0;
        if (cell < sizes[j] - 1) part = wide ? Number(row[j]) - bins[4]!.lo[cell] : Math.min(parts - 1, Math.floor(at * parts));
        observed[(cell * dims[other] + group(cells[r], other)) * parts + part]++;
      });
      const expected = new Float64Array(observed.length);
      for (let c = 0; c < sizes[j]; c++) {
        const m = c === sizes[j] - 1 ? 1 : wide ? Math.min(bins[4]!.grid!.count, bins[4]!.hi[c]) - bins[4]!.lo[c] : parts;
        for (let g = 0; g < dims[other]; g++) {
          const p = j < other ? pair[refine[j][c] * dims[other] + g] : pair[g * dims[j] + refine[j][c]];
          for (let t = 0; t < m; t++) expected[(c * dims[other] + g) * parts + t] = (N * p * share[j][c]) / m;
        }
      }
      expectFit(observed, expected);
    }
  });

  it("shares uniforms between draws with few outcomes when sampling rows; cells draws one per column", () => {
    const sampler = modelSampler(columns, model);
    const base = new SeededRng(3);
    let calls = 0;
    const counting: Rng = { next: () => (calls++, base.next()) };
    for (const _ of sampler.sample(1000, counting));
    expect(calls).toBeLessThan(1000 * columns.length);
    expect(calls % 1000).toBe(0);
    calls = 0;
    sampler.cells(1000, counting);
    expect(calls).toBe(1000 * columns.length);
    // Same seed, same rows.
    expect([...sampler.sample(300, new SeededRng(9))]).toEqual([...sampler.sample(300, new SeededRng(9))]);
  });
});

describe("model sampler stream", () => {
  // SHA-256 of the rows (one line each, fields joined by commas) and of cells (one line per column), as
  // this sampler drew them before its draws and strings were reorganized for speed (commit 7dbde2a):
  // faster code must draw the same rows from the same seed. A change of what is drawn (the model's fit
  // included) shows here; the checks above say whether the new rows still follow the model.
  const digest = (lines: string[]) => createHash("sha256").update(lines.join("\n")).digest("hex");
  const sampler = modelSampler(columns, testModel());

  it("draws the same rows from a seed as before", () => {
    // 5,000 rows: 19 chunks and a partial one; 300: one chunk and a partial one.
    expect(digest([...sampler.sample(5000, new SeededRng(11))].map((row) => row.join(",")))).toBe("4ff52ff4d6b1ded4efb668776ae5fa18925fa27a8f97c0f2f64824475b8d2527");
    expect(digest([...sampler.sample(300, new SeededRng(12))].map((row) => row.join(",")))).toBe("dcceb4cf25d7aa4257a831596dd3b74402395828fc1069d173a0bf9ae0a86227");
  });

  it("draws the same cells from a seed as before", () => {
    expect(digest(sampler.cells(3000, new SeededRng(13)).map((c) => c.join(",")))).toBe("0da483fdc085aaa683f3baeae0304f7e7b932e83ca4de3d92d1f5557aab2c86f");
  });

  it("draws each sample's rows whatever other samples and cells draw in between", () => {
    // The sampler's buffers serve every call: a chunk is all strings before its first row is handed out.
    const alone = [...sampler.sample(600, new SeededRng(21))];
    const a = sampler.sample(600, new SeededRng(21))[Symbol.iterator]();
    const b = sampler.sample(600, new SeededRng(22))[Symbol.iterator]();
    const rows: OutputRow[] = [];
    for (let r = 0; r < 600; r++) {
      rows.push(a.next().value as OutputRow);
      b.next();
      if (r % 250 === 0) sampler.cells(300, new SeededRng(r));
    }
    expect(rows).toEqual(alone);
  });

  it("draws the same rows through any source of uniforms", () => {
    // Without fill, the sampler takes the uniforms one next() at a time: the same numbers in the same order.
    const base = new SeededRng(11);
    const plain: Rng = { next: () => base.next() };
    expect([...sampler.sample(700, plain)]).toEqual([...sampler.sample(700, new SeededRng(11))]);
  });
});

describe("decimalFormatter", () => {
  it("writes every 4-decimal value in the bounds exactly as fastDecimal does", () => {
    const wrong: string[] = [];
    for (const [min, max] of [[-5, 5], [15, 45], [-2.5, 3.7], [0, 1e-3], [-80, 80], [0, 162.5], [100, 600], [0.10003, 0.10004]]) {
      const format = decimalFormatter(min, max);
      const check = (v: number) => {
        const want = fastDecimal(v, min, max);
        if (format(v) !== want) wrong.push(`${v} in [${min}, ${max}]: ${format(v)}, not ${want}`);
      };
      const first = Math.floor(min * 1e4) - 2;
      const last = Math.ceil(max * 1e4) + 2;
      for (let k = first; k <= last; k++) {
        for (const d of [0, 0.49, -0.49]) {
          const v = (k + d) / 1e4;
          if (v >= min && v <= max) check(v);
        }
      }
      for (const v of [min, max, 0, -0]) if (v >= min && v <= max) check(v);
    }
    expect(wrong.slice(0, 5)).toEqual([]);
  });
});
