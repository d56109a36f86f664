/** The ghost-norm clipping is exact: it matches one backward pass per example. */
import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { SeededRng } from "../../random/rng.js";
import { parseSchema } from "../../schema/parse-schema.js";
import { parseTable } from "../../schema/read-csv.js";
import { encodeTable, encodingFor } from "./encoding.js";
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
