import { describe, expect, it } from "vitest";
import { independentEngine as engine, type IndependentModel } from "./engine.js";
import { columnProbabilities, estimateRowCount, histogramLayout, normSub } from "./histogram.js";
import { aliasTable, formatDecimal } from "./sampler.js";
import {
  conformanceSchema,
  conformanceSites,
  describeEngineConformance,
  poolTables,
  rowDistributions,
  rowProblem,
  runFederation,
  tableDistributions,
  totalVariation,
} from "../conformance.js";
import { DEFAULT_ENGINE, engineNames, getEngine } from "../registry.js";
import { Accountant } from "../../privacy/accountant.js";
import { categoryCount } from "../../schema/bins.js";
import type { Schema, Table } from "../../schema/schema.js";
import type { TaskContext } from "../engine.js";
import { SeededRng } from "../../random/rng.js";
import { FedsynthError } from "../../errors.js";

describeEngineConformance(engine);

const schema = conformanceSchema;
const sites = conformanceSites(2);

function ctxFor(s: Schema, privacy = { epsilon: 1, delta: 1e-5, rounds: 1 }): TaskContext {
  const config = engine.configure(s, privacy);
  return { schema: s, privacy, config, round: 1, roundConfig: {} };
}

/** A 14-column schema (mixed types) as in a typical study. */
const schema14: Schema = {
  columns: Array.from({ length: 14 }, (_, j) =>
    j % 3 === 0
      ? { name: `n${j}`, type: "numeric" as const, min: 0, max: 120, integer: true }
      : j % 3 === 1
        ? { name: `x${j}`, type: "numeric" as const, min: -5, max: 250.5, integer: false }
        : { name: `c${j}`, type: "categorical" as const, values: ["a", "b", "c", "d", "e"] },
  ),
  missing: [""],
};

describe("independent engine: privacy", () => {
  it("charges one Gaussian release of L2 sensitivity sqrt(columns) per round", () => {
    for (const s of [schema, schema14]) {
      const ctx = ctxFor(s);
      const [m, ...rest] = engine.charge(ctx);
      expect(rest).toEqual([]);
      expect(m).toEqual({ kind: "gaussian", l2Sensitivity: Math.sqrt(s.columns.length), sigma: ctx.config.sigma, repetitions: 1 });
      expect(ctx.config.l2Sensitivity).toBe(Math.sqrt(s.columns.length));
    }
  });

  it("sensitivity: adding or removing one row moves the update by exactly sqrt(columns) in L2", () => {
    const ctx = ctxFor(schema);
    const base = sites[0];
    const rows: (number | null)[][] = [
      [30, 2, 22.5, 0.1, 0, 1, 2],
      [null, null, null, null, null, null, null],
      [90, 10, 45, 3.7, 1, 3, null],
    ];
    for (const extra of rows) {
      const withRow: Table = { schema, rowCount: base.rowCount + 1, columns: base.columns.map((col, j) => [...col, extra[j]]) };
      // The same noise stream for both, so the difference is the difference of the raw counts.
      const a = engine.localUpdate(ctx, null, base, new SeededRng(8));
      const b = engine.localUpdate(ctx, null, withRow, new SeededRng(8));
      let sq = 0;
      let changed = 0;
      for (let i = 0; i < a.length; i++) {
        const d = b[i] - a[i];
        sq += d * d;
        if (Math.abs(d) > 1e-6) changed++;
      }
      expect(changed).toBe(schema.columns.length);
      expect(Math.sqrt(sq)).toBeCloseTo(Math.sqrt(schema.columns.length), 6);
    }
  });

  it("adds noise of the configured σ to every cell", () => {
    const ctx = ctxFor(schema);
    const sigma = ctx.config.sigma as number;
    const empty: Table = { schema, rowCount: 0, columns: schema.columns.map(() => []) };
    let sum = 0;
    let sq = 0;
    let n = 0;
    for (let rep = 0; rep < 200; rep++) {
      for (const v of engine.localUpdate(ctx, null, empty, new SeededRng(1000 + rep))) {
        sum += v;
        sq += v * v;
        n++;
      }
    }
    expect(Math.abs(sum / n)).toBeLessThan(0.05 * sigma);
    expect(Math.sqrt(sq / n) / sigma).toBeGreaterThan(0.97);
    expect(Math.sqrt(sq / n) / sigma).toBeLessThan(1.03);
  });

  it("calibrates σ for ε=1, δ=1e-5, one round on 14 columns to sqrt(14)·3.7306", () => {
    const config = engine.configure(schema14, { epsilon: 1, delta: 1e-5, rounds: 1 });
    const sigma = config.sigma as number;
    expect(sigma / (Math.sqrt(14) * 3.7306316348159418) - 1).toBeGreaterThanOrEqual(0);
    expect(sigma / (Math.sqrt(14) * 3.7306316348159418) - 1).toBeLessThan(1e-6);
    const spent = Accountant.epsilonOf(engine.charge({ schema: schema14, privacy: { epsilon: 1, delta: 1e-5, rounds: 1 }, config, round: 1, roundConfig: {} }), 1e-5);
    expect(spent).toBeLessThanOrEqual(1);
  });

  it("more rounds need proportionally (√rounds) more noise per round", () => {
    const one = engine.configure(schema, { epsilon: 1, delta: 1e-5, rounds: 1 }).sigma as number;
    const four = engine.configure(schema, { epsilon: 1, delta: 1e-5, rounds: 4 }).sigma as number;
    expect(four / one).toBeCloseTo(2, 5);
  });

  it("refuses a config that does not belong to the schema", () => {
    const ctx = ctxFor(schema);
    expect(() => engine.charge({ ...ctx, schema: schema14 })).toThrow(FedsynthError);
    expect(() => engine.charge({ ...ctx, config: { ...ctx.config, sigma: 0 } })).toThrow(FedsynthError);
    expect(() => engine.localUpdate({ ...ctx, config: {} }, null, sites[0], new SeededRng(1))).toThrow(FedsynthError);
  });

  it("refuses tables that do not fit the schema", () => {
    const ctx = ctxFor(schema);
    const t = sites[0];
    expect(() => engine.localUpdate(ctx, null, { ...t, columns: t.columns.slice(1) }, new SeededRng(1))).toThrow(FedsynthError);
    const badCategory = t.columns.map((c, j) => (j === 4 ? [7, ...c.slice(1)] : c));
    expect(() => engine.localUpdate(ctx, null, { ...t, columns: badCategory }, new SeededRng(1))).toThrow(FedsynthError);
  });
});

