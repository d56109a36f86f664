/**
 * 3-way tables (settings.triples): a site counts them exactly, a round with one stays within its
 * announced sensitivity in plaintext and under secure aggregation, saved models keep them, and an engine
 * run that is made to measure one fits it in one clique.
 */
import { describe, expect, it } from "vitest";
import { configureMarginal, marginalEngine as engine, type MarginalModel } from "./engine.js";
import { conformanceSchema, conformanceSites, runFederation } from "../conformance.js";
import type { Engine, JsonObject, StudyPrivacy, TaskContext } from "../engine.js";
import type { Table } from "../../schema/schema.js";
import { Accountant } from "../../privacy/accountant.js";
import { SeededRng } from "../../random/rng.js";
import { cellCodes, coarseLayout, coarserGrouping, groupCount, massGrouping, TRIPLE_GROUPS } from "./discretise.js";
import { contribution, coordinateWeights, roundLayout, secureGrid } from "./site-update.js";
import { readConfig, type MarginalSettings } from "./config.js";
import { shares } from "./budget.js";
import { shrinkTriple } from "./triple.js";
import { chooseGreedy, type Candidate } from "./select-triples.js";

const schema = conformanceSchema;
const layout = coarseLayout(schema);
const k = schema.columns.length;
const uniform = (j: number) => new Float64Array(layout.sizes[j]).fill(1);
const pairGroups = schema.columns.map((c, j) => massGrouping(c, layout.sizes[j], uniform(j), 4));
const tripleGroups = pairGroups.map((g, j) => coarserGrouping(g, uniform(j), TRIPLE_GROUPS));

/** A selected round that measures one pair, one column and two 3-way tables. */
const roundConfig = {
  groups: pairGroups, tables: [[0, 1]], weights: [0.5], columns: [4], columnWeights: [0.5],
  tripleGroups, triples: [[0, 2, 5], [3, 5, 6]], tripleWeights: [0.5, 0.5],
} as unknown as JsonObject;

function context(privacy: StudyPrivacy, triples: MarginalSettings["triples"] = "auto"): TaskContext {
  const config = JSON.parse(JSON.stringify(configureMarginal(schema, privacy, { triples }))) as JsonObject;
  return { schema, privacy, config, round: 3, roundConfig };
}

/** The engine with 3-way tables switched on in the config it configures. */
function withTriples(triples: MarginalSettings["triples"]): Engine<MarginalModel> {
  return { ...engine, configure: (s, p) => JSON.parse(JSON.stringify(configureMarginal(s, p, { triples }))) as JsonObject };
}

