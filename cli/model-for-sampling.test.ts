/** What `fedsynth model export` writes: the marginal engine's model with its fit; other engines' as exported. */
import { describe, expect, it } from "vitest";
import { decodeModelBundle, encodeModelBundle, type ModelBundle } from "../shared/engines/model-file.js";
import { marginalEngine } from "../shared/engines/marginal/engine.js";
import { independentEngine } from "../shared/engines/independent/engine.js";
import { conformanceSchema, conformanceSites, runFederation } from "../shared/engines/conformance.js";
import { coarseLayout } from "../shared/engines/marginal/discretise.js";
import { releasedModel } from "../shared/engines/marginal/model-bytes.js";
import { fitCollectedRuns } from "../shared/engines/marginal/estimate.js";
import type { Engine } from "../shared/engines/engine.js";
import { modelForSampling } from "./model-for-sampling.js";

function bundleOf<M>(engine: Engine<M>, rounds: number): { bundle: Uint8Array; header: Omit<ModelBundle, "body">; released: Uint8Array } {
  const privacy = { epsilon: 1, delta: 1e-5, rounds };
  const { model, config } = runFederation(engine, conformanceSchema, privacy, conformanceSites(5, [600, 800]));
  const header = {
    engine: engine.name, schemaJson: JSON.stringify(conformanceSchema), engineConfig: config, privacy,
    studyId: "study-1", studyName: "test", round: rounds, createdAt: new Date(0).toISOString(),
  };
  const released = engine.serialize(model);
  return { bundle: encodeModelBundle({ ...header, body: released }), header, released };
}

describe("modelForSampling", () => {
  it("adds the marginal engine's fit, keeping the released model and the bundle's header", () => {
    const { bundle, header, released } = bundleOf(marginalEngine, 3);
    const out = decodeModelBundle(modelForSampling(bundle, "test"), "test");
    const { body, ...rest } = out;
    expect(rest).toEqual(header);
    expect(body.length).toBeGreaterThan(released.length);
    expect(releasedModel(body, conformanceSchema, coarseLayout(conformanceSchema))).toEqual(released);
    const before = fitCollectedRuns();
    const model = marginalEngine.deserialize(body, conformanceSchema, header.engineConfig);
    expect(model.storedFit).toBe(true);
    void model.sampler;
    expect(fitCollectedRuns()).toBe(before);
  });

  it("returns another engine's model file as it is", () => {
    const { bundle } = bundleOf(independentEngine, 1);
    expect(modelForSampling(bundle, "test")).toBe(bundle);
  });
});
