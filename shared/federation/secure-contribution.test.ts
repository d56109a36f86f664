import { describe, expect, it } from "vitest";
import { decodeSum, encodeContribution } from "./secure-contribution.js";
import { independentEngine, configureIndependent } from "../engines/independent/engine.js";
import { conformanceSchema, conformanceSites } from "../engines/conformance.js";
import { Accountant } from "../privacy/accountant.js";
import { histogramLayout, countTable } from "../engines/independent/histogram.js";
import type { SecureGrid, TaskContext } from "../engines/engine.js";

function sumWords(vectors: Uint32Array[]): Uint32Array {
  const out = new Uint32Array(vectors[0].length);
  for (const v of vectors) for (let i = 0; i < out.length; i++) out[i] = (out[i] + v[i]) >>> 0;
  return out;
}

describe("a contribution on the secure-aggregation grid", () => {
  const d = 20_000;
  const grid: SecureGrid = { gamma: 1 / 64, sigma: 200, weights: new Float64Array(d).fill(1).fill(0.5, d / 2), coordinateBound: 1000 };

  it("decodes, summed over sites, to the sum of the contributions plus noise of the planned size", () => {
    const sites = 5;
    const xs = Array.from({ length: sites }, (_, s) => Float64Array.from({ length: d }, (_, i) => ((i * 7 + s * 13) % 101) - 50.25));
    const decoded = decodeSum(sumWords(xs.map((x) => encodeContribution(x, grid).words)), grid);
    const errors = [new Array<number>(), new Array<number>()];
    for (let i = 0; i < d; i++) {
      const truth = xs.reduce((a, x) => a + x[i], 0);
      errors[i < d / 2 ? 0 : 1].push(decoded[i] - truth);
    }
    const sd = (e: number[]) => Math.sqrt(e.reduce((a, x) => a + x * x, 0) / e.length);
    const mean = (e: number[]) => e.reduce((a, x) => a + x, 0) / e.length;
    // Per coordinate: √sites discrete Gaussian shares of σ grid steps, γ each, divided by the weight.
    const expected = Math.sqrt(sites) * grid.sigma * grid.gamma;
    expect(sd(errors[0]) / expected).toBeGreaterThan(0.97);
    expect(sd(errors[0]) / expected).toBeLessThan(1.03);
    expect(sd(errors[1]) / (expected / 0.5)).toBeGreaterThan(0.97);
    expect(sd(errors[1]) / (expected / 0.5)).toBeLessThan(1.03);
    expect(Math.abs(mean(errors[0]))).toBeLessThan(5 * expected / Math.sqrt(d / 2));
  });

  it("clamps a value beyond the grid's public bound and says how many", () => {
    const x = new Float64Array(d);
    x[3] = 5000;
    x[d - 1] = -2500; // weighted by 0.5: −1250, beyond the bound too
    x[d - 2] = 1999; // weighted: 999.5, within it
    expect(encodeContribution(x, grid).clamped).toBe(2);
  });
});

describe("the independent engine under secure aggregation", () => {
  const privacy = { epsilon: 1, delta: 1e-5, rounds: 2, secureAggregation: { threshold: 3, sites: 4 } };
  const config = independentEngine.configure(conformanceSchema, privacy);
  const ctx: TaskContext = { schema: conformanceSchema, privacy, config, round: 1, roundConfig: {} };

  it("charges one distributed discrete Gaussian release per round, spending the study's epsilon over its rounds", () => {
    const charge = independentEngine.charge(ctx);
    expect(charge).toHaveLength(1);
    expect(charge[0]).toMatchObject({ kind: "distributed-discrete-gaussian", sites: 3, repetitions: 1, dimension: histogramLayout(conformanceSchema).total });
    const spent = Accountant.epsilonOf([...charge, ...charge], privacy.delta);
    expect(spent).toBeLessThanOrEqual(1);
    expect(spent).toBeGreaterThan(0.99);
  });

  it("lets each site add less noise than it would alone: the sum carries at least t shares", () => {
    const plain = configureIndependent(conformanceSchema, { epsilon: 1, delta: 1e-5, rounds: 2 });
    // With t = 3 shares in every released sum each share can be about 1/√3 of a site's own noise.
    expect(config.sigma as number).toBeLessThan(plain.sigma / Math.sqrt(3) * 1.1);
    expect(config.sigma as number).toBeGreaterThan(plain.sigma / Math.sqrt(3) * 0.8);
  });

  it("aggregates the decoded sum of the sites' contributions", () => {
    const tables = conformanceSites(1, [800, 1200, 600, 400]);
    expect(tables).toHaveLength(4);
    const grid = independentEngine.secure!.grid(ctx);
    const words = tables.map((t) => encodeContribution(independentEngine.secure!.contribution(ctx, null, t), grid).words);
    const sum = decodeSum(sumWords(words), grid);
    const layout = histogramLayout(conformanceSchema);
    const truth = new Float64Array(layout.total);
    for (const t of tables) countTable(conformanceSchema, layout, t).forEach((c, i) => (truth[i] += c));
    const noiseSd = Math.sqrt(4) * (config.sigma as number) * 2; // fine cells carry α = 2 times the noise
    for (let i = 0; i < sum.length; i++) expect(Math.abs(sum[i] - truth[i])).toBeLessThan(6 * noiseSd);
    const model = independentEngine.aggregate(independentEngine.init(conformanceSchema, config), sum, 4, ctx);
    expect(model.roundContributors).toEqual([4]);
    expect(() => independentEngine.localUpdate(ctx, null, tables[0], { next: Math.random } as never)).toThrow(/secure aggregation/);
  });
});