describe("independent engine: post-processing", () => {
  it("Norm-Sub returns a non-negative vector with the requested total", () => {
    const rng = new SeededRng(3);
    for (let trial = 0; trial < 200; trial++) {
      const n = 1 + Math.floor(rng.next() * 20);
      const x = Array.from({ length: n }, () => (rng.next() - 0.3) * 100);
      const total = rng.next() * 300;
      const h = normSub(x, total);
      const positive = x.reduce((s, v) => s + Math.max(0, v), 0);
      if (positive === 0) {
        expect(h.every((v) => v === 0)).toBe(true);
        continue;
      }
      expect(h.every((v) => v >= 0)).toBe(true);
      expect(h.reduce((s, v) => s + v, 0)).toBeCloseTo(total, 8);
      if (positive > total) {
        // Subtracting one constant: the surviving cells keep their differences, the order is kept.
        const c = x.map((v, i) => (h[i] > 0 ? v - h[i] : NaN)).filter((v) => !Number.isNaN(v));
        for (const ci of c) expect(ci).toBeCloseTo(c[0], 8);
        x.forEach((v, i) => {
          if (h[i] === 0) expect(v).toBeLessThanOrEqual(c[0] + 1e-9);
        });
      } else {
        // Scaling up the positive part.
        x.forEach((v, i) => expect(h[i]).toBeCloseTo(Math.max(0, v) * (total / positive), 8));
      }
    }
  });

  it("Norm-Sub on a known example", () => {
    expect(Array.from(normSub([10, 5, -3, 1], 12))).toEqual([8.5, 3.5, 0, 0]);
    expect(Array.from(normSub([2, -1, 2], 8))).toEqual([4, 0, 4]);
    expect(Array.from(normSub([-1, -2], 5))).toEqual([0, 0]);
    expect(Array.from(normSub([3, 4], 0))).toEqual([0, 0]);
  });

  it("estimates the row count with inverse-variance weights (1/cells)", () => {
    const s: Schema = { columns: [{ name: "a", type: "categorical", values: ["x"] }, { name: "b", type: "categorical", values: ["x", "y", "z"] }], missing: [""] };
    const layout = histogramLayout(s);
    expect(layout.sizes).toEqual([2, 4]);
    // totals 10 (2 cells) and 16 (4 cells): (10/2 + 16/4) / (1/2 + 1/4) = 12
    expect(estimateRowCount(layout, Float64Array.from([6, 4, 4, 4, 4, 4]))).toBeCloseTo(12, 12);
  });

  it("column probabilities are non-negative, sum to 1, and fall back to uniform over non-missing cells", () => {
    const layout = histogramLayout(schema);
    const rng = new SeededRng(4);
    const noisy = Float64Array.from({ length: layout.total }, () => (rng.next() - 0.45) * 50);
    for (const p of columnProbabilities(layout, noisy).probabilities) {
      expect(p.every((v) => v >= 0)).toBe(true);
      expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    }
    const zero = columnProbabilities(layout, new Float64Array(layout.total));
    zero.probabilities.forEach((p, j) => {
      const k = categoryCount(schema.columns[j]);
      expect(p[k]).toBe(0);
      for (let c = 0; c < k; c++) expect(p[c]).toBeCloseTo(1 / k, 15);
    });
  });

  it("after a noisy run the model's histograms are consistent: non-negative, common total", () => {
    const { model } = runFederation(engine, schema, { epsilon: 0.5, delta: 1e-5, rounds: 3 }, sites);
    expect(model.roundSums.length).toBe(3);
    expect(model.roundContributors).toEqual([3, 3, 3]);
    const pooled = sites.reduce((n, t) => n + t.rowCount, 0);
    expect(Math.abs(model.estimatedRows - pooled) / pooled).toBeLessThan(0.05);
    for (const p of model.probabilities) {
      expect(p.every((v) => v >= 0)).toBe(true);
      expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    }
  });

  it("averages the rounds' noisy sums and keeps them as released", () => {
    const privacy = { epsilon: 1, delta: 1e-5, rounds: 2 };
    const config = engine.configure(schema, privacy);
    const layout = histogramLayout(schema);
    let model = engine.init(schema, config);
    const s1 = Float64Array.from({ length: layout.total }, (_, i) => i % 5);
    const s2 = Float64Array.from({ length: layout.total }, (_, i) => (i % 5) + 2);
    model = engine.aggregate(model, s1, 3, { schema, privacy, config, round: 1, roundConfig: {} });
    const after1 = model;
    model = engine.aggregate(model, s2, 2, { schema, privacy, config, round: 2, roundConfig: {} });
    expect(after1.roundSums.length).toBe(1); // aggregate does not mutate its input
    expect(Array.from(model.roundSums[0])).toEqual(Array.from(s1));
    expect(Array.from(model.roundSums[1])).toEqual(Array.from(s2));
    expect(model.roundContributors).toEqual([3, 2]);
    const avg = Float64Array.from(s1, (v, i) => (v + s2[i]) / 2);
    expect(model.probabilities).toEqual(columnProbabilities(layout, avg).probabilities);
  });

  it("aggregate refuses sums of the wrong length or with non-finite values", () => {
    const privacy = { epsilon: 1, delta: 1e-5, rounds: 1 };
    const config = engine.configure(schema, privacy);
    const model = engine.init(schema, config);
    const ctx = { schema, privacy, config, round: 1, roundConfig: {} };
    const n = histogramLayout(schema).total;
    expect(() => engine.aggregate(model, new Float64Array(n - 1), 1, ctx)).toThrow(FedsynthError);
    expect(() => engine.aggregate(model, new Float64Array(n).fill(NaN), 1, ctx)).toThrow(FedsynthError);
    expect(() => engine.aggregate(model, new Float64Array(n), 0, ctx)).toThrow(FedsynthError);
  });
});

