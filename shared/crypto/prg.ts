/**
 * Mask expansion: a 256-bit seed becomes a vector of uniform 32-bit words, the ChaCha20 keystream
 * (RFC 8439, block counter from 0) under the seed as key and a nonce that names the mask's purpose, read
 * as little-endian words. The nonce keeps a self-mask and a pairwise mask apart even if two seeds were
 * ever equal. Masks are added in Z_2^32, so the words need no reduction and no rejection sampling.
 *
 * Speed is the point here: the coordinator expands one mask per surviving site (and one per dropped-
 * survivor pair), each as long as the model. Node's cipher writes the keystream into a fresh buffer per
 * update(), so the keystream is made in 64 KiB chunks, which stay in cache while they are added straight
 * into the target; nothing as long as the vector is ever allocated here.
 */
import { createCipheriv, type Cipher } from "node:crypto";
import { endianness } from "node:os";
import { FedsynthError } from "../errors.js";

export type MaskDomain = "self-mask" | "pairwise-mask";

export interface MaskTerm {
  seed: Uint8Array;
  domain: MaskDomain;
  /** +1 adds the mask to the target, −1 subtracts it (mod 2^32). */
  sign: 1 | -1;
}

export const SEED_BYTES = 32;
const CHUNK_WORDS = 16384;
const CHUNK_BYTES = CHUNK_WORDS * 4;
// Keystreams kept open at once by applyMasks: enough to reuse each target chunk across many masks while
// it is in cache, few enough that the open cipher contexts stay small.
const STREAMS_PER_PASS = 128;
const LITTLE_ENDIAN = endianness() === "LE";
// Read-only input: ChaCha20 "encrypting" zeros yields the bare keystream.
const ZEROS = Buffer.alloc(CHUNK_BYTES);

const DOMAIN_NONCES: Record<MaskDomain, Buffer> = {
  "self-mask": Buffer.from("fedsynth-slf", "ascii"),
  "pairwise-mask": Buffer.from("fedsynth-pwm", "ascii"),
};

/** The 12-byte ChaCha20 nonce of a mask domain. */
export function maskNonce(domain: MaskDomain): Uint8Array {
  return new Uint8Array(DOMAIN_NONCES[domain]);
}

function openKeystream(seed: Uint8Array, domain: MaskDomain): Cipher {
  if (seed.length !== SEED_BYTES) {
    throw new FedsynthError("invalid-argument", `a mask seed is ${SEED_BYTES} bytes (256 bits), not ${seed.length}`);
  }
  // OpenSSL's 16-byte ChaCha20 IV is the 32-bit little-endian block counter followed by the RFC 8439 nonce.
  const iv = Buffer.alloc(16);
  DOMAIN_NONCES[domain].copy(iv, 4);
  return createCipheriv("chacha20", seed, iv);
}

function nextWords(stream: Cipher, words: number): Uint32Array {
  const bytes = stream.update(words === CHUNK_WORDS ? ZEROS : ZEROS.subarray(0, words * 4));
  if (!LITTLE_ENDIAN) bytes.swap32();
  if (bytes.byteOffset % 4 === 0) return new Uint32Array(bytes.buffer, bytes.byteOffset, words);
  return new Uint32Array(new Uint8Array(bytes).buffer);
}

function checkLength(length: number): void {
  if (!Number.isSafeInteger(length) || length < 0 || length > 0xffffffff) {
    throw new FedsynthError("invalid-argument", `a mask length must be a whole number of words below 2^32, not ${length}`);
  }
}

/** Overwrites `out` with the mask of `seed`. */
export function expandMaskInto(seed: Uint8Array, domain: MaskDomain, out: Uint32Array): void {
  const stream = openKeystream(seed, domain);
  for (let off = 0; off < out.length; off += CHUNK_WORDS) {
    const n = Math.min(CHUNK_WORDS, out.length - off);
    out.set(nextWords(stream, n), off);
  }
}

export function expandMask(seed: Uint8Array, domain: MaskDomain, length: number): Uint32Array {
  checkLength(length);
  const out = new Uint32Array(length);
  expandMaskInto(seed, domain, out);
  return out;
}

/**
 * target += Σ sign·PRG(seed) (mod 2^32), in place. Works one cache-sized block of the target at a time
 * across all masks, and folds masks of the same sign four at a time into one loop, so the target block is
 * loaded and stored once per four masks: the JavaScript loop, not the cipher, is the larger cost.
 */
export function applyMasks(target: Uint32Array, terms: readonly MaskTerm[]): void {
  const ordered = [...terms.filter((t) => t.sign === 1), ...terms.filter((t) => t.sign === -1)];
  for (let first = 0; first < ordered.length; first += STREAMS_PER_PASS) {
    const pass = ordered.slice(first, first + STREAMS_PER_PASS);
    const streams = pass.map((t) => openKeystream(t.seed, t.domain));
    for (let off = 0; off < target.length; off += CHUNK_WORDS) {
      const n = Math.min(CHUNK_WORDS, target.length - off);
      let k = 0;
      while (k < pass.length) {
        const sign = pass[k].sign;
        if (k + 3 < pass.length && pass[k + 3].sign === sign) {
          const a = nextWords(streams[k], n);
          const b = nextWords(streams[k + 1], n);
          const c = nextWords(streams[k + 2], n);
          const d = nextWords(streams[k + 3], n);
          if (sign === 1) addFour(target, off, a, b, c, d, n);
          else subtractFour(target, off, a, b, c, d, n);
          k += 4;
        } else {
          if (sign === 1) addWords(target, off, nextWords(streams[k], n), n);
          else subtractWords(target, off, nextWords(streams[k], n), n);
          k += 1;
        }
      }
    }
  }
}

function addWords(target: Uint32Array, off: number, words: Uint32Array, n: number): void {
  for (let i = 0; i < n; i++) target[off + i] = (target[off + i] + words[i]) | 0;
}

function subtractWords(target: Uint32Array, off: number, words: Uint32Array, n: number): void {
  for (let i = 0; i < n; i++) target[off + i] = (target[off + i] - words[i]) | 0;
}

// Four 32-bit words summed in a double stay exact (< 2^35), so one `| 0` at the end reduces mod 2^32.
function addFour(target: Uint32Array, off: number, a: Uint32Array, b: Uint32Array, c: Uint32Array, d: Uint32Array, n: number): void {
  for (let i = 0; i < n; i++) target[off + i] = (target[off + i] + a[i] + b[i] + c[i] + d[i]) | 0;
}

function subtractFour(target: Uint32Array, off: number, a: Uint32Array, b: Uint32Array, c: Uint32Array, d: Uint32Array, n: number): void {
  for (let i = 0; i < n; i++) target[off + i] = (target[off + i] - a[i] - b[i] - c[i] - d[i]) | 0;
}

/** acc += v (mod 2^32), in place: the one loop both the masked and the plaintext sums run. */
export function addInto(acc: Uint32Array, v: Uint32Array): void {
  if (acc.length !== v.length) throw new FedsynthError("invalid-argument", `cannot add a vector of ${v.length} words to one of ${acc.length}`);
  const n = acc.length;
  for (let i = 0; i < n; i++) acc[i] = (acc[i] + v[i]) | 0;
}
