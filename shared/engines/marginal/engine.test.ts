/**
 * The marginal engine passes the conformance suite in plaintext and under secure aggregation, and spends
 * exactly its budget. The secure run drives the suite through conformance.ts' `secureStudyEngine`.
 */
import { describe, expect, it } from "vitest";
import { configureMarginal, marginalEngine as engine } from "./engine.js";
import { conformanceSchema, conformanceSites, describeEngineConformance, runFederation, secureStudyEngine } from "../conformance.js";
import type { TaskContext } from "../engine.js";
import type { Schema, Table } from "../../schema/schema.js";
import { Accountant } from "../../privacy/accountant.js";
import { getEngine } from "../registry.js";
import { SeededRng } from "../../random/rng.js";
import { cellCodes, coarseLayout, massGrouping } from "./discretise.js";

describeEngineConformance(engine);
describeEngineConformance(secureStudyEngine(engine, { threshold: 2, sites: 3 }));

describe("marginal engine", () => {
  it("is registered, with three rounds by default", () => {
    expect(getEngine("marginal")).toBe(engine);
    expect(engine.defaultRounds!(false)).toBe(3);
    expect(engine.defaultRounds!(true)).toBe(3);
  });

  for (const secure of [undefined, { threshold: 3, sites: 4 }]) {
    for (const [epsilon, rounds] of [[1, 3], [0.5, 4], [4, 2], [1, 1]] as const) {
      it(`spends within [0.99ε, ε] over its rounds (ε=${epsilon}, ${rounds} rounds, ${secure ? "secure" : "plaintext"})`, () => {
        const privacy = { epsilon, delta: 1e-5, rounds, ...(secure ? { secureAggregation: secure } : {}) };
        const config = engine.configure(conformanceSchema, privacy);
        const charges = Array.from({ length: rounds }, (_, r) => engine.charge({ schema: conformanceSchema, privacy, config, round: r + 1, roundConfig: {} })).flat();
        const spent = Accountant.epsilonOf(charges, 1e-5);
        expect(spent).toBeLessThanOrEqual(epsilon);
        expect(spent).toBeGreaterThanOrEqual(0.99 * epsilon);
        if (secure) expect(charges.every((m) => m.kind === "distributed-discrete-gaussian")).toBe(true);
      });
    }
  }

  it("charges the marginals in round 1, all pairs in round 2 and the selected tables later, from public values only", () => {
    const privacy = { epsilon: 1, delta: 1e-5, rounds: 3 };
    const config = configureMarginal(conformanceSchema, privacy);
    const columns = conformanceSchema.columns.length;
    const ctx = (round: number): TaskContext => ({ schema: conformanceSchema, privacy, config: config as never, round, roundConfig: {} });
    // The conformance schema has two fine columns (age: 73 integers; score: a 0.1 grid): their per-value histograms at 2σ.
    expect(config.fineColumns).toBe(2);
    expect(engine.charge(ctx(1))).toEqual([
      { kind: "gaussian", l2Sensitivity: Math.sqrt(columns), sigma: config.sigmaMarginals, repetitions: 1 },
      { kind: "gaussian", l2Sensitivity: Math.SQRT2, sigma: 2 * config.sigmaMarginals, repetitions: 1 },
    ]);
    expect(engine.charge(ctx(2))).toEqual([{ kind: "gaussian", l2Sensitivity: Math.sqrt((columns * (columns - 1)) / 2), sigma: config.sigmaPairs, repetitions: 1 }]);
    // However many tables the coordinator selects, their weights' squares sum to at most 1: one charge.
    expect(engine.charge(ctx(3))).toEqual([{ kind: "gaussian", l2Sensitivity: 1, sigma: config.sigmaSelected, repetitions: 1 }]);
    expect(() => engine.charge(ctx(4))).toThrow(/outside the study/);
  });

  it("a site's contributions are counts: 1-way cells, one ±1 contrast per pair, the selected tables' and columns' cells", () => {
    const privacy = { epsilon: 1, delta: 1e-5, rounds: 3 };
    const config = engine.configure(conformanceSchema, privacy);
    const [site] = conformanceSites(8, [400]);
    const k = conformanceSchema.columns.length;
    let model = engine.init(conformanceSchema, config);
    const run = (round: number) => {
      const roundConfig = engine.planRound(model, { schema: conformanceSchema, privacy, config, round });
      const ctx: TaskContext = { schema: conformanceSchema, privacy, config, round, roundConfig };
      const x = engine.secure!.contribution(ctx, null, site);
      model = engine.aggregate(model, engine.localUpdate(ctx, null, site, new SeededRng(round)), 1, ctx);
      return { roundConfig, x };
    };
    expect(run(1).x.subarray(0, (config as { coarseCells: number }).coarseCells).reduce((a, b) => a + b, 0)).toBe(400 * k);
    const { roundConfig, x } = run(2);
    const signs = (roundConfig as { pairsSigns: number[][] }).pairsSigns;
    const layout = coarseLayout(conformanceSchema);
    const codes = cellCodes(conformanceSchema, layout, site);
    let t = 0;
    for (let a = 0; a < k; a++) {
      for (let b = a + 1; b < k; b++, t++) {
        let want = 0;
        for (let i = 0; i < 400; i++) want += signs[a][codes[a][i]] * signs[b][codes[b][i]];
        expect(x[t]).toBe(want);
      }
    }
    const third = run(3);
    const plan = third.roundConfig as { tables: [number, number][]; weights: number[]; columns: number[]; columnWeights: number[] };
    expect([...plan.weights, ...plan.columnWeights].reduce((s, w) => s + w * w, 0)).toBeLessThanOrEqual(1);
    expect(plan.tables.length + plan.columns.length).toBeGreaterThan(0);
    // Every row adds 1 to one cell of every selected table and every re-measured column.
    expect(third.x.reduce((a, b) => a + b, 0)).toBe(400 * (plan.tables.length + plan.columns.length));
  });

  it("refuses round configs that would charge more than announced", () => {
    const privacy = { epsilon: 1, delta: 1e-5, rounds: 3 };
    const config = engine.configure(conformanceSchema, privacy);
    const layout = coarseLayout(conformanceSchema);
    const groups = conformanceSchema.columns.map((c, j) => massGrouping(c, layout.sizes[j], new Float64Array(layout.sizes[j]).fill(1), 2));
    const ctx = (roundConfig: object): TaskContext => ({ schema: conformanceSchema, privacy, config, round: 3, roundConfig: roundConfig as never });
    expect(engine.updateLength(ctx({ groups, tables: [[0, 1], [2, 3]], weights: [0.7, 0.7] }))).toBeGreaterThan(0);
    expect(() => engine.updateLength(ctx({ groups, tables: [[0, 1], [2, 3]], weights: [0.8, 0.7] }))).toThrow(/more than 1/);
    expect(() => engine.updateLength(ctx({ groups, tables: [[0, 1], [0, 1]], weights: [0.5, 0.5] }))).toThrow(/twice/);
    expect(() => engine.updateLength(ctx({ groups, tables: [[1, 0]], weights: [1] }))).toThrow(/lower column first/);
    expect(engine.updateLength(ctx({ groups, tables: [[0, 1]], weights: [0.6], columns: [3], columnWeights: [0.8] }))).toBeGreaterThan(0);
    expect(() => engine.updateLength(ctx({ groups, tables: [[0, 1]], weights: [0.6], columns: [3], columnWeights: [0.81] }))).toThrow(/more than 1/);
    expect(() => engine.updateLength(ctx({ groups, tables: [], weights: [] }))).toThrow(/expected 1 to/);
    expect(() => engine.updateLength({ ...ctx({}), round: 2, roundConfig: { pairsSigns: [[2]] } })).toThrow(/signs/);
  });

  it("learns a pair: a column that copies another keeps the dependence in its samples", () => {
    const schema: Schema = {
      columns: [
        { name: "x", type: "categorical", values: ["a", "b", "c"] },
        { name: "noise", type: "numeric", min: 0, max: 10, integer: false },
        { name: "y", type: "categorical", values: ["a", "b", "c"] },
      ],
      missing: [""],
    };
    const rng = new SeededRng(21);
    const sites: Table[] = [800, 1200, 1000].map((rows) => {
      const x = Array.from({ length: rows }, () => Math.floor(rng.next() * 3));
      const y = x.map((v) => (rng.next() < 0.8 ? v : Math.floor(rng.next() * 3)));
      return { schema, rowCount: rows, columns: [x, x.map(() => rng.next() * 10), y] };
    });
    const { model } = runFederation(engine, schema, { epsilon: 1e4, delta: 1e-5, rounds: 3 }, sites, new SeededRng(3));
    expect(model.fitted.pairs.map((p) => p.join("-"))).toContain("0-2");
    const rows = [...engine.sample(model, 20_000, new SeededRng(5))];
    const same = rows.filter((r) => r[0] === r[2]).length / rows.length;
    expect(same).toBeGreaterThan(0.8); // 0.8 + 0.2/3 in the data, 1/3 without the pair
    expect(same).toBeLessThan(0.93);
  });

  it("a secure contribution is the un-noised counts (the grid adds the noise)", () => {
    const privacy = { epsilon: 1, delta: 1e-5, rounds: 3, secureAggregation: { threshold: 2, sites: 3 } };
    const config = engine.configure(conformanceSchema, privacy);
    const ctx: TaskContext = { schema: conformanceSchema, privacy, config, round: 1, roundConfig: {} };
    const [site] = conformanceSites(6, [500]);
    const x = engine.secure!.contribution(ctx, null, site);
    expect(x).toEqual(engine.secure!.contribution(ctx, null, site));
    const columns = conformanceSchema.columns.length;
    const coarse = (config as { coarseCells: number }).coarseCells;
    expect(x.subarray(0, coarse).reduce((a, b) => a + b, 0)).toBe(500 * columns);
    expect(x.every((v) => Number.isFinite(v) && v >= 0)).toBe(true);
    expect(() => engine.localUpdate(ctx, null, site, new SeededRng(1))).toThrow(/secure contribution/);
    // Every round's vector has the length fixed at configure (the tables are padded to the study's bound).
    const grid = engine.secure!.grid(ctx);
    expect(grid.weights.length).toBe(x.length);
  });

  it("refuses a one-column schema with several rounds, a model of another schema, and a config of the earlier tree engine", () => {
    const one = { ...conformanceSchema, columns: [conformanceSchema.columns[4]] };
    expect(() => engine.configure(one, { epsilon: 1, delta: 1e-5, rounds: 2 })).toThrow(/no pairs/);
    const privacy = { epsilon: 1, delta: 1e-5, rounds: 3 };
    const { model, config } = runFederation(engine, conformanceSchema, privacy, conformanceSites(2));
    const renamed = { ...conformanceSchema, columns: conformanceSchema.columns.map((c, j) => (j === 0 ? { ...c, name: "years" } : c)) };
    expect(() => engine.deserialize(engine.serialize(model), renamed, config)).toThrow(/another schema/);
    const old = { ...config, version: 1 };
    expect(() => engine.init(conformanceSchema, old)).toThrow(/version 1, this build reads version 2/);
    let hint = "";
    try {
      engine.charge({ schema: conformanceSchema, privacy, config: old, round: 1, roundConfig: {} });
    } catch (e) {
      hint = (e as { hint?: string }).hint ?? "";
    }
    expect(hint).toMatch(/earlier tree-based marginal engine/);
    // A model file of the earlier format is refused by its version.
    const bytes = engine.serialize(model);
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(4, 1, true);
    expect(() => engine.deserialize(bytes, conformanceSchema, config)).toThrow(/format version 1/);
  });
});
