/** The ghost-norm clipping is exact: it matches one backward pass per example. */
import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { SeededRng } from "../../random/rng.js";
import { parseSchema } from "../../schema/parse-schema.js";
import { parseTable } from "../../schema/read-csv.js";
import { encodeInputs, encodeTable, encodingFor, inputEncodingFor, type InputKind } from "./encoding.js";
import { flattenParams, initParams, madeMasks } from "./made.js";
import { forward, gradientSum, perExampleNormsBruteForce, perExampleNormsGhost } from "./dp-sgd.js";
import { constantTensors, disposeTensors, trainLocal, weightTensors } from "./train.js";

const schema = parseSchema(JSON.stringify({
  columns: [
    { name: "age", type: "numeric", min: 0, max: 100, integer: true, bins: 5 },
    { name: "sex", type: "categorical", values: ["f", "m"] },
    { name: "smoker", type: "categorical", values: ["no", "yes"] },
  ],
}), "t");

/** A MADE with direct connections over the test schema: its encodings, shape and masks. */
function directArchitecture(a: { hidden: number; input: InputKind; directOutput?: InputKind }) {
  const enc = encodingFor(schema);
  const input = inputEncodingFor(enc, a.input);
  const directOutput = inputEncodingFor(enc, a.directOutput ?? "onehot");
  const shape = { width: enc.width, hidden: a.hidden, inputWidth: input.width, direct: true, directWidth: directOutput.width };
  const masks = madeMasks(enc, a.hidden, { input, direct: true, ...(a.directOutput ? { directOutput } : {}) });
  return { enc, input, shape, masks };
}

/** The network's tensors (constants and weights) for the test schema. */
function networkOf(shape: Parameters<typeof weightTensors>[0], masks: Parameters<typeof constantTensors>[1], params: Float32Array) {
  return { ...constantTensors(shape, masks, encodingFor(schema).blocks.length), ...weightTensors(shape, params, masks) };
}

