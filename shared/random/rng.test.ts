/** SeededRng.fill gives the uniforms next() would, in the same order, however a run is split. */
import { describe, expect, it } from "vitest";
import { fillUniforms, SeededRng, type Rng } from "./rng.js";

describe("SeededRng.fill", () => {
  it("writes the numbers next() gives, and leaves the stream where next() would", () => {
    for (const seed of [0, 1, 7, 2 ** 31 - 1, 4_294_967_295]) {
      const one = new SeededRng(seed);
      const bulk = new SeededRng(seed);
      const want = Array.from({ length: 5000 }, () => one.next());
      const got = new Float64Array(5000);
      // Runs of uneven lengths (and an empty one), then next() again.
      let at = 0;
      for (const length of [1, 0, 3, 256, 1000, 2739]) {
        bulk.fill(got, at, at + length);
        at += length;
      }
      for (let i = at; i < 5000; i++) got[i] = bulk.next();
      expect(Array.from(got)).toEqual(want);
      expect(bulk.next()).toBe(one.next());
    }
  });

  it("fillUniforms calls next() for a source without fill", () => {
    const base = new SeededRng(3);
    let calls = 0;
    const plain: Rng = { next: () => (calls++, base.next()) };
    const out = new Float64Array(10);
    fillUniforms(plain, out, 2, 9);
    expect(calls).toBe(7);
    const ref = new SeededRng(3);
    expect(Array.from(out.subarray(2, 9))).toEqual(Array.from({ length: 7 }, () => ref.next()));
    expect([out[0], out[1], out[9]]).toEqual([0, 0, 0]);
  });
});
