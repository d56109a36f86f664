/** Centring the network's inputs on the released marginals (post-processing). */
import { describe, expect, it } from "vitest";
import { centerInputs, encodingFor, inputEncodingFor } from "./encoding.js";
import { parseSchema } from "../../schema/parse-schema.js";

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
