import { describe, expect, it } from "vitest";
import { configureIndependent, FINE_NOISE_MULTIPLIER, independentEngine as engine, type IndependentModel } from "./engine.js";
import { columnProbabilities, estimateRowCount, histogramLayout, MAX_FINE_VALUES, normSub, shrinkBlock } from "./histogram.js";
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
import { engineNames, getEngine } from "../registry.js";
import { Accountant } from "../../privacy/accountant.js";
import type { GaussianMechanism } from "../../privacy/mechanism.js";
import { categoryCount, numericBins } from "../../schema/bins.js";
import type { NumericColumn, Schema, Table } from "../../schema/schema.js";
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

/** Only categorical and continuous columns: no fine levels. */
const coarseOnly: Schema = { columns: schema.columns.filter((c) => c.type === "categorical" || !c.integer && c.step === undefined), missing: schema.missing };

describe("independent engine: two-level layout", () => {
  it("gives a fine level (one cell per grid value, no missing cell) to grid columns with 33..2000 values", () => {
    const s: Schema = {
      columns: [
        { name: "age", type: "numeric", min: 18, max: 90, integer: true }, // 73 values: two levels
        { name: "visits", type: "numeric", min: 0, max: 10, integer: true }, // 11 values: one bin each
        { name: "bmi", type: "numeric", min: 15, max: 45, integer: false }, // continuous
        { name: "oldpeak", type: "numeric", min: -3, max: 7, integer: false, step: 0.1 }, // 101 values
        { name: "sex", type: "categorical", values: ["F", "M"] },
        { name: "bp", type: "numeric", min: 80, max: 220, integer: true, step: 10 }, // 15 values: one bin each
        { name: "wide", type: "numeric", min: 0, max: 5000, integer: true }, // more than 2000 values
        { name: "exact", type: "numeric", min: 0, max: 99, integer: true, bins: 100 }, // one bin per value already
      ],
      missing: [""],
    };
    const layout = histogramLayout(s);
    expect(layout.sizes).toEqual([16, 12, 17, 16, 3, 16, 17, 101]);
    expect(layout.coarseTotal).toBe(layout.sizes.reduce((a, b) => a + b, 0));
    expect(layout.fine.map((f) => [f.column, f.size, f.perBin])).toEqual([
      [0, 73, 5],
      [3, 101, 7],
    ]);
    expect(layout.fine[0].offset).toBe(layout.coarseTotal);
    expect(layout.fine[1].offset).toBe(layout.coarseTotal + 73);
    expect(layout.total).toBe(layout.coarseTotal + 73 + 101);
    expect(layout.fineOf.map((f) => f?.column)).toEqual([0, undefined, undefined, 3, undefined, undefined, undefined, undefined]);
    expect(5001).toBeGreaterThan(MAX_FINE_VALUES);

    const ctx = ctxFor(s);
    expect(ctx.config).toMatchObject({ columns: 8, cells: layout.total, fineColumns: 2, fineL2Sensitivity: Math.SQRT2, fineNoiseMultiplier: FINE_NOISE_MULTIPLIER });
    expect(engine.updateLength(ctx)).toBe(layout.total);
    expect(engine.localUpdate(ctx, null, { schema: s, rowCount: 0, columns: s.columns.map(() => []) }, new SeededRng(1)).length).toBe(layout.total);
  });

  it("counts each present value once in its coarse bin and once in its grid value's fine cell", () => {
    const s: Schema = { columns: [{ name: "oldpeak", type: "numeric", min: -3, max: 7, integer: false, step: 0.1 }], missing: [""] };
    const layout = histogramLayout(s);
    const ctx = ctxFor(s, { epsilon: 1e6, delta: 1e-5, rounds: 1 });
    const table: Table = { schema: s, rowCount: 4, columns: [[0, 0, 2.3, null]] };
    const update = engine.localUpdate(ctx, null, table, new SeededRng(2));
    const counts = Array.from(update, (v) => Math.round(v));
    const fine = layout.fine[0];
    expect(counts[fine.offset + 30]).toBe(2); // 0 = -3 + 30·0.1
    expect(counts[fine.offset + 53]).toBe(1); // 2.3
    expect(counts[binIndexOf(s, 0)]).toBe(2);
    expect(counts[binIndexOf(s, 2.3)]).toBe(1);
    expect(counts[layout.sizes[0] - 1]).toBe(1); // missing: coarse only
    expect(counts.reduce((a, b) => a + b, 0)).toBe(4 + 3);
  });
});

