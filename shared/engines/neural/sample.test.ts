/** The optimized sampler draws the same rows as the straightforward one (full network at every column). */
import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import type { OutputRow } from "../../schema/schema.js";
import { SeededRng, type Rng } from "../../random/rng.js";
import { parseSchema } from "../../schema/parse-schema.js";
import { initTensorflow } from "../../tf/backend.js";
import { formatDecimal } from "../independent/sampler.js";
import { decodeCell, encodingFor, inputEncodingFor, type Encoding, type InputEncoding, type InputKind } from "./encoding.js";
import { flattenParams, initParams, madeMasks, type MadeMasks, type MadeShape } from "./made.js";
import { forward } from "./dp-sgd.js";
import { constantTensors, disposeTensors, weightTensors } from "./train.js";
import { cellDecoder, fastDecimal, sampleRows, SAMPLE_CHUNK } from "./sample.js";

const schema = parseSchema(JSON.stringify({
  columns: [
    { name: "age", type: "numeric", min: 18, max: 100, integer: true },
    { name: "sex", type: "categorical", values: ["f", "m"] },
    { name: "chol", type: "numeric", min: 100, max: 600, integer: true },
    { name: "oldpeak", type: "numeric", min: -3, max: 7, step: 0.1 },
    { name: "bmi", type: "numeric", min: 12.5, max: 60 },
    { name: "temp", type: "numeric", min: -40, max: 45.25, bins: 7 },
    { name: "cp", type: "categorical", values: ["1", "2", "3", "4"] },
  ],
}), "t");

/** The straightforward sampler: the whole network on the whole one-hot x at every column. */
function* referenceRows(shape: MadeShape, masks: MadeMasks, encoding: Encoding, params: Float32Array, n: number, rng: Rng): Generator<OutputRow> {
  const { blocks, width } = encoding;
  const { hidden } = shape;
  const p = flattenParts(shape, params);
  const t = tf.tidy(() => ({
    w1m: tf.keep(tf.mul(tf.tensor2d(p.w1, [width, hidden]), tf.tensor2d(masks.m1, [width, hidden]))),
    w2m: tf.keep(tf.mul(tf.tensor2d(p.w2, [hidden, hidden]), tf.tensor2d(masks.m2, [hidden, hidden]))),
    w3m: tf.keep(tf.mul(tf.tensor2d(p.w3, [hidden, width]), tf.tensor2d(masks.m3, [hidden, width]))),
    b1: tf.keep(tf.tensor1d(p.b1)), b2: tf.keep(tf.tensor1d(p.b2)), b3: tf.keep(tf.tensor1d(p.b3)),
  }));
  try {
    for (let done = 0; done < n; done += SAMPLE_CHUNK) {
      const m = Math.min(SAMPLE_CHUNK, n - done);
      const x = new Float32Array(m * width);
      const cells = blocks.map(() => new Int32Array(m));
      for (let j = 0; j < blocks.length; j++) {
        const block = blocks[j];
        const probs = tf.tidy(() => {
          const h1 = tf.relu(tf.add(tf.matMul(tf.tensor2d(x, [m, width]), t.w1m), t.b1));
          const h2 = tf.relu(tf.add(tf.matMul(h1, t.w2m), t.b2));
          const logits = tf.add(tf.matMul(h2, t.w3m), t.b3);
          return tf.softmax(tf.slice(logits, [0, block.offset], [m, block.size]));
        });
        const pr = probs.dataSync();
        probs.dispose();
        for (let i = 0; i < m; i++) {
          let u = rng.next();
          let c = 0;
          while (c < block.size - 1 && u >= pr[i * block.size + c]) u -= pr[i * block.size + c++];
          cells[j][i] = c;
          x[i * width + block.offset + c] = 1;
        }
      }
      for (let i = 0; i < m; i++) yield blocks.map((b, j) => decodeCell(b, cells[j][i], rng));
    }
  } finally {
    tf.dispose(Object.values(t));
  }
}

/** The straightforward sampler for any network (direct connections, input features): the full forward pass at every column. */
function* referenceRowsAny(shape: MadeShape, masks: MadeMasks, encoding: Encoding, input: InputEncoding, params: Float32Array, n: number, rng: Rng): Generator<OutputRow> {
  const { blocks } = encoding;
  const net = { ...constantTensors(shape, masks, blocks.length), ...weightTensors(shape, params, masks) };
  try {
    const x = new Float32Array(n * input.width);
    const cells = blocks.map(() => new Int32Array(n));
    for (let j = 0; j < blocks.length; j++) {
      const block = blocks[j];
      const probs = tf.tidy(() => tf.softmax(tf.slice(forward(net, tf.tensor2d(x, [n, input.width])).logits, [0, block.offset], [n, block.size])));
      const pr = probs.dataSync();
      probs.dispose();
      const { offset, size } = input.blocks[j];
      for (let i = 0; i < n; i++) {
        let u = rng.next();
        let c = 0;
        while (c < block.size - 1 && u >= pr[i * block.size + c]) u -= pr[i * block.size + c++];
        cells[j][i] = c;
        for (let f = 0; f < size; f++) x[i * input.width + offset + f] = input.features[j][c * size + f];
      }
    }
    for (let i = 0; i < n; i++) yield blocks.map((b, j) => decodeCell(b, cells[j][i], rng));
  } finally {
    disposeTensors(net);
  }
}