describe("independent engine: sampling", () => {
  let learned: IndependentModel | undefined;
  const model = () => (learned ??= runFederation(engine, schema, { epsilon: 1e4, delta: 1e-5, rounds: 1 }, sites).model);

  it("reproduces each column's missingness rate", () => {
    const rows = [...engine.sample(model(), 50_000, new SeededRng(21))];
    const pooled = poolTables(sites);
    schema.columns.forEach((column, j) => {
      const want = pooled.columns[j].filter((v) => v === null).length / pooled.rowCount;
      const got = rows.filter((r) => r[j] === "").length / rows.length;
      expect(Math.abs(got - want), column.name).toBeLessThan(0.01);
    });
    // Columns without missing values produce none.
    expect(rows.some((r) => r[1] === "" || r[4] === "")).toBe(false);
  });

  it("matches the pooled per-column distributions closely with a large epsilon", () => {
    const rows = [...engine.sample(model(), 50_000, new SeededRng(22))];
    const want = tableDistributions(poolTables(sites));
    const got = rowDistributions(schema, rows);
    want.forEach((w, j) => expect(totalVariation(got[j], w)).toBeLessThan(0.02));
  });

  it("samples integers within the bin's integer range and decimals with at most 4 places", () => {
    const rows = [...engine.sample(model(), 5000, new SeededRng(23))];
    for (const r of rows) {
      expect(rowProblem(schema, r)).toBeNull();
      for (const j of [2, 3]) if (r[j] !== "") expect(r[j]).toMatch(/^-?\d+(\.\d{1,4})?$/);
      for (const j of [0, 1]) if (r[j] !== "") expect(r[j]).toMatch(/^\d+$/);
    }
    // Every age value of a 5-wide bin is used.
    const ages = new Set(rows.map((r) => r[0]).filter((v) => v !== ""));
    expect(ages.size).toBeGreaterThan(50);
  });

  it("the initial model samples uniformly over non-missing cells", () => {
    const config = engine.configure(schema, { epsilon: 1, delta: 1e-5, rounds: 1 });
    const rows = [...engine.sample(engine.init(schema, config), 2000, new SeededRng(1))];
    for (const r of rows) expect(rowProblem(schema, r)).toBeNull();
    expect(rows.some((r) => r.includes(""))).toBe(false);
  });

  it("refuses an invalid row count", () => {
    expect(() => [...engine.sample(model(), -1, new SeededRng(1))]).toThrow(FedsynthError);
    expect(() => [...engine.sample(model(), 1.5, new SeededRng(1))]).toThrow(FedsynthError);
  });

  it("samples well over a million values per second", () => {
    const privacy = { epsilon: 1, delta: 1e-5, rounds: 1 };
    const config = engine.configure(schema14, privacy);
    const layout = histogramLayout(schema14);
    const rng = new SeededRng(5);
    const m = engine.aggregate(engine.init(schema14, config), Float64Array.from({ length: layout.total }, () => rng.next() * 1000), 1, {
      schema: schema14,
      privacy,
      config,
      round: 1,
      roundConfig: {},
    });
    const n = 100_000;
    let best = Infinity;
    for (let rep = 0; rep < 3; rep++) {
      const t0 = performance.now();
      let cells = 0;
      for (const row of engine.sample(m, n, new SeededRng(rep))) cells += row.length;
      best = Math.min(best, performance.now() - t0);
      expect(cells).toBe(n * 14);
    }
    const valuesPerSecond = (n * 14) / (best / 1000);
    // Generous floor so that slow CI machines pass; typical machines do several times more.
    expect(valuesPerSecond).toBeGreaterThan(1_000_000);
  });
});

