/**
 * A schema's declared outcome (public) in the marginal engine: the all-pairs round measures the outcome's
 * pairs outcomeWeight times more precisely than the others within the same charge, and its contrasts with
 * the outcome split each column's present values, the missing cell left out.
 */
import { describe, expect, it } from "vitest";
import { configureMarginal, marginalEngine as engine } from "./engine.js";
import { conformanceSchema, conformanceSites, runFederation, secureStudyEngine } from "../conformance.js";
import type { JsonObject, StudyPrivacy, TaskContext } from "../engine.js";
import type { Cell, Schema, Table } from "../../schema/schema.js";
import { Accountant } from "../../privacy/accountant.js";
import { SeededRng } from "../../random/rng.js";
import { coarseLayout } from "./discretise.js";
import { contribution, coordinateWeights, roundLayout, secureGrid, siteNoise } from "./site-update.js";
import { pairWeights, readConfig, MARGINAL_DEFAULTS } from "./config.js";
import { shares } from "./budget.js";
import { collect, interactions } from "./estimate.js";
import { pairIndex, pairList } from "./round-plan.js";
import { medianSigns, outcomeThirds, pairsPlan } from "./select.js";

const declared: Schema = { ...conformanceSchema, outcome: "diagnosis" };
const outcome = 5;
const k = declared.columns.length;
const P = (k * (k - 1)) / 2;
const isOutcomePair = ([a, b]: [number, number]) => a === outcome || b === outcome;

function configured(schema: Schema, privacy: StudyPrivacy): JsonObject {
  return JSON.parse(JSON.stringify(configureMarginal(schema, privacy))) as JsonObject;
}

/** Round 2's context after an exact round 1 (its sum the sites' plain counts), as the coordinator plans it. */
function pairsRound(schema: Schema, privacy: StudyPrivacy, sites: Table[]): TaskContext {
  const config = configured(schema, privacy);
  let model = engine.init(schema, config);
  const first: TaskContext = { schema, privacy, config, round: 1, roundConfig: engine.planRound(model, { schema, privacy, config, round: 1 }) };
  const sum = new Float64Array(engine.updateLength(first));
  for (const t of sites) contribution(first, t).forEach((v, i) => (sum[i] += v));
  model = engine.aggregate(model, sum, sites.length, first);
  return { schema, privacy, config, round: 2, roundConfig: engine.planRound(model, { schema, privacy, config, round: 2 }) };
}

