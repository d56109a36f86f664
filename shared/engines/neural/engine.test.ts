/** The neural engine passes the conformance suite every engine passes, plus its own checks. */
import { beforeAll, describe, expect, it } from "vitest";
import { configureNeural, neuralEngine } from "./engine.js";
import { describeEngineConformance, conformanceSchema } from "../conformance.js";
import { Accountant } from "../../privacy/accountant.js";
import { parseSchema } from "../../schema/parse-schema.js";

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
  it("refuses a schema whose network would not fit, with a hint, instead of failing inside the backend", () => {
    const columns = Array.from({ length: 100 }, (_, j) => ({ name: `x${j}`, type: "numeric", min: 0, max: 1, bins: 10_000 }));
    const wide = parseSchema(JSON.stringify({ columns }), "wide");
    expect(() => neuralEngine.configure(wide, { epsilon: 1, delta: 1e-5, rounds: 1 })).toThrow(/one-hot width 1,000,100 over 100 columns makes a 100,010,000-cell softmax block matrix, more than the 20,000,000 it can hold/);
  });

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

describe("neural model files", () => {
  it("reject a file made for another network with a clear error", () => {
    const privacy = { epsilon: 1, delta: 1e-5, rounds: 1 };
    const config = neuralEngine.configure(conformanceSchema, privacy);
    const bytes = neuralEngine.serialize(neuralEngine.init(conformanceSchema, config));
    const other = configureNeural(conformanceSchema, privacy, { hidden: 64, direct: false, inputEncoding: "onehot", directOutput: "onehot" });
    expect(() => neuralEngine.deserialize(bytes, conformanceSchema, other)).toThrow(/different schema or network/);
    // A version 2 file (before direct connections) is read only by a study with that layout.
    const legacy = neuralEngine.serialize(neuralEngine.init(conformanceSchema, other));
    const headerLength = Buffer.from(legacy).readUInt32LE(0);
    const header = JSON.parse(Buffer.from(legacy).toString("utf8", 4, 4 + headerLength));
    const v2 = Buffer.from(JSON.stringify({ version: 2, width: header.width, hidden: header.hidden, rounds: 0, histogramCells: 0, histogramSites: 1 }));
    const file = Buffer.concat([Buffer.alloc(4), v2, Buffer.from(legacy).subarray(4 + headerLength)]);
    file.writeUInt32LE(v2.length, 0);
    expect(neuralEngine.deserialize(new Uint8Array(file), conformanceSchema, other).params.length).toBe(neuralEngine.init(conformanceSchema, other).params.length);
    expect(() => neuralEngine.deserialize(new Uint8Array(file), conformanceSchema, config)).toThrow(/version 2 model file/);
  });
});
