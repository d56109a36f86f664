/**
 * Mask expansion: a 256-bit seed becomes a vector of uniform 32-bit words, the AES-256-CTR keystream
 * (NIST SP 800-38A) under the seed as key, read as little-endian words. The 16-byte initial counter block
 * is a 12-byte nonce that names the mask's purpose followed by a 32-bit big-endian block counter from 0
 * (word i of the mask is in block ⌊i/4⌋, whose counter block is nonce ‖ BE32(⌊i/4⌋)). The nonce keeps a
 * self-mask and a pairwise mask apart even if two seeds were ever equal. Masks are added in Z_2^32, so
 * the words need no reduction and no rejection sampling.
 *
 * The counter: OpenSSL's CTR mode (node:crypto's aes-256-ctr) increments the whole 16-byte block as one
 * 128-bit big-endian number, so a 32-bit counter that overflowed would carry into the nonce. It never
 * does here: a mask is at most 2^32 − 1 words (checkLength, and the session's vector length), which is
 * fewer than 2^30 blocks, so the counter field stays below 2^30 and the nonce bytes never change. A
 * keystream opened part-way (parallel.ts, from word `from`, a multiple of 4) starts at counter ⌊from/4⌋,
 * the same block the full stream reaches there.
 *
 * (Protocol version 1 used ChaCha20 under the same seeds and nonces; node:crypto's AES-256-CTR is ~1.6×
 * faster where the CPU has AES instructions. A party of version 1 is refused by the wire's version
 * check, session.ts, rather than summed with the wrong masks.)
 *
 * Speed is the point here: the coordinator expands one mask per surviving site (and one per dropped-
 * survivor pair), each as long as the model. Node's cipher writes the keystream into a fresh buffer per
 * update(), so the keystream is made in 64 KiB chunks (KEYSTREAM_CHUNK_BYTES), which stay in cache while
 * they are added straight into the target; nothing as long as the vector is ever allocated here.
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
/**
 * Keystream is made this many bytes at a time (here and in parallel.ts). 16 KiB made two threads of pure
 * AES-CTR updates scale better (fewer page faults for the fresh output buffers), but in the unmasking
 * itself it was no faster warm and slower cold (4× the calls), so 64 KiB it stays.
 */
export const KEYSTREAM_CHUNK_BYTES = 65536;
const CHUNK_WORDS = KEYSTREAM_CHUNK_BYTES / 4;
const CHUNK_BYTES = KEYSTREAM_CHUNK_BYTES;
// Keystreams kept open at once by applyMasks: enough to reuse each target chunk across many masks while
// it is in cache, few enough that the open cipher contexts stay small.
const STREAMS_PER_PASS = 128;
const LITTLE_ENDIAN = endianness() === "LE";
// Read-only input: AES-CTR "encrypting" zeros yields the bare keystream.
const ZEROS = Buffer.alloc(CHUNK_BYTES);

const DOMAIN_NONCES: Record<MaskDomain, Buffer> = {
  "self-mask": Buffer.from("fedsynth-slf", "ascii"),
  "pairwise-mask": Buffer.from("fedsynth-pwm", "ascii"),
};

/** The cipher of every mask (node:crypto's name for it). */
export const MASK_CIPHER = "aes-256-ctr";

/** The 12-byte nonce of a mask domain: the first 12 bytes of its AES-CTR counter blocks. */
export function maskNonce(domain: MaskDomain): Uint8Array {
  return new Uint8Array(DOMAIN_NONCES[domain]);
}

function openKeystream(seed: Uint8Array, domain: MaskDomain): Cipher {
  if (seed.length !== SEED_BYTES) {
    throw new FedsynthError("invalid-argument", `a mask seed is ${SEED_BYTES} bytes (256 bits), not ${seed.length}`);
  }
  return createCipheriv(MASK_CIPHER, seed, counterBlock(DOMAIN_NONCES[domain], 0));
}

/** The initial counter block of a keystream that starts at block `block`: nonce ‖ BE32(block) (see above). */
export function counterBlock(nonce: Uint8Array, block: number): Buffer {
  if (nonce.length !== 12 || !Number.isInteger(block) || block < 0 || block > 0xffffffff) {
    throw new FedsynthError("internal", `a mask's counter block is a 12-byte nonce and a 32-bit block number (${nonce.length} bytes, block ${block})`);
  }
  const iv = Buffer.alloc(16);
  iv.set(nonce, 0);
  iv.writeUInt32BE(block, 12);
  return iv;
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
  checkLength(out.length);
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
  checkLength(target.length);
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
