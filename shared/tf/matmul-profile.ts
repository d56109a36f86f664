/**
 * How fast the active TensorFlow.js backend multiplies matrices, plain and with a transpose flag.
 *
 * Backends differ a lot here: on tfjs-backend-wasm, `tf.matMul(a, b, transposeA, transposeB)` with a flag
 * set has been measured many times slower than a plain matMul of the same size, so an engine should
 * know before it relies on one (e.g. keep weights stored pre-transposed). Each case is warmed up, then
 * timed as the best of N samples; every sample forces completion with dataSync.
 */
import * as tf from "@tensorflow/tfjs-core";
import { initTensorflow } from "./backend.js";

/** [m×k]·[k×n]. */
export interface MatMulShape {
  m: number;
  k: number;
  n: number;
}

export type MatMulVariant = "plain" | "transposeA" | "transposeB";
export const MATMUL_VARIANTS: readonly MatMulVariant[] = ["plain", "transposeA", "transposeB"];

export interface MatMulTiming {
  shape: MatMulShape;
  variant: MatMulVariant;
  /** 2·m·k·n floating-point operations per matMul, divided by the best time. */
  gflops: number;
  /** The best time of one matMul, in milliseconds. */
  bestMs: number;
  /** matMuls per sample and samples taken. */
  perSample: number;
  samples: number;
  /** Largest difference from the plain product of the same inputs (0 for plain). */
  maxAbsDiff: number;
}

export interface MatMulProfile {
  /** tf.getBackend() while profiling. */
  backend: string;
  timings: MatMulTiming[];
  /** Wall time the profile took, in milliseconds. */
  elapsedMs: number;
}

export interface ProfileOptions {
  variants?: readonly MatMulVariant[];
  /** Timed samples per case (best one counts); default 5. */
  samples?: number;
  /** Each sample repeats the matMul until it lasts about this long; default 20 ms. */
  sampleMs?: number;
  /** Untimed runs first; default 2. */
  warmup?: number;
}

/** "[256×128]·[128×128]". */
export function formatShape(s: MatMulShape): string {
  return `[${s.m}×${s.k}]·[${s.k}×${s.n}]`;
}

/** Parses "256x128x128" (m×k×n; "x" or "×"). */
export function parseShape(text: string): MatMulShape {
  const parts = text.split(/[x×]/i).map((p) => Number(p.trim()));
  if (parts.length !== 3 || parts.some((p) => !Number.isInteger(p) || p <= 0)) throw new Error(`a matMul shape is m×k×n, e.g. 256x128x128; got ${JSON.stringify(text)}`);
  return { m: parts[0], k: parts[1], n: parts[2] };
}

export async function profileMatMul(shapes: readonly MatMulShape[], opts: ProfileOptions = {}): Promise<MatMulProfile> {
  await initTensorflow();
  const variants = opts.variants ?? MATMUL_VARIANTS;
  const samples = Math.max(1, opts.samples ?? 5);
  const sampleMs = opts.sampleMs ?? 20;
  const warmup = Math.max(0, opts.warmup ?? 2);
  const started = performance.now();
  const timings: MatMulTiming[] = [];

  for (const shape of shapes) {
    const { m, k, n } = shape;
    const a = tf.randomUniform([m, k], -1, 1, "float32", 1);
    const b = tf.randomUniform([k, n], -1, 1, "float32", 2);
    // The same numbers stored transposed, so every variant computes the same product.
    const aT = tf.transpose(a);
    const bT = tf.transpose(b);
    const run: Record<MatMulVariant, () => tf.Tensor2D> = {
      plain: () => tf.matMul(a, b),
      transposeA: () => tf.matMul(aT, b, true, false),
      transposeB: () => tf.matMul(a, bT, false, true),
    };
    const reference = run.plain();
    const expected = reference.dataSync();
    try {
      for (const variant of variants) {
        const mul = run[variant];
        const check = mul();
        const got = check.dataSync();
        let maxAbsDiff = 0;
        for (let i = 0; i < got.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(got[i] - expected[i]));
        check.dispose();

        for (let i = 0; i < warmup; i++) mul().dispose();
        const perSample = calibrate(mul, sampleMs);
        let bestMs = Infinity;
        for (let s = 0; s < samples; s++) bestMs = Math.min(bestMs, timeSample(mul, perSample) / perSample);
        timings.push({ shape, variant, gflops: (2 * m * k * n) / (bestMs * 1e6), bestMs, perSample, samples, maxAbsDiff });
      }
    } finally {
      tf.dispose([a, b, aT, bT, reference]);
    }
  }
  return { backend: tf.getBackend(), timings, elapsedMs: performance.now() - started };
}

/** How many matMuls make a sample of about `sampleMs`. */
function calibrate(mul: () => tf.Tensor, sampleMs: number): number {
  const once = timeSample(mul, 1);
  return Math.max(1, Math.min(10_000, Math.round(sampleMs / Math.max(once, 1e-3))));
}

/** Milliseconds for `count` matMuls, each read back so that asynchronous backends finish too. */
function timeSample(mul: () => tf.Tensor, count: number): number {
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const r = mul();
    r.dataSync();
    r.dispose();
  }
  return performance.now() - t0;
}

/** Plain GFLOP/s over this variant's, per shape: how many times slower the transposed form is. */
export function slowdowns(profile: MatMulProfile): { shape: MatMulShape; variant: MatMulVariant; slowdown: number }[] {
  const out: { shape: MatMulShape; variant: MatMulVariant; slowdown: number }[] = [];
  for (const t of profile.timings) {
    if (t.variant === "plain") continue;
    const plain = profile.timings.find((p) => p.variant === "plain" && p.shape === t.shape);
    if (plain) out.push({ shape: t.shape, variant: t.variant, slowdown: plain.gflops / t.gflops });
  }
  return out;
}
