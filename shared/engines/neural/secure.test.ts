/** The neural engine under secure aggregation: the budget, the two kinds of round, a federation in process. */
import { beforeAll, describe, expect, it } from "vitest";
import { neuralEngine } from "./engine.js";
import { conformanceSchema, conformanceSites } from "../conformance.js";
import { Accountant } from "../../privacy/accountant.js";
import { decodeSum, encodeContribution } from "../../federation/secure-contribution.js";
import { histogramLayout } from "../independent/histogram.js";
import { SeededRng } from "../../random/rng.js";
import type { TaskContext } from "../engine.js";

beforeAll(async () => {
  await neuralEngine.prepare!();
});

const privacy = { epsilon: 1, delta: 1e-5, rounds: 3, secureAggregation: { threshold: 3, sites: 4 } };

function sumWords(vectors: Uint32Array[]): Uint32Array {
  const out = new Uint32Array(vectors[0].length);
  for (const v of vectors) for (let i = 0; i < out.length; i++) out[i] = (out[i] + v[i]) >>> 0;
  return out;
}

describe("neural engine under secure aggregation", () => {
  const config = neuralEngine.configure(conformanceSchema, privacy);
  const ctx = (round: number): TaskContext => ({ schema: conformanceSchema, privacy, config, round, roundConfig: {} });

  it("measures the marginals in round 1 and one gradient sum per later round, spending the budget exactly", () => {
    const [first] = neuralEngine.charge(ctx(1));
    const [second] = neuralEngine.charge(ctx(2));
    expect(first).toMatchObject({ kind: "distributed-discrete-gaussian", sites: 3, dimension: histogramLayout(conformanceSchema).total });
    expect(second).toMatchObject({ kind: "distributed-discrete-gaussian", sites: 3, dimension: neuralEngine.updateLength(ctx(2)) });
    expect(neuralEngine.charge(ctx(3))).toEqual([second]);
    const spent = Accountant.epsilonOf([first, second, second], privacy.delta);
    expect(spent).toBeLessThanOrEqual(1);
    expect(spent).toBeGreaterThan(0.999);
    expect(neuralEngine.needsModel(ctx(1))).toBe(false);
    expect(neuralEngine.needsModel(ctx(2))).toBe(true);
  });

  it("refuses a single round: the marginals must be pooled before training can start", () => {
    expect(() => neuralEngine.configure(conformanceSchema, { ...privacy, rounds: 1 })).toThrow(/needs 2 or more rounds/);
  });

  it("runs a federation whose coordinator sees only the sums, and samples from the result", () => {
    const tables = conformanceSites(3, [700, 500, 400, 300]);
    let model = neuralEngine.init(conformanceSchema, config);
    for (const round of [1, 2, 3]) {
      const c = ctx(round);
      const grid = neuralEngine.secure!.grid(c);
      const words = tables.map((t) => {
        const x = neuralEngine.secure!.contribution(c, round === 1 ? null : model, t);
        expect(x).toHaveLength(neuralEngine.updateLength(c));
        // The output biases come from the round-1 histograms: a gradient round sends none of their gradient.
        if (round > 1) expect(Array.from(x.subarray(x.length - model.shape.width)).every((v) => v === 0)).toBe(true);
        return encodeContribution(x, grid).words;
      });
      model = neuralEngine.aggregate(model, decodeSum(sumWords(words), grid), tables.length, c);
    }
    expect(model.rounds).toBe(3);
    expect(model.histogramSites).toBe(4);
    const rows = [...neuralEngine.sample(model, 500, new SeededRng(1))];
    expect(rows).toHaveLength(500);
    expect(rows.every((r) => r.length === conformanceSchema.columns.length)).toBe(true);
    const restored = neuralEngine.deserialize(neuralEngine.serialize(model), conformanceSchema, config);
    expect(Array.from(restored.params)).toEqual(Array.from(model.params));
    // The inputs were centred on the pooled marginals after round 1; a restored model (what a site gets)
    // must read them the same way, or its gradients and samples would belong to another network.
    expect(model.input.centered).toBe(true);
    expect(restored.input.features.map((f) => Array.from(f))).toEqual(model.input.features.map((f) => Array.from(f)));
    expect([...neuralEngine.sample(restored, 200, new SeededRng(2))]).toEqual([...neuralEngine.sample(model, 200, new SeededRng(2))]);
  }, 120_000);
});
