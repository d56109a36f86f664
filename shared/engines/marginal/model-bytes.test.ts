/**
 * The model file (model-bytes.ts, fitted-bytes.ts): version 3 made for sampling carries the fit, so that
 * reading a model and sampling it fits nothing, and samples what the in-memory model samples; the
 * coordinator's (serialize) carries none and costs no fit; version 2 (the sums alone) still reads; damaged
 * fits are refused by name; and the stored fit is the refit of the stored sums.
 */
import { describe, expect, it } from "vitest";
import { marginalEngine as engine, type MarginalModel } from "./engine.js";
import { conformanceSchema as schema, conformanceSites, runFederation } from "../conformance.js";
import type { JsonObject } from "../engine.js";
import { SeededRng } from "../../random/rng.js";
import { FedsynthError } from "../../errors.js";
import { coarseLayout } from "./discretise.js";
import { fitCollectedRuns, type JointModel } from "./estimate.js";
import { encodeFit } from "./fitted-bytes.js";
import { encodeModel, MODEL_FORMAT_VERSION, releasedModel } from "./model-bytes.js";
import { checkStoredFit } from "./fit-check.js";

const privacy = { epsilon: 1, delta: 1e-5, rounds: 3 };
let trained: { model: MarginalModel; config: JsonObject; bytes: Uint8Array } | undefined;
function train() {
  if (!trained) {
    const { model, config } = runFederation(engine, schema, privacy, conformanceSites(4, [900, 1200, 700]));
    trained = { model, config, bytes: engine.serializeForSampling!(model) };
  }
  return trained;
}

const layout = coarseLayout(schema);
const rows = (model: MarginalModel, n = 400, seed = 7) => [...engine.sample(model, n, new SeededRng(seed))];
const read = (bytes: Uint8Array) => engine.deserialize(bytes, schema, train().config);

/** Where the sums end (version 2 ends there; version 3 goes on with the fit's length and the fit). */
function sumsEnd(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerBytes = view.getUint32(8, true);
  const header = JSON.parse(Buffer.from(bytes.subarray(12, 12 + headerBytes)).toString("utf8")) as { rounds: { length: number }[] };
  return 12 + headerBytes + 8 * header.rounds.reduce((n, r) => n + r.length, 0);
}

/** The version-2 file of the same rounds: version 3's layout up to the sums. */
function asVersion2(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice(0, sumsEnd(bytes));
  new DataView(out.buffer).setUint32(4, 2, true);
  return out;
}

/** The trained model's file with another fit section. */
function withFit(section: Uint8Array): Uint8Array {
  return encodeModel(schema, layout, train().model.rounds, section);
}

/** A deep copy of a fitted model, to damage. */
function cloneFit(m: JointModel): JointModel {
  return structuredClone(m);
}

function refusal(bytes: Uint8Array): string {
  try {
    read(bytes);
  } catch (e) {
    expect(e).toBeInstanceOf(FedsynthError);
    return (e as Error).message;
  }
  throw new Error("the damaged model was read");
}