describe("marginal 3-way tables", () => {
  it("coarsens the pair groups into at most TRIPLE_GROUPS groups besides missing, each a union of pair groups", () => {
    for (let j = 0; j < k; j++) {
      const g = tripleGroups[j];
      expect(groupCount(g) - 1).toBeLessThanOrEqual(TRIPLE_GROUPS);
      expect(g[g.length - 1]).toBe(groupCount(g) - 1);
      for (let c = 1; c < g.length; c++) if (pairGroups[j][c] === pairGroups[j][c - 1]) expect(g[c]).toBe(g[c - 1]);
    }
  });

  it("a site's 3-way table is the brute-force count of its rows over the groups", () => {
    const ctx = context({ epsilon: 1, delta: 1e-5, rounds: 3 });
    const [site] = conformanceSites(4, [700]);
    const x = contribution(ctx, site);
    const rl = roundLayout(ctx, readConfig(ctx.config, schema), layout);
    const codes = cellCodes(schema, layout, site);
    const part = rl.selectedPart!;
    part.triples.forEach(([a, b, c], t) => {
      const [ga, gb, gc] = [tripleGroups[a], tripleGroups[b], tripleGroups[c]];
      const counts = new Map<string, number>();
      for (let i = 0; i < site.rowCount; i++) {
        const key = `${ga[codes[a][i]]},${gb[codes[b][i]]},${gc[codes[c][i]]}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      let cell = rl.selected + part.tripleOffsets[t];
      for (let u = 0; u < groupCount(ga); u++) {
        for (let v = 0; v < groupCount(gb); v++) {
          for (let w = 0; w < groupCount(gc); w++, cell++) expect(x[cell]).toBe(counts.get(`${u},${v},${w}`) ?? 0);
        }
      }
    });
    // Each row adds 1 to one cell of every table: the pair, the column and the two triples.
    expect(x.subarray(rl.selected).reduce((s, v) => s + v, 0)).toBe(4 * 700);
  });

  it("one row moves a round with triples by at most its announced weighted sensitivity, plaintext and secure", () => {
    const [site] = conformanceSites(5, [300]);
    const fewer: Table = { ...site, rowCount: 299, columns: site.columns.map((col) => col.slice(1)) };
    for (const secure of [undefined, { threshold: 3, sites: 4 }]) {
      const privacy: StudyPrivacy = { epsilon: 1, delta: 1e-5, rounds: 3, ...(secure ? { secureAggregation: secure } : {}) };
      const ctx = context(privacy);
      const config = readConfig(ctx.config, schema);
      const rl = roundLayout(ctx, config, layout);
      const diff = contribution(ctx, site).map((v, i) => v - contribution(ctx, fewer)[i]);
      // Plaintext: noise σ_s / w_t per table; the charge is one Gaussian of sensitivity 1 at σ_s.
      const w = coordinateWeights(config, rl);
      const base = w[rl.selected + rl.selectedPart!.tripleOffsets[0]] / 0.5;
      const moved = Math.sqrt(diff.reduce((s, d, i) => s + (d * w[i] / base) ** 2, 0));
      expect(moved).toBeCloseTo(1, 6); // √(4 · 0.5²): every table, the triples too, moves by one cell
      if (!secure) {
        expect(engine.charge(ctx)).toEqual([{ kind: "gaussian", l2Sensitivity: 1, sigma: config.sigmaSelected, repetitions: 1 }]);
        continue;
      }
      // Secure: the grid's weighted move is within the round's share, and the triples fit the padded length.
      const grid = secureGrid(ctx);
      const weighted = Math.sqrt(diff.reduce((s, d, i) => s + (d * grid.weights[i]) ** 2, 0));
      expect(weighted).toBeLessThanOrEqual(Math.sqrt(shares(config, config.settings).s) * (1 + 1e-12));
      expect(rl.length).toBe(config.selectedCells);
      const charges = [1, 2, 3].map((round) => engine.charge({ ...ctx, round }));
      const spent = Accountant.epsilonOf(charges.flat(), 1e-5);
      expect(spent).toBeLessThanOrEqual(1);
      expect(spent).toBeGreaterThanOrEqual(0.99);
    }
  });

  it("refuses 3-way tables a study did not announce, and weights whose squares exceed 1", () => {
    const privacy = { epsilon: 1, delta: 1e-5, rounds: 3 };
    expect(() => engine.updateLength(context(privacy, "off"))).toThrow(/no field 'tripleGroups'/);
    const ctx = context(privacy);
    const heavier = { ...(roundConfig as object), tripleWeights: [0.5, 0.51] } as unknown as JsonObject;
    expect(() => engine.updateLength({ ...ctx, roundConfig: heavier })).toThrow(/more than 1/);
    const unsorted = { ...(roundConfig as object), triples: [[2, 0, 5], [3, 5, 6]] } as unknown as JsonObject;
    expect(() => engine.updateLength({ ...ctx, roundConfig: unsorted })).toThrow(/ascending/);
    const fine = { ...(roundConfig as object), tripleGroups: pairGroups } as unknown as JsonObject;
    expect(() => engine.updateLength({ ...ctx, roundConfig: fine })).toThrow(/more than 4 groups/);
  });

  it("a run made to measure a triple fits it in one clique, and its saved model reproduces it", () => {
    const privacy = { epsilon: 4, delta: 1e-5, rounds: 3 };
    const forced = withTriples("always");
    const { model, config } = runFederation(forced, schema, privacy, conformanceSites(3, [600, 900, 500]), new SeededRng(8));
    const plan = model.rounds[2].roundConfig as { triples?: number[][] };
    expect(plan.triples?.length).toBeGreaterThan(0);
    const fitted = model.fitted;
    expect(fitted.triples).toEqual(plan.triples);
    for (const t of fitted.triples) expect(fitted.fit.tree.cliques.some((q) => t.every((j) => q.includes(j)))).toBe(true);
    const again = forced.deserialize(forced.serialize(model), schema, config);
    expect(again.rounds.map((r) => r.roundConfig)).toEqual(model.rounds.map((r) => r.roundConfig));
    expect(again.fitted.triples).toEqual(fitted.triples);
    expect([...forced.sample(again, 300, new SeededRng(2))]).toEqual([...forced.sample(model, 300, new SeededRng(2))]);
  });

  it("a config written before 3-way tables existed reads as without them", () => {
    const config = JSON.parse(JSON.stringify(configureMarginal(schema, { epsilon: 1, delta: 1e-5, rounds: 3 }))) as { settings: Record<string, unknown> };
    delete config.settings.triples;
    expect(readConfig(config as unknown as JsonObject, schema).settings.triples).toBe("off");
  });

  it("shrinks pure noise towards independence and keeps a strong 3-way interaction", () => {
    const rng = new SeededRng(4);
    const share = [Float64Array.of(0.5, 0.5), Float64Array.of(0.5, 0.5), Float64Array.of(0.5, 0.5)] as [Float64Array, Float64Array, Float64Array];
    const N = 8000;
    // Parity: every pair independent, the three together not (x ⊕ y ⊕ z = 0 only).
    const parity = Float64Array.from({ length: 8 }, (_, i) => (((i >> 2) ^ (i >> 1) ^ i) & 1 ? 0 : N / 4));
    const noisy = parity.map((v) => v + 4 * (rng.next() - 0.5));
    const kept = shrinkTriple(noisy, share, N, 25);
    expect(kept.strength[3]).toBeGreaterThan(100);
    for (let i = 0; i < 8; i++) expect(kept.shrunk[i]).toBeCloseTo(parity[i], -1);
    // Noise far below its variance: every interaction goes, the 1-way margins stay.
    const flat = Float64Array.from({ length: 8 }, () => N / 8 + 5 * (rng.next() - 0.5));
    const gone = shrinkTriple(flat, share, N, 1000).shrunk;
    expect(Math.max(...shrinkTriple(gone, share, N, 1).strength)).toBeLessThan(1e-12);
    expect(gone.reduce((s, v) => s + v, 0)).toBeCloseTo(flat.reduce((s, v) => s + v, 0), 9);
  });

  it("a triple counts only what chosen tables leave of its pairs' misses", () => {
    const pair = (id: number, error: number): Candidate => ({ pair: [0, id + 1], parts: [{ id, error, share: 1, noise: 4 }] });
    const triple: Candidate = { triple: [0, 1, 2], parts: [0, 1, 2].map((id) => ({ id, error: 100, share: 0.5, noise: 4 })) };
    // At v₁ = 1, K = 2: a pair of miss 100 gains 100²/108; the triple 3 · 50²/58, more than any pair, so it goes first.
    const { chosen, gain } = chooseGreedy([pair(0, 100), pair(1, 100), pair(3, 40), triple], 2, 1);
    expect(chosen.map((c) => c.triple ?? c.pair)).toEqual([[0, 1, 2], [0, 1]]);
    // Then pair 0's table sees only the miss the triple left: 100 − 50²/58.
    const left = 100 - 2500 / 58;
    expect(gain).toBeCloseTo(3 * (2500 / 58) + left ** 2 / (left + 8), 9);
    // Without triples it is the K of largest gain.
    expect(chooseGreedy([pair(0, 100), pair(3, 60), pair(1, 100)], 2, 1).chosen.map((c) => c.pair)).toEqual([[0, 1], [0, 2]]);
    expect(chooseGreedy([pair(0, 100), pair(1, 100), triple], 1, 1, true).chosen).toEqual([triple]);
  });
});