function binIndexOf(s: Schema, v: number): number {
  const bins = numericBins(s.columns[0] as NumericColumn);
  return Math.floor(bins.grid!.index(v) / bins.perBin);
}

describe("independent engine: privacy", () => {
  it("charges per round the coarse release (sensitivity sqrt(columns), σ) and the fine release (sqrt(fine columns), α·σ)", () => {
    for (const [s, fine] of [
      [schema, 2],
      [schema14, 5],
    ] as const) {
      const ctx = ctxFor(s);
      const sigma = ctx.config.sigma as number;
      expect(engine.charge(ctx)).toEqual([
        { kind: "gaussian", l2Sensitivity: Math.sqrt(s.columns.length), sigma, repetitions: 1 },
        { kind: "gaussian", l2Sensitivity: Math.sqrt(fine), sigma: FINE_NOISE_MULTIPLIER * sigma, repetitions: 1 },
      ]);
      expect(ctx.config.l2Sensitivity).toBe(Math.sqrt(s.columns.length));
      expect(ctx.config.fineColumns).toBe(fine);
      expect(ctx.config.fineL2Sensitivity).toBe(Math.sqrt(fine));
    }
    // Without grid columns: the coarse release only, as before.
    const ctx = ctxFor(coarseOnly);
    expect(engine.charge(ctx)).toEqual([{ kind: "gaussian", l2Sensitivity: Math.sqrt(coarseOnly.columns.length), sigma: ctx.config.sigma, repetitions: 1 }]);
    expect(ctx.config.fineColumns).toBe(0);
  });

  it("the two mechanisms over all rounds spend at most ε, and nearly all of it", () => {
    for (const privacy of [
      { epsilon: 1, delta: 1e-5, rounds: 1 },
      { epsilon: 0.3, delta: 1e-6, rounds: 4 },
      { epsilon: 10, delta: 1e-5, rounds: 3 },
    ]) {
      for (const s of [schema, schema14]) {
        const ctx = ctxFor(s, privacy);
        const charge = engine.charge(ctx);
        expect(charge.length).toBe(2);
        const all = Array.from({ length: privacy.rounds }, () => charge).flat();
        const spent = Accountant.epsilonOf(all, privacy.delta);
        expect(spent).toBeLessThanOrEqual(privacy.epsilon);
        expect(spent).toBeGreaterThan(0.999 * privacy.epsilon);
      }
    }
  });

  it("sensitivity: one row moves the coarse part by exactly sqrt(columns) and the fine part by sqrt(present fine values) in L2", () => {
    const ctx = ctxFor(schema);
    const layout = histogramLayout(schema);
    const base = sites[0];
    const rows: [(number | null)[], number][] = [
      [[30, 2, 22.5, 0.1, 0, 1, 2, 0], 2],
      [[null, null, null, null, null, null, null, null], 0],
      [[90, 10, 45, 3.7, 1, 3, null, 7], 2],
      [[null, 4, 30, null, 1, 0, 1, -1.3], 1],
    ];
    for (const [extra, finePresent] of rows) {
      const withRow: Table = { schema, rowCount: base.rowCount + 1, columns: base.columns.map((col, j) => [...col, extra[j]]) };
      // The same noise stream for both, so the difference is the difference of the raw counts.
      const a = engine.localUpdate(ctx, null, base, new SeededRng(8));
      const b = engine.localUpdate(ctx, null, withRow, new SeededRng(8));
      const part = (from: number, to: number) => {
        let sq = 0;
        let changed = 0;
        for (let i = from; i < to; i++) {
          const d = b[i] - a[i];
          sq += d * d;
          if (Math.abs(d) > 1e-6) changed++;
        }
        return { norm: Math.sqrt(sq), changed };
      };
      const coarse = part(0, layout.coarseTotal);
      const fine = part(layout.coarseTotal, layout.total);
      expect(coarse.changed).toBe(schema.columns.length);
      expect(coarse.norm).toBeCloseTo(Math.sqrt(schema.columns.length), 6);
      expect(fine.changed).toBe(finePresent);
      expect(fine.norm).toBeCloseTo(Math.sqrt(finePresent), 6);
      expect(fine.norm).toBeLessThanOrEqual((ctx.config.fineL2Sensitivity as number) + 1e-9);
    }
  });

  it("adds noise of the configured σ to every coarse cell and α·σ to every fine cell", () => {
    const ctx = ctxFor(schema);
    const layout = histogramLayout(schema);
    const sigma = ctx.config.sigma as number;
    const empty: Table = { schema, rowCount: 0, columns: schema.columns.map(() => []) };
    const stats = [
      { sum: 0, sq: 0, n: 0, sd: sigma },
      { sum: 0, sq: 0, n: 0, sd: FINE_NOISE_MULTIPLIER * sigma },
    ];
    for (let rep = 0; rep < 200; rep++) {
      engine.localUpdate(ctx, null, empty, new SeededRng(1000 + rep)).forEach((v, i) => {
        const st = stats[i < layout.coarseTotal ? 0 : 1];
        st.sum += v;
        st.sq += v * v;
        st.n++;
      });
    }
    for (const { sum, sq, n, sd } of stats) {
      expect(Math.abs(sum / n)).toBeLessThan(0.05 * sd);
      expect(Math.sqrt(sq / n) / sd).toBeGreaterThan(0.97);
      expect(Math.sqrt(sq / n) / sd).toBeLessThan(1.03);
    }
  });

  it("calibrates σ for ε=1, δ=1e-5, one round on 14 columns (5 fine) to sqrt(14 + 5/α²)·3.7306", () => {
    const config = engine.configure(schema14, { epsilon: 1, delta: 1e-5, rounds: 1 });
    const sigma = config.sigma as number;
    const want = Math.sqrt(14 + 5 / FINE_NOISE_MULTIPLIER ** 2) * 3.7306316348159418;
    expect(sigma / want - 1).toBeGreaterThanOrEqual(0);
    expect(sigma / want - 1).toBeLessThan(1e-6);
    const spent = Accountant.epsilonOf(engine.charge({ schema: schema14, privacy: { epsilon: 1, delta: 1e-5, rounds: 1 }, config, round: 1, roundConfig: {} }), 1e-5);
    expect(spent).toBeLessThanOrEqual(1);
    // Without fine levels the calibration is the one-mechanism one.
    const coarse = engine.configure(coarseOnly, { epsilon: 1, delta: 1e-5, rounds: 1 }).sigma as number;
    expect(coarse / (Math.sqrt(coarseOnly.columns.length) * 3.7306316348159418) - 1).toBeLessThan(1e-6);
  });

  it("records α in the config; another α is charged and calibrated accordingly", () => {
    const privacy = { epsilon: 1, delta: 1e-5, rounds: 2 };
    const config = configureIndependent(schema14, privacy, 3);
    expect(config.fineNoiseMultiplier).toBe(3);
    const ctx: TaskContext = { schema: schema14, privacy, config: { ...config }, round: 1, roundConfig: {} };
    const [coarse, fine] = engine.charge(ctx) as GaussianMechanism[];
    expect(fine.sigma).toBe(3 * coarse.sigma);
    const spent = Accountant.epsilonOf([...engine.charge(ctx), ...engine.charge(ctx)], privacy.delta);
    expect(spent).toBeLessThanOrEqual(1);
    expect(spent).toBeGreaterThan(0.999);
    expect(() => configureIndependent(schema14, privacy, 0)).toThrow(FedsynthError);
    expect(() => engine.charge({ ...ctx, config: { ...config, fineNoiseMultiplier: -1 } })).toThrow(FedsynthError);
    expect(() => engine.charge({ ...ctx, config: { ...config, fineColumns: 4 } })).toThrow(FedsynthError);
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
    // The average of two rounds' sums of 3 and 2 sites' noise: variance σ²·(3 + 2)/2² per coarse cell, α² times that per fine cell.
    const sigma = config.sigma as number;
    const coarseVariance = (sigma * sigma * 5) / 4;
    const want = columnProbabilities(layout, avg, { coarseVariance, fineVariance: FINE_NOISE_MULTIPLIER ** 2 * coarseVariance });
    expect(model.probabilities).toEqual(want.probabilities);
    expect(model.values).toEqual(want.values);
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
    // Columns without missing values produce (next to) none: the noise left in their missing cell is tiny.
    for (const j of [1, 4]) expect(rows.filter((r) => r[j] === "").length).toBeLessThan(10);
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
      if (r[7] !== "") expect(r[7]).toMatch(/^-?\d+\.\d$/); // step 0.1: one decimal
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

  // Its speed is measured by `npm run bench` (sampling.rows_per_second), never asserted here: machines are noisy.
  it("samples 100,000 complete rows of a 14-column schema", () => {
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
    let rows = 0;
    for (const row of engine.sample(m, n, new SeededRng(1))) {
      if (row.length !== 14) throw new Error(`row ${rows} has ${row.length} cells`);
      rows++;
    }
    expect(rows).toBe(n);
  });
});

describe("independent engine: two-level columns", () => {
  /** Three sites' tables of one column, values from `draw` (null = missing). */
  function oneColumnSites(s: Schema, draw: (rng: SeededRng) => number | null, rows = [1200, 1000, 800], seed = 1): Table[] {
    const rng = new SeededRng(seed);
    return rows.map((n) => ({ schema: s, rowCount: n, columns: [Array.from({ length: n }, () => draw(rng))] }));
  }
  const share = (values: (number | null)[], v: number) => values.filter((x) => x === v).length / values.length;

  it("reproduces a spike (60% of the rows at one grid value) at exactly that value with a large epsilon", () => {
    const cases: [NumericColumn, number, (rng: SeededRng) => number][] = [
      // Blood pressure rounded to multiples of 10 in 60% of the rows; 130 sits inside a 9-value bin.
      [{ name: "bp", type: "numeric", min: 80, max: 220, integer: true }, 130, (rng) => (rng.next() < 0.6 ? 130 : Math.round(100 + 80 * rng.next()))],
      // ST depression recorded to 0.1, 0.0 in 60% of the rows.
      [{ name: "oldpeak", type: "numeric", min: -3, max: 7, integer: false, step: 0.1 }, 0, (rng) => (rng.next() < 0.6 ? 0 : Number((0.1 + 4 * rng.next()).toFixed(1)))],
    ];
    for (const [column, spike, draw] of cases) {
      const s: Schema = { columns: [column], missing: [""] };
      const data = oneColumnSites(s, (rng) => (rng.next() < 0.05 ? null : draw(rng)));
      const pooled = poolTables(data).columns[0];
      const { model } = runFederation(engine, s, { epsilon: 1e3, delta: 1e-5, rounds: 1 }, data);
      const rows = [...engine.sample(model, 40_000, new SeededRng(3))].map((r) => r[0]);
      const label = column.integer ? String(spike) : spike.toFixed(1);
      const got = rows.filter((v) => v === label).length / rows.length;
      expect(Math.abs(got - share(pooled, spike)), column.name).toBeLessThan(0.01);
      expect(got).toBeGreaterThan(0.5);
      // Its neighbours are not smeared with the spike's mass.
      const grid = numericBins(column).grid!;
      const k = grid.index(spike);
      for (const n of [k - 1, k + 1]) {
        const v = grid.value(n);
        const text = column.integer ? String(v) : v.toFixed(1);
        expect(Math.abs(rows.filter((x) => x === text).length / rows.length - share(pooled, v)), `${column.name} ${text}`).toBeLessThan(0.01);
      }
      // Every sampled value is a grid value, written as one.
      for (const v of new Set(rows)) {
        if (v === "") continue;
        expect(v).toBe(column.integer ? String(grid.value(grid.index(Number(v)))) : grid.value(grid.index(Number(v))).toFixed(1));
      }
      expect(Math.abs(rows.filter((v) => v === "").length / rows.length - share(pooled, null as unknown as number))).toBeLessThan(0.01);
    }
  });

  it("does not put spurious spikes on a smooth column at a small epsilon (shrinkage toward uniform within a bin)", () => {
    // 200 equally likely values (13 per bin), ~15 rows per value: the fine noise is larger than the counts.
    const column: NumericColumn = { name: "x", type: "numeric", min: 0, max: 199, integer: true };
    const s: Schema = { columns: [column], missing: [""] };
    const data = oneColumnSites(s, (rng) => Math.floor(200 * rng.next()));
    const privacy = { epsilon: 1, delta: 1e-5, rounds: 1 };
    const layout = histogramLayout(s);
    const fine = layout.fine[0];
    // Within each bin (13 values), how far the split over its values is from uniform (the truth), as a
    // total variation distance: for the model, and for the fine level's clipped noisy counts alone.
    let shrunkTv = 0;
    let rawTv = 0;
    let uniformBins = 0;
    let bins = 0;
    const trials = 20;
    for (let t = 0; t < trials; t++) {
      const { model } = runFederation(engine, s, privacy, data, new SeededRng(100 + t));
      const values = model.values[0]!;
      const fineCounts = model.roundSums[0].subarray(fine.offset, fine.offset + fine.size);
      for (let first = 0; first < fine.size; first += fine.perBin) {
        const m = Math.min(fine.size, first + fine.perBin) - first;
        const split = (get: (k: number) => number) => {
          const x = Array.from({ length: m }, (_, k) => Math.max(0, get(first + k)));
          const sum = x.reduce((a, b) => a + b, 0);
          return x.map((v) => (sum > 0 ? v / sum : 1 / m));
        };
        const tv = (p: number[]) => p.reduce((a, v) => a + Math.abs(v - 1 / m), 0) / 2;
        const shrunk = split((k) => values[k]);
        shrunkTv += tv(shrunk);
        rawTv += tv(split((k) => fineCounts[k]));
        if (tv(shrunk) < 1e-9) uniformBins++;
        bins++;
      }
    }
    shrunkTv /= bins;
    rawTv /= bins;
    expect(rawTv).toBeGreaterThan(0.25); // the fine counts alone are mostly noise
    expect(shrunkTv).toBeLessThan(0.3 * rawTv);
    expect(uniformBins / bins).toBeGreaterThan(0.4);
  });

  it("shrinkBlock: noise-sized deviations give a uniform split, large ones are kept", () => {
    const out = new Float64Array(5);
    shrinkBlock([10, 12, 8, 11, 9], 50, 25, out); // Σd² = 10 < (m−1)·25: uniform
    expect(Array.from(out)).toEqual([0.2, 0.2, 0.2, 0.2, 0.2]);
    shrinkBlock([400, 10, 0, 5, 0], 415, 1, out); // a clear spike
    expect(out[0]).toBeGreaterThan(0.95);
    expect(out.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    shrinkBlock([100, -50, 0, 0, 0], 0, 1, out); // nothing in the block: shares still sum to 1
    expect(out.every((v) => v >= 0)).toBe(true);
    expect(out.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    shrinkBlock([3, 3, 3, 3, 3], 15, 0, out); // no deviation at all
    expect(Array.from(out)).toEqual([0.2, 0.2, 0.2, 0.2, 0.2]);
    // Exactly: s = 1 − (m−1)·v/Σd² = 1 − 1·2/8 = 0.75; x = C/m + s·d.
    const two = new Float64Array(2);
    shrinkBlock([12, 8], 20, 2, two);
    expect(two[0]).toBeCloseTo((10 + 0.75 * 2) / 20, 12);
    expect(two[1]).toBeCloseTo((10 - 0.75 * 2) / 20, 12);
  });

  it("combines a bin's coarse count with its fine counts by inverse-variance weighting", () => {
    const s: Schema = { columns: [{ name: "x", type: "numeric", min: 0, max: 63, integer: true, bins: 2 }], missing: [""] };
    const layout = histogramLayout(s);
    expect(layout.sizes).toEqual([3]);
    expect(layout.fine[0].perBin).toBe(32);
    const estimate = new Float64Array(layout.total);
    estimate[0] = 200; // bin 0, coarse
    estimate[1] = 250; // bin 1, coarse
    estimate[2] = 0; // missing
    for (let k = 0; k < 32; k++) estimate[3 + k] = 100 / 32; // bin 0's fine counts sum to 100
    for (let k = 32; k < 64; k++) estimate[3 + k] = 350 / 32; // bin 1's to 350
    // Coarse variance 32, fine variance 1: a bin's fine sum has variance 32 too, so the two weigh equally:
    // bin 0 (200 + 100)/2 = 150, bin 1 (250 + 350)/2 = 300 (and 450 rows, so Norm-Sub changes nothing).
    const { probabilities, values } = columnProbabilities(layout, estimate, { coarseVariance: 32, fineVariance: 1 });
    expect(probabilities[0][0]).toBeCloseTo(150 / 450, 12);
    expect(probabilities[0][1]).toBeCloseTo(300 / 450, 12);
    // With a 3× noisier fine level (variance 9 per cell, 288 per bin sum) the coarse count weighs 9×.
    const noisier = columnProbabilities(layout, estimate, { coarseVariance: 32, fineVariance: 9 }).probabilities[0];
    expect(noisier[0] / noisier[1]).toBeCloseTo((0.9 * 200 + 0.1 * 100) / (0.9 * 250 + 0.1 * 350), 12);
    expect(values[0]!.length).toBe(65);
    expect(values[0]![0]).toBeCloseTo(probabilities[0][0] / 32, 12); // flat fine counts: uniform within the bin
    expect(values[0]![64]).toBe(probabilities[0][2]);
  });

  it("samples step columns without a fine level on their grid, uniformly within a bin", () => {
    const s: Schema = {
      columns: [
        { name: "half", type: "numeric", min: 0, max: 10, integer: false, step: 0.5 }, // 21 values: one bin each
        { name: "fine", type: "numeric", min: 1.05, max: 400, integer: false, step: 0.01 }, // 39896 values: coarse only
        { name: "bp", type: "numeric", min: 80, max: 220, integer: true, step: 10 },
        { name: "whole", type: "numeric", min: 0, max: 20, integer: false, step: 1 },
      ],
      missing: [""],
    };
    expect(histogramLayout(s).fine).toEqual([]);
    const data = oneColumnSites(s, () => null).map((t, i) => {
      const rng = new SeededRng(i);
      const cols = [
        Array.from({ length: t.rowCount }, () => 0.5 * Math.floor(21 * rng.next())),
        Array.from({ length: t.rowCount }, () => Number((1.05 + 398 * rng.next()).toFixed(2))),
        Array.from({ length: t.rowCount }, () => 80 + 10 * Math.floor(15 * rng.next())),
        Array.from({ length: t.rowCount }, () => Math.floor(21 * rng.next())),
      ];
      return { schema: s, rowCount: t.rowCount, columns: cols };
    });
    const { model } = runFederation(engine, s, { epsilon: 10, delta: 1e-5, rounds: 1 }, data);
    const rows = [...engine.sample(model, 5000, new SeededRng(5))];
    for (const r of rows) {
      expect(rowProblem(s, r)).toBeNull();
      expect(r[0]).toMatch(/^\d+\.[05]$/);
      expect(r[1]).toMatch(/^\d+\.\d\d$/);
      expect(r[2]).toMatch(/^(80|90|1\d0|2[012]0)$/);
      expect(r[3]).toMatch(/^\d+$/);
    }
    expect(new Set(rows.map((r) => r[0])).size).toBe(21);
    expect(new Set(rows.map((r) => r[1])).size).toBeGreaterThan(4000);
  });

  it("reads version-1 models (from before the fine level) of schemas without fine levels", () => {
    const privacy = { epsilon: 1, delta: 1e-5, rounds: 2 };
    const data = sites.map((t) => ({ schema: coarseOnly, rowCount: t.rowCount, columns: schema.columns.flatMap((c, j) => (coarseOnly.columns.includes(c) ? [t.columns[j]] : [])) }));
    const { model, config } = runFederation(engine, coarseOnly, privacy, data);
    const v2 = engine.serialize(model);
    // Version 1 wrote one u32 (coarse cells) per column instead of two.
    const columns = coarseOnly.columns.length;
    const v1 = new Uint8Array(v2.length - 4 * columns);
    v1.set(v2.subarray(0, 20), 0);
    new DataView(v1.buffer).setUint32(4, 1, true);
    for (let j = 0; j < columns; j++) v1.set(v2.subarray(20 + 8 * j, 24 + 8 * j), 20 + 4 * j);
    v1.set(v2.subarray(20 + 8 * columns), 20 + 4 * columns);
    // ... with the config of the time (without the fine level's keys), which still charges the same.
    const { fineColumns, fineL2Sensitivity, fineNoiseMultiplier, ...oldConfig } = config;
    expect([fineColumns, fineL2Sensitivity, fineNoiseMultiplier]).toEqual([0, 0, FINE_NOISE_MULTIPLIER]);
    const copy = engine.deserialize(v1, coarseOnly, oldConfig);
    expect([...engine.sample(copy, 200, new SeededRng(1))]).toEqual([...engine.sample(model, 200, new SeededRng(1))]);
    const ctx: TaskContext = { schema: coarseOnly, privacy, config: oldConfig, round: 1, roundConfig: {} };
    expect(engine.charge(ctx)).toEqual(engine.charge({ ...ctx, config }));
    // Not for a schema with fine levels.
    const { fineColumns: _f, fineL2Sensitivity: _l, fineNoiseMultiplier: _a, ...oldFine } = engine.configure(schema, privacy);
    expect(() => engine.charge({ schema, privacy, config: oldFine, round: 1, roundConfig: {} })).toThrow(FedsynthError);
    // A schema with fine levels needs version 2.
    const fineModel = runFederation(engine, schema, privacy, sites);
    const bytes = engine.serialize(fineModel.model).slice();
    new DataView(bytes.buffer).setUint32(4, 1, true);
    expect(() => engine.deserialize(bytes, schema, fineModel.config)).toThrow(FedsynthError);
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
  it("knows the independent engine", () => {
    expect(engineNames()).toContain("independent");
    expect(getEngine("independent")).toBe(engine);
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
