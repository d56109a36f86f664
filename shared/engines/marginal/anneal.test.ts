/** Budget annealing: the selected rounds' own budgets, charged as their round configs say, the study's total exactly its epsilon. */
import { describe, expect, it } from "vitest";
import { configureMarginal, marginalEngine as engine } from "./engine.js";
import { conformanceSchema, conformanceSites, runFederation, secureStudyEngine } from "../conformance.js";
import type { Engine, JsonObject, TaskContext } from "../engine.js";
import { Accountant } from "../../privacy/accountant.js";
import { SeededRng } from "../../random/rng.js";

/** The engine with annealing "aim" (equal is the default). */
const aim: Engine = { ...engine, configure: (schema, privacy) => JSON.parse(JSON.stringify(configureMarginal(schema, privacy, { annealing: "aim" }))) as JsonObject } as Engine;

const budgets = (run: { model: { rounds: readonly { roundConfig: JsonObject }[] } }) => run.model.rounds.map((r) => r.roundConfig.budget as number | undefined);

describe("marginal budget annealing", () => {
  for (const secure of [undefined, { threshold: 2, sites: 3 }]) {
    it(`gives each selected round its own budget and the last exactly what is left (5 rounds, ${secure ? "secure" : "plaintext"})`, () => {
      const privacy = { epsilon: 1, delta: 1e-5, rounds: 5 };
      const e = secure ? secureStudyEngine(aim, secure) : aim;
      const run = runFederation(e, conformanceSchema, privacy, conformanceSites(5, [400, 300, 500]), new SeededRng(4));
      const b = budgets(run);
      // Rounds 1 and 2 (marginals, all pairs) have none; of the three selected rounds the first spends half an equal split.
      expect(b.slice(0, 2)).toEqual([undefined, undefined]);
      expect(b[2]).toBeCloseTo(1 / 6, 12);
      // The second: the first's again (its tables moved the model by more than their noise), or four times it, within half of what is left.
      const left = 1 - b[2]!;
      expect(Math.min(Math.abs(b[3]! - b[2]!), Math.abs(b[3]! - Math.min(4 * b[2]!, left / 2)))).toBeLessThan(1e-12);
      const spent = Accountant.epsilonOf(run.charges.flat(), privacy.delta);
      expect(spent).toBeLessThanOrEqual(privacy.epsilon);
      expect(spent).toBeGreaterThan(0.999 * privacy.epsilon);
      // Plaintext Gaussian charges compose exactly in μ², so the last round takes the rest to rounding.
      if (!secure) expect(b[2]! + b[3]! + b[4]!).toBeCloseTo(1, 6);
      else expect(b[2]! + b[3]! + b[4]!).toBeGreaterThan(0.99);
    });
  }

  it("charges a selected round by its budget, and refuses one outside (0, 1] or in a study that splits equally", () => {
    const privacy = { epsilon: 1, delta: 1e-5, rounds: 4 };
    const config = configureMarginal(conformanceSchema, privacy, { annealing: "aim" }) as unknown as JsonObject;
    const ctx = (roundConfig: JsonObject, c = config): TaskContext => ({ schema: conformanceSchema, privacy, config: c, round: 4, roundConfig });
    const eps = (roundConfig: JsonObject) => Accountant.epsilonOf(engine.charge(ctx(roundConfig)), privacy.delta);
    expect(eps({ budget: 0.5 })).toBeCloseTo(eps({}), 12);
    expect(eps({ budget: 0.9 })).toBeGreaterThan(eps({ budget: 0.5 }));
    for (const bad of [0, -0.1, 1.5, "0.5", Number.NaN]) expect(() => engine.charge(ctx({ budget: bad as number }))).toThrow(/budget must be a fraction in \(0, 1\]/);
    const equal = configureMarginal(conformanceSchema, privacy, { annealing: "equal" }) as unknown as JsonObject;
    expect(() => engine.charge(ctx({ budget: 0.5 }, equal))).toThrow(/splits it equally/);
    // Rounds that are not selected rounds ignore it: their charge is fixed at configure.
    expect(engine.charge({ ...ctx({ budget: 0.9 }), round: 1 })).toEqual(engine.charge({ ...ctx({}), round: 1 }));
  });

  it("a study that splits equally (the default) writes no budgets and charges its selected rounds alike", () => {
    const privacy = { epsilon: 1, delta: 1e-5, rounds: 4 };
    const run = runFederation(engine, conformanceSchema, privacy, conformanceSites(6, [300, 300]), new SeededRng(5));
    expect(budgets(run)).toEqual([undefined, undefined, undefined, undefined]);
    expect(run.charges[2]).toEqual(run.charges[3]);
  });

  it("refuses an unknown annealing setting, and a last round when the earlier ones left nothing", () => {
    expect(() => configureMarginal(conformanceSchema, { epsilon: 1, delta: 1e-5, rounds: 4 }, { annealing: "fast" as never })).toThrow(/annealing must be "equal" or "aim"/);
    // A coordinator whose third round (of four) took the whole selected share: its planner has nothing for the fourth.
    const privacy = { epsilon: 1, delta: 1e-5, rounds: 4 };
    const schema = conformanceSchema;
    const config = aim.configure(schema, privacy);
    const sites = conformanceSites(7, [300, 300]);
    let model = engine.init(schema, config);
    for (let round = 1; round <= 3; round++) {
      const planned = engine.planRound(model, { schema, privacy, config, round });
      const roundConfig = round === 3 ? { ...planned, budget: 1 } : planned;
      const ctx: TaskContext = { schema, privacy, config, round, roundConfig };
      const sum = new Float64Array(engine.updateLength(ctx));
      for (const t of sites) engine.localUpdate(ctx, null, t, new SeededRng(round)).forEach((x, i) => (sum[i] += x));
      model = engine.aggregate(model, sum, sites.length, ctx);
    }
    expect(() => engine.planRound(model, { schema, privacy, config, round: 4 })).toThrow(/no budget left for its last round \(4\)/);
  });
});
