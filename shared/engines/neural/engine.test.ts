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
  it("charges a subsampled Gaussian for the training steps and a Gaussian for the row count, per round", () => {
    const privacy = { epsilon: 1, delta: 1e-5, rounds: 3 };
    const config = neuralEngine.configure(conformanceSchema, privacy);
    const charge = neuralEngine.charge({ schema: conformanceSchema, privacy, config, round: 1, roundConfig: {} });
    expect(charge.map((m) => m.kind)).toEqual(["subsampled-gaussian", "gaussian"]);
    const all = [1, 2, 3].flatMap((round) => neuralEngine.charge({ schema: conformanceSchema, privacy, config, round, roundConfig: {} }));
    const epsilon = Accountant.epsilonOf(all, privacy.delta);
    expect(epsilon).toBeLessThanOrEqual(1);
    expect(epsilon).toBeGreaterThan(0.95);
  });
});