describe("independent engine: sampler internals", () => {
  it("alias tables reproduce the distribution and never draw zero-probability cells", () => {
    const p = [0.5, 0, 0.2, 0.3, 0, 1e-9];
    const table = aliasTable(p);
    const rng = new SeededRng(9);
    const counts = new Array(p.length).fill(0);
    const n = 200_000;
    for (let i = 0; i < n; i++) {
      const u = rng.next() * p.length;
      const k = Math.floor(u);
      counts[u - k < table.prob[k] ? k : table.alias[k]]++;
    }
    expect(counts[1]).toBe(0);
    expect(counts[4]).toBe(0);
    for (const k of [0, 2, 3]) expect(Math.abs(counts[k] / n - p[k])).toBeLessThan(0.005);
  });

  it("formats decimals with at most 4 places and never outside [min, max]", () => {
    expect(formatDecimal(2.5, 0, 10)).toBe("2.5");
    expect(formatDecimal(1 / 3, 0, 10)).toBe("0.3333");
    expect(formatDecimal(-0.00001, -1, 1)).toBe("0");
    expect(formatDecimal(0.123455, 0, 0.12346)).toBe("0.1234");
    expect(formatDecimal(0.10004, 0.10003, 0.10004)).toBe("0.10004"); // no 4-place value inside
    expect(Number(formatDecimal(3.69999, -2.5, 3.7))).toBeLessThanOrEqual(3.7);
  });
});

describe("engine registry", () => {
  it("knows the independent engine and makes it the default", () => {
    expect(engineNames()).toContain("independent");
    expect(DEFAULT_ENGINE).toBe("independent");
    expect(getEngine(DEFAULT_ENGINE)).toBe(engine);
  });

  it("refuses unknown names, listing the known engines", () => {
    let err: unknown;
    try {
      getEngine("nope");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FedsynthError);
    expect((err as FedsynthError).code).toBe("invalid-argument");
    expect((err as FedsynthError).hint).toContain("independent");
  });
});