function flattenParts(shape: MadeShape, flat: Float32Array) {
  const { width: w, hidden: h } = shape;
  let at = 0;
  const take = (n: number) => flat.subarray(at, (at += n));
  return { w1: take(w * h), b1: take(h), w2: take(h * h), b2: take(h), w3: take(h * w), b3: take(w) };
}

/** The same network with its hidden units permuted (masks and weights alike): degrees no longer sorted. */
function permuted(shape: MadeShape, masks: MadeMasks, flat: Float32Array, rng: Rng): { masks: MadeMasks; params: Float32Array } {
  const { width: w, hidden: h } = shape;
  const perm = Array.from({ length: h }, (_, i) => i);
  for (let i = h - 1; i > 0; i--) {
    const k = Math.floor(rng.next() * (i + 1));
    [perm[i], perm[k]] = [perm[k], perm[i]];
  }
  const p = flattenParts(shape, flat);
  const cols = (a: ArrayLike<number>, rows: number) => Float32Array.from({ length: rows * h }, (_, i) => a[Math.floor(i / h) * h + perm[i % h]]);
  const rowsOf = (a: ArrayLike<number>, cols: number) => Float32Array.from({ length: h * cols }, (_, i) => a[perm[Math.floor(i / cols)] * cols + (i % cols)]);
  const both = (a: ArrayLike<number>) => Float32Array.from({ length: h * h }, (_, i) => a[perm[Math.floor(i / h)] * h + perm[i % h]]);
  const vec = (a: ArrayLike<number>) => Float32Array.from({ length: h }, (_, i) => a[perm[i]]);
  const out = new Float32Array(flat.length);
  out.set([...cols(p.w1, w), ...vec(p.b1), ...both(p.w2), ...vec(p.b2), ...rowsOf(p.w3, w), ...p.b3]);
  return {
    masks: { ...masks, m1: cols(masks.m1, w), m2: both(masks.m2), m3: rowsOf(masks.m3, w), hiddenDegree: Int32Array.from(vec(masks.hiddenDegree)) },
    params: out,
  };
}

function randomParams(shape: MadeShape, seed: number): Float32Array {
  // Larger weights and biases than the initialization, so the conditionals are far from uniform.
  const rng = new SeededRng(seed);
  return flattenParams(initParams(shape, rng)).map((v) => v * 3 + (rng.next() - 0.5));
}

function agreement(a: OutputRow[], b: OutputRow[]): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i].join("\u0001") === b[i].join("\u0001")) same++;
  return same / a.length;
}

function columnTvd(a: OutputRow[], b: OutputRow[], j: number): number {
  const count = (rows: OutputRow[]) => {
    const m = new Map<string, number>();
    for (const r of rows) m.set(r[j], (m.get(r[j]) ?? 0) + 1 / rows.length);
    return m;
  };
  const [pa, pb] = [count(a), count(b)];
  let tvd = 0;
  for (const k of new Set([...pa.keys(), ...pb.keys()])) tvd += Math.abs((pa.get(k) ?? 0) - (pb.get(k) ?? 0));
  return tvd / 2;
}

