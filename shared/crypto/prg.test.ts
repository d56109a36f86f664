import { createCipheriv, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { addInto, applyMasks, counterBlock, expandMask, expandMaskInto, MASK_CIPHER, maskNonce, type MaskTerm } from "./prg.js";

// An independent AES-256-CTR (NIST SP 800-38A §6.5): each counter block encrypted on its own with
// AES-256-ECB, the counter a 128-bit big-endian number (BigInt) incremented once per block, to check that
// expandMask is exactly the keystream for the seed and the domain's counter blocks, read as
// little-endian words.
function ecb(key: Uint8Array, blocks: Buffer): Buffer {
  const c = createCipheriv("aes-256-ecb", key, null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(blocks), c.final()]);
}

function counterBlocks(initial: Uint8Array, count: number): Buffer {
  let ctr = BigInt("0x" + Buffer.from(initial).toString("hex"));
  const out = Buffer.alloc(16 * count);
  for (let i = 0; i < count; i++) {
    out.write(ctr.toString(16).padStart(32, "0"), 16 * i, "hex");
    ctr = (ctr + 1n) % (1n << 128n);
  }
  return out;
}

function referenceKeystream(key: Uint8Array, initial: Uint8Array, words: number): Uint32Array {
  const bytes = ecb(key, counterBlocks(initial, Math.ceil(words / 4)));
  const out = new Uint32Array(words);
  for (let i = 0; i < words; i++) out[i] = bytes.readUInt32LE(4 * i);
  return out;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const xor = (a: Buffer, b: Buffer) => Buffer.from(a.map((v, i) => v ^ b[i]));

// NIST SP 800-38A, F.5.5 CTR-AES256.Encrypt.
const F55 = {
  key: "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
  counter: "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
  plaintext: "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710",
  ciphertext: "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c52b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6",
};

describe("mask expansion", () => {
  it("the reference AES-256-CTR matches NIST SP 800-38A F.5.5 (and so does node:crypto's)", () => {
    const key = Buffer.from(F55.key, "hex");
    const counter = Buffer.from(F55.counter, "hex");
    const keystream = xor(Buffer.from(F55.plaintext, "hex"), Buffer.from(F55.ciphertext, "hex"));
    const ref = referenceKeystream(key, counter, 16);
    expect(hex(new Uint8Array(ref.buffer))).toBe(keystream.toString("hex"));
    expect(createCipheriv(MASK_CIPHER, key, counter).update(Buffer.from(F55.plaintext, "hex")).toString("hex")).toBe(F55.ciphertext);
  });

  it("node:crypto's counter is the whole 128-bit block, so it would carry out of the low 32 bits (prg.ts never gets there)", () => {
    const key = new Uint8Array(randomBytes(32));
    const nearWrap = Buffer.from("000102030405060708090a0bfffffffe", "hex");
    const words = 16; // four blocks: ...fffffffe, ...ffffffff, then the carry into byte 11
    const got = createCipheriv(MASK_CIPHER, key, nearWrap).update(Buffer.alloc(4 * words));
    expect(hex(got)).toBe(hex(new Uint8Array(referenceKeystream(key, nearWrap, words).buffer)));
    expect(counterBlocks(nearWrap, 3).subarray(32).toString("hex")).toBe("000102030405060708090a0c00000000");
    // The longest mask, 2^32 − 1 words, ends in block 2^30 − 1: the counter field stays below 2^30.
    expect(() => expandMask(key, "self-mask", 2 ** 32)).toThrow(/below 2\^32/);
  });

  it("a counter block is the domain's nonce and the big-endian block number", () => {
    expect(hex(counterBlock(maskNonce("self-mask"), 0))).toBe(hex(Buffer.from("fedsynth-slf", "ascii")) + "00000000");
    expect(hex(counterBlock(maskNonce("pairwise-mask"), 0x01020304))).toBe(hex(Buffer.from("fedsynth-pwm", "ascii")) + "01020304");
  });

  it("is the AES-256-CTR keystream of the seed from the domain's nonce and block 0, across chunk boundaries", () => {
    const seed = new Uint8Array(randomBytes(32));
    const words = 40_003; // crosses two 16384-word chunks and ends mid-block
    for (const domain of ["self-mask", "pairwise-mask"] as const) {
      expect(expandMask(seed, domain, words)).toEqual(referenceKeystream(seed, counterBlock(maskNonce(domain), 0), words));
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
