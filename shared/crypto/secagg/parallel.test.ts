import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { addInto, applyMasks, type MaskTerm } from "../prg.js";
import { createHash } from "node:crypto";
import { hashedLeaves, hashLeaves, helperCount, PARALLEL_MIN_WORDS, ParallelSum } from "./parallel.js";

// These run on machines with two or more cores (where the helper thread is used); with one, `open`
// declines and the server does everything on its own thread, which the other suites cover.
const lane = (length: number) => ParallelSum.open(length);
const multicore = lane(PARALLEL_MIN_WORDS) !== undefined;
/** A vector's bytes: comparing those is fast where toEqual walks millions of words one by one. */
const bytes = (v: Uint32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);

describe.runIf(multicore)("the helper thread", () => {
  it("declines short vectors", () => {
    expect(ParallelSum.open(PARALLEL_MIN_WORDS - 1)).toBeUndefined();
  });

  it("adds inputs into the shared running sum: shared ones as they are, others copied, none moved", () => {
    const length = PARALLEL_MIN_WORDS + 5;
    const p = lane(length)!;
    const inputs = Array.from({ length: 12 }, () => new Uint32Array(randomBytes(length * 4).buffer));
    const expected = new Uint32Array(length);
    for (const x of inputs) addInto(expected, x);
    const handed: Uint32Array[] = [];
    inputs.forEach((x, i) => {
      let v: Uint32Array;
      if (i % 3 === 0) {
        // In shared memory, as decodeMessage leaves a masked input.
        v = new Uint32Array(new SharedArrayBuffer(length * 4));
        v.set(x);
      } else if (i % 3 === 1) {
        v = Uint32Array.from(x);
      } else {
        // A view into a larger buffer.
        const big = new Uint32Array(length + 3);
        big.set(x, 3);
        v = big.subarray(3);
      }
      p.add(v);
      handed.push(v);
    });
    p.settle();
    // Byte comparisons: an element-by-element toEqual of these vectors takes tens of seconds.
    expect(Buffer.compare(bytes(p.sum), bytes(expected))).toBe(0);
    expect(p.sum.buffer).toBeInstanceOf(SharedArrayBuffer);
    // Nothing was detached (a detach would slow every typed-array loop in the isolate) or changed.
    handed.forEach((v, i) => {
      expect(v.length, `input ${i}`).toBe(length);
      expect(Buffer.compare(bytes(v), bytes(inputs[i])), `input ${i}`).toBe(0);
    });
  });

  // With two helpers this thread only waits; with one it takes ranges beside it (FEDSYNTH_SECAGG_THREADS=2).
  for (const helpers of [2, 1]) {
    it.runIf(helpers <= helperCount())(`removes masks exactly as prg.applyMasks does, the ranges shared between the threads (${helpers} helper(s))`, () => {
      // Not a whole number of ranges or of AES blocks; more terms than one keystream pass holds.
      const length = 3 * 65536 + 1234 + 7;
      const terms: MaskTerm[] = Array.from({ length: 133 }, (_, i) => ({
        seed: new Uint8Array(randomBytes(32)),
        domain: i % 3 === 0 ? "self-mask" : "pairwise-mask",
        sign: i % 5 < 2 ? -1 : 1,
      }));
      const start = new Uint32Array(randomBytes(length * 4).buffer);
      const expected = Uint32Array.from(start);
      applyMasks(expected, terms);
      const p = ParallelSum.open(length, { helpers })!;
      p.add(Uint32Array.from(start));
      p.applyMasks(terms);
      expect(p.sum).toEqual(expected);
      // Twice on one lane (the range counters start again).
      p.applyMasks(terms.slice(0, 3));
      applyMasks(expected, terms.slice(0, 3));
      expect(p.sum).toEqual(expected);
      const [mine, first, second] = p.unmaskedRanges;
      expect(mine + first + second).toBe(2 * Math.ceil(length / 65536));
      // The coordinator's thread takes ranges only beside a single helper.
      if (helpers === 2) expect(mine).toBe(0);
      else expect(second).toBe(0);
      p.release();
    });
  }

  it.runIf(helperCount() >= 2)("both helpers take unmasking ranges", () => {
    // Which helper claims a range is a race, so a few rounds are allowed; a second helper that never
    // starts, or never gets the job, leaves every range of every round to the first.
    const length = 16 * 65536;
    const terms: MaskTerm[] = Array.from({ length: 8 }, (_, i) => ({ seed: new Uint8Array(randomBytes(32)), domain: "self-mask", sign: i % 2 ? 1 : -1 }));
    const p = ParallelSum.open(length)!;
    p.add(new Uint32Array(length));
    const expected = new Uint32Array(length);
    for (let round = 0; round < 10 && p.unmaskedRanges.slice(1).some((n) => n === 0); round++) {
      p.applyMasks(terms);
      applyMasks(expected, terms);
    }
    // Byte for byte without toEqual, which walks a 1M-word array element by element for seconds.
    expect(Buffer.compare(bytes(p.sum), bytes(expected))).toBe(0);
    const [mine, first, second] = p.unmaskedRanges;
    expect(mine).toBe(0);
    expect(first).toBeGreaterThan(0);
    expect(second).toBeGreaterThan(0);
    p.release();
  });

  it("hashes the leaves of a vector in shared memory on the helpers too, the same bytes as on this thread alone", () => {
    const leaf = 1 << 18;
    const length = 40 * 65536 + 3; // 41 leaves, the last one 12 bytes
    const shared = new Uint8Array(new SharedArrayBuffer(length * 4));
    shared.set(randomBytes(length * 4));
    const expected = Buffer.alloc(32 * 41);
    for (let i = 0; i < 41; i++) createHash("sha256").update(shared.subarray(i * leaf, (i + 1) * leaf)).digest().copy(expected, 32 * i);
    const before = hashedLeaves();
    let got = hashLeaves(shared, leaf);
    // Which thread claims a leaf is a race: a few rounds are allowed for a helper to take one.
    for (let round = 0; round < 10 && hashedLeaves().helpers === before.helpers; round++) got = hashLeaves(shared, leaf);
    expect(Buffer.compare(Buffer.from(got), expected)).toBe(0);
    expect(got.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    expect(hashedLeaves().helpers).toBeGreaterThan(before.helpers);
    // Not in shared memory: all on this thread, the same bytes.
    const plain = Uint8Array.from(shared);
    const mid = hashedLeaves();
    expect(Buffer.compare(Buffer.from(hashLeaves(plain, leaf)), expected)).toBe(0);
    expect(hashedLeaves()).toEqual({ ...mid, here: mid.here + 41 });
  });
});