describe("neural sampling", () => {
  beforeAll(async () => {
    await initTensorflow();
  });

  const encoding = encodingFor(schema);

  for (const hidden of [16, 48]) {
    it(`draws the same rows as the straightforward sampler for the same seed (hidden ${hidden}, over two chunks)`, () => {
      const shape = { width: encoding.width, hidden };
      const masks = madeMasks(encoding, hidden);
      const params = randomParams(shape, hidden);
      const n = SAMPLE_CHUNK + 1500;
      const tensors = tf.memory().numTensors;
      const fast = [...sampleRows(shape, masks, encoding, params, n, new SeededRng(11))];
      expect(tf.memory().numTensors).toBe(tensors);
      const slow = [...referenceRows(shape, masks, encoding, params, n, new SeededRng(11))];
      expect(fast.length).toBe(n);
      // The same draws in the same order: a row can differ only where a uniform draw falls within float
      // rounding of a cumulative probability (and only in that row: every draw is its own number).
      expect(agreement(fast, slow)).toBeGreaterThan(0.995);
      for (let j = 0; j < schema.columns.length; j++) expect(columnTvd(fast, slow, j)).toBeLessThan(0.005);
    });
  }

  const variants: { hidden: number; input: InputKind; directOutput: InputKind }[] = [
    { hidden: 0, input: "scalar", directOutput: "scalar" },
    { hidden: 0, input: "onehot", directOutput: "onehot" },
    { hidden: 12, input: "scalar", directOutput: "onehot" },
  ];
  for (const v of variants) {
    it(`draws the same rows as the straightforward sampler with direct connections (hidden ${v.hidden}, ${v.input} inputs, ${v.directOutput} direct outputs)`, () => {
      const input = inputEncodingFor(encoding, v.input);
      const directOutput = inputEncodingFor(encoding, v.directOutput);
      const shape = { width: encoding.width, hidden: v.hidden, inputWidth: input.width, direct: true, directWidth: directOutput.width };
      const masks = madeMasks(encoding, v.hidden, { input, direct: true, ...(v.directOutput !== "onehot" ? { directOutput } : {}) });
      const params = randomParams(shape, 3);
      const n = 3000;
      const tensors = tf.memory().numTensors;
      const fast = [...sampleRows(shape, masks, encoding, params, n, new SeededRng(5), input)];
      expect(tf.memory().numTensors).toBe(tensors);
      const slow = [...referenceRowsAny(shape, masks, encoding, input, params, n, new SeededRng(5))];
      expect(agreement(fast, slow)).toBeGreaterThan(0.995);
    });
  }

  it("is exact for any mask: hidden units in any order give the same rows", () => {
    const hidden = 24;
    const shape = { width: encoding.width, hidden };
    const base = madeMasks(encoding, hidden);
    const { masks, params } = permuted(shape, base, randomParams(shape, 5), new SeededRng(9));
    const n = 3000;
    const fast = [...sampleRows(shape, masks, encoding, params, n, new SeededRng(3))];
    const slow = [...referenceRows(shape, masks, encoding, params, n, new SeededRng(3))];
    expect(agreement(fast, slow)).toBeGreaterThan(0.995);
  });

  it("stops cleanly when the consumer stops early (no tensor left behind)", () => {
    const shape = { width: encoding.width, hidden: 16 };
    const before = tf.memory().numTensors;
    let count = 0;
    for (const _row of sampleRows(shape, madeMasks(encoding, 16), encoding, randomParams(shape, 1), 50_000, new SeededRng(1))) if (++count === 10) break;
    expect(tf.memory().numTensors).toBe(before);
  });

  it("decodes cells exactly as decodeCell does, drawing the same random numbers", () => {
    for (const block of encoding.blocks) {
      const decode = cellDecoder(block);
      const [a, b] = [new SeededRng(2), new SeededRng(2)];
      for (let t = 0; t < 3000; t++) {
        const cell = t % block.size;
        expect(decode(cell, a)).toBe(decodeCell(block, cell, b));
      }
      expect(a.next()).toBe(b.next());
    }
  });

  it("decodes grid values with shares within their bin as decodeCell does", () => {
    const block = encoding.blocks.find((b) => b.column.name === "chol")!;
    const count = block.bins!.grid!.count;
    const rng = new SeededRng(8);
    const raw = Float64Array.from({ length: count }, () => rng.next() ** 3);
    const perBin = block.bins!.perBin;
    const shares = new Float64Array(count);
    for (let first = 0; first < count; first += perBin) {
      const last = Math.min(count, first + perBin);
      let total = 0;
      for (let k = first; k < last; k++) total += raw[k];
      for (let k = first; k < last; k++) shares[k] = raw[k] / total;
    }
    const withShares = { ...block, gridShares: shares };
    const decode = cellDecoder(withShares);
    const [a, b] = [new SeededRng(2), new SeededRng(2)];
    for (let t = 0; t < 3000; t++) expect(decode(t % block.size, a)).toBe(decodeCell(withShares, t % block.size, b));
  });

  it("formats decimals exactly as formatDecimal", () => {
    const rng = new SeededRng(4);
    const ranges: [number, number][] = [[0, 1], [-3, 7], [12.5, 60], [-1e6, 1e6], [-0.001, 0.001], [1e9, 1e12], [0.00005, 0.00015], [-40, 45.25], [5, 5]];
    for (const [min, max] of ranges) {
      for (let t = 0; t < 20_000; t++) {
        const v = min + rng.next() * (max - min);
        expect(fastDecimal(v, min, max)).toBe(formatDecimal(v, min, max));
      }
      for (const v of [min, max, 0, -0, (min + max) / 2]) if (v >= min && v <= max) expect(fastDecimal(v, min, max)).toBe(formatDecimal(v, min, max));
    }
  });
});
