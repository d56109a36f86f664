import { afterEach, describe, expect, it } from "vitest";
import { createRequire } from "node:module";
import * as tf from "@tensorflow/tfjs-core";
import { FedsynthError } from "../errors.js";
import { createLogger } from "../telemetry/log.js";
import { BACKEND_ENV, activeBackend, forcedBackend, initTensorflow, oneLine, resetTensorflowForTests } from "./backend.js";
import { formatShape, parseShape, profileMatMul, slowdowns } from "./matmul-profile.js";

const tfjsNodeInstalled = (() => {
  try {
    createRequire(import.meta.url).resolve("@tensorflow/tfjs-node");
    return true;
  } catch {
    return false;
  }
})();

const lines: string[] = [];
const log = createLogger("tf-test", { level: "debug", write: (l) => lines.push(l) });
const savedEnv = process.env[BACKEND_ENV];

afterEach(() => {
  if (savedEnv === undefined) delete process.env[BACKEND_ENV];
  else process.env[BACKEND_ENV] = savedEnv;
  lines.length = 0;
});

/** Starts afresh with FEDSYNTH_TF_BACKEND set as given (undefined: unset). */
function fresh(forced: string | undefined): void {
  resetTensorflowForTests();
  if (forced === undefined) delete process.env[BACKEND_ENV];
  else process.env[BACKEND_ENV] = forced;
}

describe("initTensorflow", () => {
  it("picks a working backend (wasm here, with tfjs-node absent), says why not node, and logs the choice once", async () => {
    fresh(undefined);
    const info = await initTensorflow({ log });
    expect(["node", "wasm", "cpu"]).toContain(info.backend);
    expect(tf.getBackend()).toBe(info.tfBackend);
    expect(info.coreVersion).toBe(tf.version_core);
    expect(info.threads).toBeGreaterThanOrEqual(1);
    if (!tfjsNodeInstalled) {
      expect(info.backend).toBe("wasm");
      expect(info.package).toBe("@tensorflow/tfjs-backend-wasm");
      expect(info.version).toBe("4.22.0");
      expect(typeof info.simd).toBe("boolean");
      expect(info.fallbacks).toHaveLength(1);
      expect(info.fallbacks[0].backend).toBe("node");
      expect(info.fallbacks[0].error).toMatch(/@tensorflow\/tfjs-node is not installed/);
    }
    expect(lines.filter((l) => l.includes("TensorFlow.js backend chosen"))).toHaveLength(1);
    expect(activeBackend()).toBe(info);
  });

  it("is idempotent: later and concurrent calls get the same answer and do not log again", async () => {
    const first = await initTensorflow({ log });
    const [a, b] = await Promise.all([initTensorflow({ prefer: "cpu", log }), initTensorflow({ log })]);
    expect(a).toBe(first);
    expect(b).toBe(first);
    expect(lines.filter((l) => l.includes("TensorFlow.js backend chosen"))).toHaveLength(0);
  });

  it("computes a tiny matMul right, plain and with either transpose flag", async () => {
    await initTensorflow({ log });
    const a = tf.tensor2d([[1, 2], [3, 4]]);
    const b = tf.tensor2d([[5, 6], [7, 8]]);
    expect(Array.from(tf.matMul(a, b).dataSync())).toEqual([19, 22, 43, 50]);
    expect(Array.from(tf.matMul(a, b, true, false).dataSync())).toEqual([26, 30, 38, 44]);
    expect(Array.from(tf.matMul(a, b, false, true).dataSync())).toEqual([17, 23, 39, 53]);
    const x = tf.tensor2d([[1, 0, -1], [2, 1, 0.5]]); // [2×3]·[3×1]
    const w = tf.tensor2d([[0.5], [-2], [4]]);
    const y = Array.from(tf.matMul(x, w).dataSync());
    expect(y[0]).toBeCloseTo(-3.5, 6);
    expect(y[1]).toBeCloseTo(1, 6);
    tf.dispose([a, b, x, w]);
  });

  it("tries the preferred backend first and falls back in order", async () => {
    fresh(undefined);
    const info = await initTensorflow({ prefer: "cpu", log });
    expect(info.backend).toBe("cpu");
    expect(info.fallbacks).toEqual([]);
    expect(info.forced).toBeUndefined();
  });

  it("FEDSYNTH_TF_BACKEND=cpu forces the cpu backend", async () => {
    fresh("cpu");
    const info = await initTensorflow({ log });
    expect(info).toMatchObject({ backend: "cpu", tfBackend: "cpu", package: "@tensorflow/tfjs-backend-cpu", threads: 1, forced: true, fallbacks: [] });
    expect(tf.getBackend()).toBe("cpu");
    expect(Array.from(tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]])).dataSync())).toEqual([11]);
  });

  it("FEDSYNTH_TF_BACKEND=wasm forces wasm, with its .wasm files found from the package", async () => {
    fresh("wasm");
    const info = await initTensorflow({ log, threads: 2 });
    expect(info).toMatchObject({ backend: "wasm", tfBackend: "wasm", forced: true, fallbacks: [] });
    // tfjs-backend-wasm has no threads in Node (its multi-threaded build needs Blob-URL workers).
    expect(info.threads).toBe(1);
  });

  it.skipIf(tfjsNodeInstalled)("FEDSYNTH_TF_BACKEND=node without tfjs-node fails clearly, naming the package; the failure is not remembered", async () => {
    fresh("node");
    const err = await initTensorflow({ log }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FedsynthError);
    const e = err as FedsynthError;
    expect(e.code).toBe("failed-precondition");
    expect(e.message).toContain("@tensorflow/tfjs-node");
    expect(e.message).toContain("not installed");
    expect(e.hint).toMatch(/FEDSYNTH_TF_BACKEND=wasm/);
    expect(activeBackend()).toBeUndefined();

    delete process.env[BACKEND_ENV];
    const info = await initTensorflow({ log });
    expect(info.backend).toBe("wasm");
  });

  it("rejects an unknown FEDSYNTH_TF_BACKEND value", async () => {
    fresh("gpu");
    await expect(initTensorflow({ log })).rejects.toMatchObject({ code: "invalid-argument", message: expect.stringContaining("gpu") });
    expect(forcedBackend({ [BACKEND_ENV]: " WASM " })).toBe("wasm");
    expect(forcedBackend({ [BACKEND_ENV]: "auto" })).toBeUndefined();
    expect(forcedBackend({})).toBeUndefined();
  });

  it("oneLine keeps the first non-empty line of an error", () => {
    expect(oneLine(new Error("\n  first   line\nsecond"))).toBe("first line");
    expect(oneLine({ message: "plain object" })).toBe("plain object");
    expect(oneLine("x".repeat(500))).toHaveLength(240);
  });
});

