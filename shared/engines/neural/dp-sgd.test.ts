/** The ghost-norm clipping is exact: it matches one backward pass per example. */
import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { SeededRng } from "../../random/rng.js";
import { parseSchema } from "../../schema/parse-schema.js";
import { parseTable } from "../../schema/read-csv.js";
import { encodeInputs, encodeTable, encodingFor, inputEncodingFor, type InputKind } from "./encoding.js";
import { flattenParams, initParams, madeMasks } from "./made.js";
import { gradientSum, perExampleNormsBruteForce, perExampleNormsGhost } from "./dp-sgd.js";
import { constantTensors, disposeTensors, trainLocal, weightTensors } from "./train.js";

const schema = parseSchema(JSON.stringify({
  columns: [
    { name: "age", type: "numeric", min: 0, max: 100, integer: true, bins: 5 },
    { name: "sex", type: "categorical", values: ["f", "m"] },
    { name: "smoker", type: "categorical", values: ["no", "yes"] },
  ],
}), "t");

function table(n: number, seed: number) {
  const rng = new SeededRng(seed);
  const lines = ["age,sex,smoker"];
  for (let i = 0; i < n; i++) {
    const male = rng.next() < 0.5;
    const smoker = rng.next() < (male ? 0.8 : 0.1);
    const age = Math.round(male ? 20 + rng.next() * 30 : 50 + rng.next() * 40);
    lines.push(`${rng.next() < 0.05 ? "" : age},${male ? "m" : "f"},${smoker ? "yes" : "no"}`);
  }
  return parseTable(lines.join("\n"), "t.csv", schema).table;
}

describe("DP-SGD for the MADE", () => {
  beforeAll(async () => {
    await tf.setBackend("cpu");
  });

  it("computes per-example gradient norms by the ghost formula exactly", () => {
    const enc = encodingFor(schema);
    const shape = { width: enc.width, hidden: 16 };
    const masks = madeMasks(enc, 16);
    const params = flattenParams(initParams(shape, new SeededRng(3)));
    const net = { ...constantTensors(shape, masks, enc.blocks.length), ...weightTensors(shape, params) };
    const x = tf.tensor2d(encodeTable(enc, table(12, 1)), [12, enc.width]);
    const ghost = perExampleNormsGhost(net, x);
    const brute = perExampleNormsBruteForce(net, x);
    for (let i = 0; i < 12; i++) expect(ghost[i]).toBeCloseTo(brute[i], 4);
    // Clipped sum: with a tiny clip norm every example contributes exactly clipNorm in norm.
    const { grads, clippedShare } = gradientSum(net, tf.slice(x, [0, 0], [1, enc.width]) as tf.Tensor2D, 1e-3);
    const norm = Math.sqrt(grads.reduce((s, g) => s + g.reduce((t, v) => t + v * v, 0), 0));
    expect(norm).toBeCloseTo(1e-3, 6);
    expect(clippedShare).toBe(1);
    x.dispose();
    disposeTensors(net);
  });

  // Direct connections (alone or with hidden layers), scalar inputs and projected direct outputs: the
  // ghost norm is still each example's true gradient norm, masked weights excluded.
  const architectures: { hidden: number; input: InputKind; directOutput?: InputKind }[] = [
    { hidden: 0, input: "onehot" },
    { hidden: 0, input: "scalar" },
    { hidden: 0, input: "scalar", directOutput: "scalar" },
    { hidden: 8, input: "scalar", directOutput: "scalar" },
    { hidden: 8, input: "onehot" },
  ];
  for (const a of architectures) {
    it(`ghost norms are exact with direct connections (hidden ${a.hidden}, ${a.input} inputs, ${a.directOutput ?? "onehot"} direct outputs)`, () => {
      const enc = encodingFor(schema);
      const input = inputEncodingFor(enc, a.input);
      const directOutput = inputEncodingFor(enc, a.directOutput ?? "onehot");
      const shape = { width: enc.width, hidden: a.hidden, inputWidth: input.width, direct: true, directWidth: directOutput.width };
      const masks = madeMasks(enc, a.hidden, { input, direct: true, ...(a.directOutput ? { directOutput } : {}) });
      // Random (not zero) direct weights, so that every part of the gradient is exercised.
      const params = flattenParams(initParams(shape, new SeededRng(3), 1)).map((v, i) => v + 0.01 * ((i * 7919) % 13));
      const net = { ...constantTensors(shape, masks, enc.blocks.length), ...weightTensors(shape, params) };
      const t = table(12, 1);
      const y = tf.tensor2d(encodeTable(enc, t), [12, enc.width]);
      const x = tf.tensor2d(encodeInputs(enc, input, t), [12, input.width]);
      const ghost = perExampleNormsGhost(net, y, x);
      const brute = perExampleNormsBruteForce(net, y, x);
      for (let i = 0; i < 12; i++) expect(ghost[i]).toBeCloseTo(brute[i], 4);
      // Masked direct weights get no gradient.
      const { grads } = gradientSum(net, y, null, x);
      grads[5].forEach((g, i) => {
        if (masks.m0[i] === 0) expect(Math.abs(g)).toBe(0);
      });
      // Clipped sum of one example: norm exactly the clip norm.
      const one = gradientSum(net, tf.slice(y, [0, 0], [1, enc.width]) as tf.Tensor2D, 1e-3, tf.slice(x, [0, 0], [1, input.width]) as tf.Tensor2D);
      expect(Math.sqrt(one.grads.reduce((s, g) => s + g.reduce((u, v) => u + v * v, 0), 0))).toBeCloseTo(1e-3, 6);
      tf.dispose([x, y]);
      disposeTensors(net);
    });
  }

  it("learns the data without noise (the loss falls well below the uniform model's)", () => {
    const enc = encodingFor(schema);
    const shape = { width: enc.width, hidden: 32 };
    const masks = madeMasks(enc, 32);
    const start = flattenParams(initParams(shape, new SeededRng(3)));
    const t = table(400, 2);
    const x = encodeTable(enc, t);
    const before = trainLocal(shape, masks, enc.blocks.length, start, x, t.rowCount, { samplingRate: 0.25, steps: 1, clipNorm: 100, noiseMultiplier: 0, learningRate: 0 }, 100, new SeededRng(4));
    const after = trainLocal(shape, masks, enc.blocks.length, start, x, t.rowCount, { samplingRate: 0.25, steps: 300, clipNorm: 100, noiseMultiplier: 0, learningRate: 0.01 }, 100, new SeededRng(5));
    const check = trainLocal(shape, masks, enc.blocks.length, after.params, x, t.rowCount, { samplingRate: 0.25, steps: 1, clipNorm: 100, noiseMultiplier: 0, learningRate: 0 }, 100, new SeededRng(6));
    expect(check.stats.meanLoss).toBeLessThan(before.stats.meanLoss * 0.8);
  });
});
