/** The neural engine passes the conformance suite every engine passes, plus its own checks. */
import { beforeAll, describe, expect, it } from "vitest";
import { neuralEngine } from "./engine.js";
import { describeEngineConformance, conformanceSchema } from "../conformance.js";
import { Accountant } from "../../privacy/accountant.js";

beforeAll(async () => {
  await neuralEngine.prepare!();
});

describeEngineConformance(neuralEngine, {
  learningPrivacy: { epsilon: 1e4, delta: 1e-5, rounds: 6 },
  maxTvd: 0.1,
  sampleRows: 5000,
  siteRows: [600, 900, 500],
  timeout: 180_000,
});

describe("neural engine", () => {
  it("charges the training steps and the row count every round, and the column histograms in round 1", () => {
    const privacy = { epsilon: 1, delta: 1e-5, rounds: 3 };
    const config = neuralEngine.configure(conformanceSchema, privacy);
    const charge = (round: number) => neuralEngine.charge({ schema: conformanceSchema, privacy, config, round, roundConfig: {} });
    expect(charge(1).map((m) => m.kind)).toEqual(["subsampled-gaussian", "gaussian", "gaussian", ...(charge(1).length === 4 ? ["gaussian"] : [])]);
    expect(charge(1)[2]).toMatchObject({ l2Sensitivity: Math.sqrt(conformanceSchema.columns.length), repetitions: 1 });
    expect(charge(2).map((m) => m.kind)).toEqual(["subsampled-gaussian", "gaussian"]);
    expect(charge(3)).toEqual(charge(2));
    const all = [1, 2, 3].flatMap((round) => neuralEngine.charge({ schema: conformanceSchema, privacy, config, round, roundConfig: {} }));
    const epsilon = Accountant.epsilonOf(all, privacy.delta);
    expect(epsilon).toBeLessThanOrEqual(1);
    expect(epsilon).toBeGreaterThan(0.95);
  });
});