describe("profileMatMul", () => {
  it("times plain and transposed matMuls on the active backend, and they agree", async () => {
    fresh(undefined);
    await initTensorflow({ log });
    const shape = parseShape("64x32x48");
    const profile = await profileMatMul([shape], { samples: 2, sampleMs: 2, warmup: 1 });
    expect(profile.backend).toBe(tf.getBackend());
    expect(profile.timings.map((t) => t.variant)).toEqual(["plain", "transposeA", "transposeB"]);
    for (const t of profile.timings) {
      expect(t.shape).toEqual({ m: 64, k: 32, n: 48 });
      expect(t.gflops).toBeGreaterThan(0);
      expect(Number.isFinite(t.gflops)).toBe(true);
      expect(t.bestMs).toBeGreaterThan(0);
      expect(t.maxAbsDiff).toBeLessThan(1e-4);
    }
    expect(slowdowns(profile)).toHaveLength(2);
    expect(formatShape(shape)).toBe("[64×32]·[32×48]");
    expect(() => parseShape("64x32")).toThrow(/m×k×n/);
  });

  it("leaves no tensors behind", async () => {
    await initTensorflow({ log });
    const before = tf.memory().numTensors;
    await profileMatMul([{ m: 8, k: 8, n: 8 }], { samples: 1, sampleMs: 1, warmup: 0, variants: ["plain", "transposeB"] });
    expect(tf.memory().numTensors).toBe(before);
  });
});
