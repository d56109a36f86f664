/**
 * Two sources of randomness with different jobs. `SeededRng` makes sampling and data splits reproducible.
 * `SecureRng` draws DP noise: noise must never be predictable, so it is never seeded.
 */
import { randomBytes } from "node:crypto";

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** The next `end − start` uniforms into out[start] … out[end − 1], exactly as that many next() calls give them (faster in bulk). */
  fill?(out: Float64Array, start: number, end: number): void;
}

/** Uniforms into out[start] … out[end − 1] as rng.next() gives them one by one: through rng.fill when it has one. */
export function fillUniforms(rng: Rng, out: Float64Array, start: number, end: number): void {
  if (rng.fill) rng.fill(out, start, end);
  else for (let d = start; d < end; d++) out[d] = rng.next();
}

/** xoshiro128** seeded through splitmix32: fast, well distributed, reproducible. */
export class SeededRng implements Rng {
  private s = new Uint32Array(4);

  constructor(seed: number) {
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  private nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  next(): number {
    // 53 bits from two draws, so that every double in [0, 1) on the 2^-53 grid is reachable.
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /**
   * next()'s uniforms in bulk, the same numbers: the state stays in int32 locals for the whole run (each
   * next() call loads and stores it, and costs 3–6 times as much). Bits are as nextUint32's: int32 and
   * uint32 agree modulo 2³², and every shift or multiply here keeps only those 32 bits.
   */
  fill(out: Float64Array, start: number, end: number): void {
    const s = this.s;
    let s0 = s[0] | 0;
    let s1 = s[1] | 0;
    let s2 = s[2] | 0;
    let s3 = s[3] | 0;
    // Two nextUint32 steps per uniform, written out (a helper could not return the state without allocating).
    for (let d = start; d < end; d++) {
      let x = Math.imul(s1, 5);
      const hi = Math.imul((x << 7) | (x >>> 25), 9) >>> 5;
      let t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      x = Math.imul(s1, 5);
      const lo = Math.imul((x << 7) | (x >>> 25), 9) >>> 6;
      t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      out[d] = (hi * 67108864 + lo) / 9007199254740992;
    }
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Uniforms from the operating system's CSPRNG, fetched in blocks. */
export class SecureRng implements Rng {
  private buf = Buffer.alloc(0);
  private pos = 0;

  next(): number {
    if (this.pos + 8 > this.buf.length) {
      this.buf = randomBytes(8 * 1024);
      this.pos = 0;
    }
    const hi = this.buf.readUInt32LE(this.pos) >>> 5;
    const lo = this.buf.readUInt32LE(this.pos + 4) >>> 6;
    this.pos += 8;
    return (hi * 67108864 + lo) / 9007199254740992;
  }
}

/** Standard normal draw (Box–Muller; the spare is dropped to keep the function stateless). */
export function gaussian(rng: Rng): number {
  let u = 0;
  while (u === 0) u = rng.next();
  const v = rng.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