/** Each row's own gradient, one backward pass per row: the reference the one-pass clipped sum must match. */
function exampleByExample(net: Parameters<typeof gradientSum>[0], y: tf.Tensor2D, x: tf.Tensor2D) {
  const [n, width] = y.shape;
  const inputWidth = x.shape[1];
  return Array.from({ length: n }, (_, i) => {
    const yi = tf.slice(y, [i, 0], [1, width]) as tf.Tensor2D;
    const xi = tf.slice(x, [i, 0], [1, inputWidth]) as tf.Tensor2D;
    const r = gradientSum(net, yi, null, xi, { loss: true });
    tf.dispose([yi, xi]);
    return r;
  });
}

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
    const net = networkOf(shape, masks, params);
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
      const { enc, input, shape, masks } = directArchitecture(a);
      // Random (not zero) direct weights, so that every part of the gradient is exercised.
      const params = flattenParams(initParams(shape, new SeededRng(3), 1)).map((v, i) => v + 0.01 * ((i * 7919) % 13));
      const net = networkOf(shape, masks, params);
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

  // The clipped sum itself, its loss and its clipped share, against one backward pass per example: every
  // part (weights, biases, direct connections) is each example's gradient scaled to norm ≤ clipNorm.
  for (const a of [{ hidden: 0, input: "scalar" as InputKind, directOutput: "scalar" as InputKind }, { hidden: 8, input: "scalar" as InputKind, directOutput: "scalar" as InputKind }, { hidden: 8, input: "onehot" as InputKind }]) {
    it(`the clipped gradient sum, loss and clipped share match per-example gradients (hidden ${a.hidden}, ${a.input} inputs, ${a.directOutput ?? "onehot"} direct outputs)`, () => {
      const { enc, input, shape, masks } = directArchitecture(a);
      const params = flattenParams(initParams(shape, new SeededRng(3), 1)).map((v, i) => v + 0.01 * ((i * 7919) % 13));
      const net = networkOf(shape, masks, params);
      const n = 12;
      const t = table(n, 4);
      const y = tf.tensor2d(encodeTable(enc, t), [n, enc.width]);
      const x = tf.tensor2d(encodeInputs(enc, input, t), [n, input.width]);
      const perExample = exampleByExample(net, y, x);
      const norms = perExample.map((r) => Math.sqrt(r.grads.reduce((s, g) => s + g.reduce((u, v) => u + v * v, 0), 0)));
      // Midway between two distinct middle norms (rows may repeat), so that some but not all are clipped.
      const distinct = [...new Set(norms.map((v) => v.toPrecision(6)))].map(Number).sort((u, v) => u - v);
      const clipNorm = (distinct[Math.floor(distinct.length / 2) - 1] + distinct[Math.floor(distinct.length / 2)]) / 2;
      const share = norms.filter((v) => v > clipNorm).length / n;
      expect(share).toBeGreaterThan(0);
      expect(share).toBeLessThan(1);
      const sum = gradientSum(net, y, clipNorm, x, { loss: true });
      expect(sum.clippedShare).toBe(share);
      // The loss: the mean over rows of −Σ y·log(p + 1e-12), each row's from its own pass.
      expect(sum.loss).toBeCloseTo(perExample.reduce((s, r) => s + r.loss, 0) / n, 4);
      sum.grads.forEach((g, part) => {
        expect(g.length).toBe(perExample[0].grads[part].length);
        g.forEach((v, k) => {
          const expected = perExample.reduce((s, r, i) => s + r.grads[part][k] * Math.min(1, clipNorm / norms[i]), 0);
          expect(v).toBeCloseTo(expected, 4);
        });
      });
      // Without clipping: the plain sum.
      const plain = gradientSum(net, y, null, x);
      plain.grads.forEach((g, part) => g.forEach((v, k) => expect(v).toBeCloseTo(perExample.reduce((s, r) => s + r.grads[part][k], 0), 4)));
      tf.dispose([x, y]);
      disposeTensors(net);
    });
  }

  it("leaves the output biases out of the gradient and of the clipped norm when asked", () => {
    const { enc, input, shape, masks } = directArchitecture({ hidden: 0, input: "scalar", directOutput: "scalar" });
    const params = flattenParams(initParams(shape, new SeededRng(3), 1));
    const net = networkOf(shape, masks, params);
    const n = 12;
    const t = table(n, 7);
    const y = tf.tensor2d(encodeTable(enc, t), [n, enc.width]);
    const x = tf.tensor2d(encodeInputs(enc, input, t), [n, input.width]);
    const w0 = (r: { grads: Float32Array[] }) => r.grads[5];
    const perExample = exampleByExample(net, y, x);
    // Each example's norm over the direct weights alone, which is what the clip must now bound.
    const norms = perExample.map((r) => Math.sqrt(w0(r).reduce((s, v) => s + v * v, 0)));
    const ghost = perExampleNormsGhost(net, y, x, false);
    norms.forEach((v, i) => expect(ghost[i]).toBeCloseTo(v, 4));
    const clipNorm = [...norms].sort((a, b) => a - b)[Math.floor(n / 2)];
    const sum = gradientSum(net, y, clipNorm, x, { outputBias: false });
    expect(Array.from(sum.grads[6]).every((v) => v === 0)).toBe(true);
    w0(sum).forEach((v, k) => expect(v).toBeCloseTo(perExample.reduce((s, r, i) => s + w0(r)[k] * Math.min(1, clipNorm / norms[i]), 0), 4));
    tf.dispose([x, y]);
    disposeTensors(net);
  });

  it("computes the loss as the mean of −Σ y·log(p + 1e-12) under the per-column softmax", () => {
    const enc = encodingFor(schema);
    const shape = { width: enc.width, hidden: 8 };
    const masks = madeMasks(enc, 8);
    const net = networkOf(shape, masks, flattenParams(initParams(shape, new SeededRng(5))));
    const n = 20;
    const y = tf.tensor2d(encodeTable(enc, table(n, 6)), [n, enc.width]);
    const logits = forward(net, y).logits;
    const z = logits.arraySync();
    const rows = y.arraySync();
    let expected = 0;
    for (let i = 0; i < n; i++) {
      for (const b of enc.blocks) {
        const cells = z[i].slice(b.offset, b.offset + b.size);
        const max = Math.max(...cells);
        const total = cells.reduce((s, v) => s + Math.exp(v - max), 0);
        cells.forEach((v, c) => { expected -= rows[i][b.offset + c] * Math.log(Math.exp(v - max) / total + 1e-12); });
      }
    }
    expect(gradientSum(net, y, 1, y, { loss: true }).loss).toBeCloseTo(expected / n, 5);
    expect(gradientSum(net, y, 1).loss).toBeNaN();
    tf.dispose([logits, y]);
    disposeTensors(net);
  });

  it("is unchanged by shifting one column's output biases far below the others (softmax underflow)", () => {
    const enc = encodingFor(schema);
    const shape = { width: enc.width, hidden: 8 };
    const masks = madeMasks(enc, 8);
    const params = flattenParams(initParams(shape, new SeededRng(5)));
    const y = tf.tensor2d(encodeTable(enc, table(10, 7)), [10, enc.width]);
    const base = networkOf(shape, masks, params);
    const reference = gradientSum(base, y, 1, y, { loss: true });
    // A per-column shift leaves that column's softmax unchanged; 95 is past where a fused softmax flushes to 0.
    const shifted = Float32Array.from(params);
    const b3At = params.length - enc.width;
    for (let o = enc.blocks[0].offset; o < enc.blocks[0].offset + enc.blocks[0].size; o++) shifted[b3At + o] -= 95;
    const net = networkOf(shape, masks, shifted);
    const moved = gradientSum(net, y, 1, y, { loss: true });
    expect(moved.loss).toBeCloseTo(reference.loss, 4);
    moved.grads.forEach((g, part) => g.forEach((v, k) => expect(v).toBeCloseTo(reference.grads[part][k], 4)));
    y.dispose();
    disposeTensors(base);
    disposeTensors(net);
  });

  it("learns the data without noise (the loss falls well below the uniform model's)", () => {
    const enc = encodingFor(schema);
    const shape = { width: enc.width, hidden: 32 };
    const masks = madeMasks(enc, 32);
    const start = flattenParams(initParams(shape, new SeededRng(3)));
    const t = table(400, 2);
    const x = encodeTable(enc, t);
    const after = trainLocal(shape, masks, enc.blocks.length, start, x, t.rowCount, { samplingRate: 0.25, steps: 300, clipNorm: 100, noiseMultiplier: 0, learningRate: 0.01 }, 100, new SeededRng(5));
    const y = tf.tensor2d(x, [t.rowCount, enc.width]);
    const lossAt = (params: Float32Array) => {
      const net = networkOf(shape, masks, params);
      const { loss } = gradientSum(net, y, null, y, { loss: true });
      disposeTensors(net);
      return loss;
    };
    expect(lossAt(after.params)).toBeLessThan(lossAt(start) * 0.8);
    y.dispose();
  });
});
