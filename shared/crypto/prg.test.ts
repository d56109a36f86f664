import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { addInto, applyMasks, expandMask, expandMaskInto, maskNonce, type MaskTerm } from "./prg.js";

// An independent ChaCha20 (RFC 8439 §2.3) in plain JavaScript, to check that expandMask is exactly the
// keystream for the seed and the domain's nonce, block counter from 0, read as little-endian words.
function rotl(v: number, c: number): number {
  return ((v << c) | (v >>> (32 - c))) >>> 0;
}

function chacha20Block(key: Uint8Array, counter: number, nonce: Uint8Array): Uint32Array {
  const kv = new DataView(key.buffer, key.byteOffset, 32);
  const nv = new DataView(nonce.buffer, nonce.byteOffset, 12);
  const state = new Uint32Array(16);
  state.set([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);
  for (let i = 0; i < 8; i++) state[4 + i] = kv.getUint32(i * 4, true);
  state[12] = counter;
  for (let i = 0; i < 3; i++) state[13 + i] = nv.getUint32(i * 4, true);
  const x = Uint32Array.from(state);
  const qr = (a: number, b: number, c: number, d: number) => {
    x[a] += x[b]; x[d] = rotl(x[d] ^ x[a], 16);
    x[c] += x[d]; x[b] = rotl(x[b] ^ x[c], 12);
    x[a] += x[b]; x[d] = rotl(x[d] ^ x[a], 8);
    x[c] += x[d]; x[b] = rotl(x[b] ^ x[c], 7);
  };
  for (let i = 0; i < 10; i++) {
    qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15);
    qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14);
  }
  for (let i = 0; i < 16; i++) x[i] += state[i];
  return x;
}

function referenceKeystream(key: Uint8Array, nonce: Uint8Array, words: number): Uint32Array {
  const out = new Uint32Array(words);
  for (let block = 0; block * 16 < words; block++) {
    const b = chacha20Block(key, block, nonce);
    out.set(b.subarray(0, Math.min(16, words - block * 16)), block * 16);
  }
  return out;
}

describe("mask expansion", () => {
  it("the reference ChaCha20 matches RFC 8439 test vector A.1 #1", () => {
    const block = chacha20Block(new Uint8Array(32), 0, new Uint8Array(12));
    const bytes = Buffer.from(block.buffer).toString("hex");
    expect(bytes.slice(0, 64)).toBe("76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7");
  });

  it("is the ChaCha20 keystream of the seed under the domain's nonce, across chunk boundaries", () => {
    const seed = new Uint8Array(randomBytes(32));
    const words = 40_003; // crosses two 16384-word chunks and ends mid-block
    for (const domain of ["self-mask", "pairwise-mask"] as const) {
      expect(expandMask(seed, domain, words)).toEqual(referenceKeystream(seed, maskNonce(domain), words));
    }
  });

  it("separates domains and seeds", () => {
    const seed = new Uint8Array(randomBytes(32));
    const a = expandMask(seed, "self-mask", 64);
    const b = expandMask(seed, "pairwise-mask", 64);
    const c = expandMask(new Uint8Array(randomBytes(32)), "self-mask", 64);
    expect(a).not.toEqual(b);
    expect(a).not.toEqual(c);
    expect(expandMask(seed, "self-mask", 64)).toEqual(a);
  });

  it("refuses a seed that is not 256 bits", () => {
    expect(() => expandMask(new Uint8Array(16), "self-mask", 8)).toThrow(/32 bytes \(256 bits\), not 16/);
  });

  it("writes into a given buffer", () => {
    const seed = new Uint8Array(randomBytes(32));
    const out = new Uint32Array(1000).fill(7);
    expandMaskInto(seed, "self-mask", out);
    expect(out).toEqual(expandMask(seed, "self-mask", 1000));
  });

  it("words look uniform (mean within 6 standard errors of 2^31 − 0.5)", () => {
    const words = expandMask(new Uint8Array(randomBytes(32)), "self-mask", 200_000);
    let sum = 0;
    for (const w of words) sum += w;
    const mean = sum / words.length;
    const se = 2 ** 32 / Math.sqrt(12) / Math.sqrt(words.length);
    expect(Math.abs(mean - (2 ** 31 - 0.5))).toBeLessThan(6 * se);
  });
});

describe("applyMasks", () => {
  it("adds and subtracts masks mod 2^32, the same as adding the expanded masks one by one", () => {
    const length = 20_000;
    // More terms than one pass keeps open, so the pass boundary is exercised.
    const terms: MaskTerm[] = Array.from({ length: 131 }, (_, i) => ({
      seed: new Uint8Array(randomBytes(32)),
      domain: i % 3 === 0 ? "self-mask" : "pairwise-mask",
      sign: i % 2 === 0 ? 1 : -1,
    }));
    const start = new Uint32Array(randomBytes(length * 4).buffer);
    const expected = Float64Array.from(start);
    for (const t of terms) {
      const m = expandMask(t.seed, t.domain, length);
      for (let i = 0; i < length; i++) expected[i] = (((expected[i] + t.sign * m[i]) % 2 ** 32) + 2 ** 32) % 2 ** 32;
    }
    const target = Uint32Array.from(start);
    applyMasks(target, terms);
    expect(Array.from(target)).toEqual(Array.from(expected));
  });

  it("a mask added and subtracted cancels exactly", () => {
    const x = new Uint32Array(randomBytes(4 * 5000).buffer);
    const y = Uint32Array.from(x);
    const seed = new Uint8Array(randomBytes(32));
    applyMasks(y, [{ seed, domain: "pairwise-mask", sign: 1 }]);
    expect(y).not.toEqual(x);
    applyMasks(y, [{ seed, domain: "pairwise-mask", sign: -1 }]);
    expect(y).toEqual(x);
  });

  it("addInto wraps mod 2^32 and refuses different lengths", () => {
    const acc = Uint32Array.of(0xffffffff, 5);
    addInto(acc, Uint32Array.of(2, 0xfffffffe));
    expect(Array.from(acc)).toEqual([1, 3]);
    expect(() => addInto(acc, new Uint32Array(3))).toThrow(/3 words to one of 2/);
  });
});