describe("marginal engine with a declared outcome", () => {
  const plain: StudyPrivacy = { epsilon: 1, delta: 1e-5, rounds: 3 };
  const secure: StudyPrivacy = { ...plain, secureAggregation: { threshold: 3, sites: 4 } };

  it("without an outcome every pair weighs 1 and round 2 has no outcome signs", () => {
    expect(pairWeights(conformanceSchema, MARGINAL_DEFAULTS)).toEqual(new Array(P).fill(1));
    const config = readConfig(configured(conformanceSchema, plain), conformanceSchema);
    expect(config.pairsSquares).toBe(P);
    const ctx = pairsRound(conformanceSchema, plain, conformanceSites(2, [400, 300]));
    expect(Object.keys(ctx.roundConfig)).toEqual(["pairsSigns"]);
  });

  it("gives the other pairs outcomeWeight times the noise of the outcome's, and charges exactly their Σ u²", () => {
    const u = pairWeights(declared, MARGINAL_DEFAULTS);
    pairList(k).forEach((pair, t) => expect(u[t]).toBe(isOutcomePair(pair) ? 1 : 1 / MARGINAL_DEFAULTS.outcomeWeight));
    const squares = k - 1 + (P - (k - 1)) / MARGINAL_DEFAULTS.outcomeWeight ** 2;
    const sites = conformanceSites(3, [500, 400, 300, 200]);
    for (const privacy of [plain, secure]) {
      const ctx = pairsRound(declared, privacy, sites);
      const config = readConfig(ctx.config, declared);
      expect(config.pairsSquares).toBeCloseTo(squares, 12);
      const rl = roundLayout(ctx, config, coarseLayout(declared));
      const noise = siteNoise(config, rl, 2);
      const outcomeNoise = noise[rl.pairs + pairIndex(k, 0, outcome)];
      pairList(k).forEach((pair, t) => expect(noise[rl.pairs + t] / outcomeNoise).toBeCloseTo(isOutcomePair(pair) ? 1 : MARGINAL_DEFAULTS.outcomeWeight, 9));
      // One row moves the weighted contrasts by at most the round's sensitivity.
      const [site] = sites;
      const fewer: Table = { ...site, rowCount: site.rowCount - 1, columns: site.columns.map((col) => col.slice(1)) };
      const diff = contribution(ctx, site).map((v, i) => v - contribution(ctx, fewer)[i]);
      const charges = [1, 2, 3].map((round) => engine.charge({ ...ctx, round })).flat();
      if (privacy.secureAggregation) {
        const grid = secureGrid(ctx);
        const moved = Math.sqrt(diff.reduce((s, d, i) => s + (d * grid.weights[i]) ** 2, 0));
        expect(moved).toBeLessThanOrEqual(Math.sqrt(shares(config, config.settings).p) * (1 + 1e-12));
      } else {
        const w = coordinateWeights(config, rl);
        const moved = Math.sqrt(diff.reduce((s, d, i) => s + (d * w[i] / w[rl.pairs + pairIndex(k, 0, outcome)]) ** 2, 0));
        expect(moved).toBeLessThanOrEqual(Math.sqrt(squares) * (1 + 1e-12));
        expect(charges[charges.length - 2]).toEqual({ kind: "gaussian", l2Sensitivity: Math.sqrt(config.pairsSquares), sigma: config.sigmaPairs, repetitions: 1 });
      }
      const spent = Accountant.epsilonOf(charges, privacy.delta);
      expect(spent).toBeLessThanOrEqual(privacy.epsilon);
      expect(spent).toBeGreaterThanOrEqual(0.99 * privacy.epsilon);
    }
  });

  it("measures how a column missing in most rows goes with the outcome, not just whether it is missing", () => {
    // x is missing in 70% of the rows; where present, it alone decides the outcome.
    const schema: Schema = {
      columns: [
        { name: "x", type: "numeric", min: 0, max: 9, integer: true },
        { name: "z", type: "categorical", values: ["a", "b"] },
        { name: "o", type: "categorical", values: ["0", "1"] },
      ],
      missing: [""],
      outcome: "o",
    };
    const rng = new SeededRng(4);
    const rows = 2000;
    const columns: Cell[][] = [[], [], []];
    for (let i = 0; i < rows; i++) {
      const x = rng.next() < 0.7 ? null : Math.floor(rng.next() * 10);
      columns[0].push(x);
      columns[1].push(rng.next() < 0.5 ? 0 : 1);
      columns[2].push(x === null ? (rng.next() < 0.5 ? 0 : 1) : x >= 5 ? 1 : 0);
    }
    const sites: Table[] = [{ schema, rowCount: rows, columns }];
    const strength = (s: Schema) => {
      const ctx = pairsRound(s, plain, sites);
      const config = readConfig(ctx.config, s);
      const layout = coarseLayout(s);
      const round2 = { roundConfig: ctx.roundConfig, contributors: 1, sum: contribution(ctx, sites[0]) };
      const c = collect(s, layout, config, [{ roundConfig: {}, contributors: 1, sum: contribution({ ...ctx, round: 1, roundConfig: {} }, sites[0]) }, round2]);
      const at = c.tables.findIndex((t) => t.source === "pairs" && t.a === 0 && t.b === 2);
      return { y: c.tables[at].y[0], strength: interactions(c)[at].strength, present: columns[0].filter((v) => v !== null).length };
    };
    const withOutcome = strength(schema);
    // Every present row adds sign(x) · sign(o) = 1; the missing rows add nothing.
    expect(withOutcome.y).toBe(withOutcome.present);
    expect(withOutcome.strength).toBeGreaterThan(20);
    // Without the declaration the contrast splits x into missing and present, which says nothing of the outcome.
    const undeclared = strength({ ...schema, outcome: undefined });
    expect(undeclared.strength).toBeLessThan(withOutcome.strength / 10);
  });

  it("refuses outcome signs a study cannot use, and 0 among the other pairs' signs", () => {
    const sites = conformanceSites(5, [300, 300]);
    const ctx = pairsRound(declared, plain, sites);
    const rc = ctx.roundConfig as { pairsSigns: number[][]; outcomeSigns: number[][] };
    expect(rc.outcomeSigns[2][rc.outcomeSigns[2].length - 1]).toBe(0);
    expect(() => engine.updateLength({ ...ctx, schema: conformanceSchema, config: configured(conformanceSchema, plain) })).toThrow(/no field 'outcomeSigns'/);
    const two = { ...rc, outcomeSigns: rc.outcomeSigns.map((s, j) => (j === 1 ? s.map(() => 2) : s)) } as unknown as JsonObject;
    expect(() => engine.updateLength({ ...ctx, roundConfig: two })).toThrow(/column 2's outcome signs must be/);
    const zero = { ...rc, pairsSigns: rc.pairsSigns.map((s) => s.map(() => 0)) } as unknown as JsonObject;
    expect(() => engine.updateLength({ ...ctx, roundConfig: zero })).toThrow(/signs must be .* values of 1 or -1/);
  });

  it("reads a config written before pair weights existed, with the same charges", () => {
    const config = configured(conformanceSchema, plain) as Record<string, unknown>;
    const { pairsSquares, ...older } = config;
    expect(pairsSquares).toBe(P);
    const olderSettings = { ...(older.settings as object) } as Record<string, unknown>;
    delete olderSettings.outcomeWeight;
    const before = { ...older, settings: olderSettings } as unknown as JsonObject;
    expect(readConfig(before, conformanceSchema).pairsSquares).toBe(P);
    for (const round of [1, 2, 3]) {
      expect(engine.charge({ schema: conformanceSchema, privacy: plain, config: before, round, roundConfig: {} }))
        .toEqual(engine.charge({ schema: conformanceSchema, privacy: plain, config: config as JsonObject, round, roundConfig: {} }));
    }
  });

  it("grades the outcome's own coefficients in thirds of its mass (settings.outcomeSplit), missing 0; older configs read as the median split", () => {
    // heart's num: 0 (44%), 1 (29%), 2–4 (27%), no missing.
    expect(outcomeThirds([0.44, 0.29, 0.12, 0.12, 0.03, 0])).toEqual([-1, 0, 1, 1, 1, 0]);
    // A two-valued outcome: its median split, the missing cell 0.
    expect(outcomeThirds([0.7, 0.25, 0.05])).toEqual([-1, 1, 0]);
    const config = readConfig(configured(declared, plain), declared);
    expect(config.settings.outcomeSplit).toBe("thirds");
    const layout = coarseLayout(declared);
    const p = layout.sizes.map((n) => new Float64Array(n).fill(1));
    expect(pairsPlan(declared, layout, config, p).outcomeSigns![outcome]).toEqual(outcomeThirds(p[outcome]));
    const olderSettings = { ...config.settings } as Record<string, unknown>;
    delete olderSettings.outcomeSplit;
    const older = readConfig({ ...configured(declared, plain), settings: olderSettings } as unknown as JsonObject, declared);
    expect(older.settings.outcomeSplit).toBe("median");
    expect(pairsPlan(declared, layout, older, p).outcomeSigns![outcome]).toEqual(medianSigns(p[outcome]));
  });

  it("runs a federation end to end, plaintext and secure, and its saved model samples as before", () => {
    for (const e of [engine, secureStudyEngine(engine, { threshold: 2, sites: 3 })]) {
      const { model, config } = runFederation(e, declared, plain, conformanceSites(6, [600, 800, 500]), new SeededRng(3));
      expect((model.rounds[1].roundConfig as { outcomeSigns?: unknown }).outcomeSigns).toBeDefined();
      const again = engine.deserialize(engine.serialize(model), declared, config);
      expect([...engine.sample(again, 200, new SeededRng(1))]).toEqual([...engine.sample(model, 200, new SeededRng(1))]);
    }
  });
});