describe("marginal model file", () => {
  it(`is version ${MODEL_FORMAT_VERSION}: reading it and sampling fits nothing, and samples the in-memory model's rows`, () => {
    const { model, bytes } = train();
    expect(new DataView(bytes.buffer, bytes.byteOffset).getUint32(4, true)).toBe(3);
    const before = fitCollectedRuns();
    const copy = read(bytes.slice());
    expect(copy.storedFit).toBe(true);
    const sampled = rows(copy);
    void copy.sampler;
    expect(fitCollectedRuns()).toBe(before);
    expect(sampled).toEqual(rows(model));
    expect(copy.fitted).toEqual(model.fitted);
    // Its p and values are the reading of the same sums, which the model holds anyway.
    expect(copy.fitted.p).toBe(copy.collected.p);
    expect(engine.serialize(copy)).toEqual(bytes);
  });

  it("reads version 2 (the sums alone), fitting when first sampled, to the same rows and the same version-3 file", () => {
    const { model, bytes } = train();
    const before = fitCollectedRuns();
    const old = read(asVersion2(bytes));
    expect(old.storedFit).toBe(false);
    expect(fitCollectedRuns()).toBe(before);
    expect(rows(old)).toEqual(rows(model));
    expect(fitCollectedRuns()).toBe(before + 1);
    expect(engine.serializeForSampling!(old)).toEqual(bytes);
    expect(checkStoredFit(old)).toEqual({ stored: false });
    // Version 2 has nothing after its sums.
    const longer = new Uint8Array(asVersion2(bytes).length + 4);
    longer.set(asVersion2(bytes));
    expect(refusal(longer)).toMatch(/4 bytes beyond its rounds/);
  });

  it("serialize (the coordinator's, released) writes no fit and fits nothing; releasedModel gives those bytes back", () => {
    const { model, bytes } = train();
    const unfitted = read(encodeModel(schema, layout, model.rounds));
    const before = fitCollectedRuns();
    const released = engine.serialize(unfitted);
    expect(fitCollectedRuns()).toBe(before);
    expect(released.length).toBe(sumsEnd(released) + 4);
    expect(read(released).storedFit).toBe(false);
    expect(rows(read(released))).toEqual(rows(model));
    // An in-memory model fitted already is released without its fit too.
    expect(engine.serialize(model)).toEqual(released);
    expect(releasedModel(bytes, schema, layout)).toEqual(released);
    expect(releasedModel(released, schema, layout)).toEqual(released);
    expect(releasedModel(asVersion2(bytes), schema, layout)).toEqual(asVersion2(bytes));
  });

  it("the stored fit is the refit of the stored sums, bit for bit, and a changed fit is found", () => {
    const { bytes } = train();
    expect(checkStoredFit(read(bytes))).toEqual({ stored: true, identical: true, largestDifference: 0 });
    const fit = cloneFit(read(bytes).fitted);
    const m = fit.fit.marginals[0];
    const hi = m.indexOf(Math.max(...m));
    const lo = m.indexOf(Math.min(...m));
    [m[hi], m[lo]] = [m[lo], m[hi]];
    const check = checkStoredFit(read(withFit(encodeFit(fit))));
    expect(check).toMatchObject({ stored: true, identical: false });
    expect(check.stored && check.largestDifference).toBeGreaterThan(0);
  });

  it("checkSamplingData (fedsynth model verify) passes the refit and rounding, and fails a changed fit by how much", () => {
    const { bytes } = train();
    expect(engine.checkSamplingData!(read(bytes))).toEqual({ stored: true, ok: true, detail: "the stored fitted model is the fit of the released sums, bit for bit" });
    expect(engine.checkSamplingData!(read(asVersion2(bytes)))).toMatchObject({ stored: false });
    const nudged = cloneFit(read(bytes).fitted);
    nudged.fit.marginals[0][0] *= 1 + 1e-13;
    expect(engine.checkSamplingData!(read(withFit(encodeFit(nudged))))).toMatchObject({ stored: true, ok: true, detail: expect.stringMatching(/up to rounding/) });
    const changed = cloneFit(read(bytes).fitted);
    const m = changed.fit.marginals[0];
    m[m.indexOf(Math.max(...m))] -= 0.01;
    m[m.indexOf(Math.min(...m))] += 0.01;
    expect(engine.checkSamplingData!(read(withFit(encodeFit(changed))))).toEqual({
      stored: true, ok: false, detail: "the stored fitted model is not the fit of the released sums: a clique probability differs by 0.0100",
    });
  });

  it("refuses truncated fits, by what is missing", () => {
    const { bytes } = train();
    const end = sumsEnd(bytes);
    expect(refusal(bytes.subarray(0, bytes.length - 1))).toMatch(/truncated \(its fit has \d+ of its \d+ bytes\)/);
    expect(refusal(bytes.subarray(0, end + 2))).toMatch(/no fit length/);
    // A section shorter than its own counts say, however the file's length field agrees.
    const section = encodeFit(train().model.fitted);
    expect(refusal(withFit(section.subarray(0, 10)))).toMatch(/its fit is truncated \(in column \d's groups\)/);
    expect(refusal(withFit(section.subarray(0, section.length - 8)))).toMatch(/cliques have \d+ cells, the file holds only \d+ values/);
    const padded = new Uint8Array(section.length + 8);
    padded.set(section);
    expect(refusal(withFit(padded))).toMatch(/bytes beyond its fit/);
  });

  it("refuses a fit of another column count, bad columns, groups, parents, pairs and trees, by name", () => {
    const { model } = train();
    const k = schema.columns.length;
    const section = encodeFit(model.fitted);
    const edit = (at: number, value: number) => {
      const out = section.slice();
      new DataView(out.buffer).setUint32(at, value, true);
      return withFit(out);
    };
    expect(refusal(edit(0, k + 1))).toMatch(new RegExp(`its fit has ${k + 1} columns, the schema ${k}`));
    expect(refusal(edit(4, 10_000))).toMatch(/gives column 1 10000 groups, it has \d+ cells/);

    const damaged = (change: (m: JointModel) => void) => {
      const fit = cloneFit(model.fitted);
      change(fit);
      return refusal(withFit(encodeFit(fit)));
    };
    const { cliques } = model.fitted.fit.tree;
    expect(cliques.length).toBeGreaterThan(2);
    expect(damaged((m) => m.fit.tree.cliques[1].push(k + 3))).toMatch(new RegExp(`clique 2 names column ${k + 4}, the schema has ${k}`));
    const wide = cliques.findIndex((q) => q.length > 1);
    expect(damaged((m) => m.fit.tree.cliques[wide].reverse())).toMatch(new RegExp(`clique ${wide + 1} has columns [\\d,]+, not ascending`));
    expect(damaged((m) => (m.fit.tree.parent[1] = 1))).toMatch(/clique 2 has parent 2, a parent comes before it/);
    expect(damaged((m) => (m.fit.tree.parent[0] = 0))).toMatch(/clique 1 has parent 1, the root has none/);
    expect(damaged((m) => m.pairs.push([0, k]))).toMatch(new RegExp(`pair ${model.fitted.pairs.length + 1} names column ${k + 1}`));
    // A pair of columns no clique holds together.
    const apart = (() => {
      for (let a = 0; a < k; a++) for (let b = a + 1; b < k; b++) if (!cliques.some((q) => q.includes(a) && q.includes(b))) return [a, b] as [number, number];
      throw new Error("every pair of columns shares a clique");
    })();
    expect(damaged((m) => m.pairs.push(apart))).toMatch(/pair \d+ \(columns [\d,]+\) is in no clique/);
    // A clique that repeats an earlier clique's column its parent does not hold is no junction tree.
    const stray = (() => {
      for (let i = 2; i < cliques.length; i++) {
        const parent = cliques[model.fitted.fit.tree.parent[i]];
        for (let h = 0; h < i; h++) for (const v of cliques[h]) if (!parent.includes(v) && !cliques[i].includes(v)) return { i, v };
      }
      throw new Error("no clique to damage");
    })();
    expect(damaged((m) => {
      m.fit.tree.cliques[stray.i].push(stray.v);
      m.fit.tree.cliques[stray.i].sort((a, b) => a - b);
    })).toMatch(new RegExp(`clique ${stray.i + 1} shares a column with an earlier clique that is not its parent's`));
    expect(damaged((m) => (m.refine[0] = m.refine[0].map(() => 0)))).toMatch(/cliques have \d+ cells, the file holds \d+ values/);
  });

  it("refuses marginals that are not probabilities of one total", () => {
    const fit = train().model.fitted;
    const cells = (change: (m: Float64Array[]) => void) => {
      const copy = cloneFit(fit);
      change(copy.fit.marginals);
      return refusal(withFit(encodeFit(copy)));
    };
    expect(cells((m) => (m[m.length - 1][0] = NaN))).toMatch(new RegExp(`clique ${fit.fit.marginals.length} holds NaN at cell 1, not a probability`));
    expect(cells((m) => (m[0][1] = -1e-3))).toMatch(/clique 1 holds -0.001 at cell 2/);
    expect(cells((m) => (m[1][0] = Infinity))).toMatch(/clique 2 holds Infinity/);
    expect(cells((m) => (m[1][0] += 0.25))).toMatch(/clique 2 sums to 1.2\d*, clique 1 to (1|0\.9+\d*)/);
    expect(cells((m) => m.forEach((t) => t.forEach((_, c) => (t[c] *= 2))))).toMatch(/clique 1 sums to (2|1\.9+\d*)/);
  });

  it("damage anywhere in the fit section is read or refused with a clear error, never a crash", () => {
    const { bytes } = train();
    const start = sumsEnd(bytes) + 4;
    const rng = new SeededRng(11);
    let refused = 0;
    for (let trial = 0; trial < 150; trial++) {
      const damaged = bytes.slice();
      // Mostly the structure before the marginals (small), sometimes anywhere in the section.
      const span = trial % 3 === 0 ? bytes.length - start : Math.min(bytes.length - start, 400);
      const at = start + Math.floor(rng.next() * span);
      damaged[at] ^= 1 + Math.floor(rng.next() * 255);
      let model: MarginalModel;
      try {
        model = read(damaged);
      } catch (e) {
        expect(e).toBeInstanceOf(FedsynthError);
        expect((e as Error).message).toMatch(/^Cannot read the marginal engine's model: /);
        refused++;
        continue;
      }
      expect(rows(model, 20)).toHaveLength(20);
    }
    expect(refused).toBeGreaterThan(50);
  });
});
