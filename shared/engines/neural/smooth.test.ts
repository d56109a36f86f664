/** Post-processing of released marginals: smoothing a numeric column's noisy bin counts, and centring the inputs on them. */
import { describe, expect, it } from "vitest";
import { SeededRng, gaussian } from "../../random/rng.js";
import { smoothCounts } from "./smooth.js";
import { centerInputs, encodingFor, inputEncodingFor } from "./encoding.js";
import { parseSchema } from "../../schema/parse-schema.js";

const squaredError = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, v, i) => s + (v - b[i]) ** 2, 0);

describe("smoothCounts", () => {
  // A smooth density over 16 bins, 600 rows, noise of sd 20 per bin (heart at ε = 1).
  const truth = Array.from({ length: 16 }, (_, b) => 600 * Math.exp(-(((b - 7) / 3) ** 2) / 2) / (3 * Math.sqrt(2 * Math.PI)));

  it("brings noisy counts of a smooth density closer to it", () => {
    const rng = new SeededRng(11);
    let raw = 0;
    let smoothed = 0;
    for (let trial = 0; trial < 20; trial++) {
      const noisy = truth.map((v) => v + 20 * gaussian(rng));
      raw += squaredError(noisy, truth);
      smoothed += squaredError(smoothCounts(noisy, 400), truth);
    }
    expect(smoothed).toBeLessThan(raw / 2);
  });

  it("leaves nearly exact counts nearly as they are, sharp bins included", () => {
    const spiky = truth.map((v, b) => (b === 3 ? v + 200 : v));
    const out = smoothCounts(spiky, 1e-4);
    for (let b = 0; b < spiky.length; b++) expect(out[b]).toBeCloseTo(spiky[b], 1);
  });

  it("returns the counts unchanged when it cannot smooth", () => {
    expect(Array.from(smoothCounts([5, 1, 9], 100))).toEqual([5, 1, 9]);
    expect(Array.from(smoothCounts([5, 1, 9, 4, 2], 0))).toEqual([5, 1, 9, 4, 2]);
  });
});

describe("centerInputs", () => {
  it("gives every input feature mean 0 under the given cell probabilities, differences between cells kept", () => {
    const schema = parseSchema(JSON.stringify({
      columns: [
        { name: "age", type: "numeric", min: 0, max: 100, integer: true, bins: 5 },
        { name: "sex", type: "categorical", values: ["f", "m"] },
      ],
    }), "t");
    const enc = encodingFor(schema);
    for (const kind of ["onehot", "scalar"] as const) {
      const input = inputEncodingFor(enc, kind);
      const p = enc.blocks.map((b) => Float64Array.from({ length: b.size }, (_, c) => (c + 1) / ((b.size * (b.size + 1)) / 2)));
      const centred = centerInputs(input, p);
      expect(centred.centered).toBe(true);
      centred.features.forEach((f, j) => {
        const k = input.blocks[j].size;
        for (let d = 0; d < k; d++) {
          let mean = 0;
          for (let c = 0; c < enc.blocks[j].size; c++) mean += p[j][c] * f[c * k + d];
          expect(mean).toBeCloseTo(0, 6);
          for (let c = 1; c < enc.blocks[j].size; c++) {
            expect(f[c * k + d] - f[d]).toBeCloseTo(input.features[j][c * k + d] - input.features[j][d], 6);
          }
        }
      });
    }
  });
});
