/**
 * The one byte layout every signed payload and every wire message uses: big-endian integers, byte strings
 * and UTF-8 text behind a u32 length. Length prefixes make the encoding injective, so two different
 * messages can never sign the same bytes.
 */
import { endianness } from "node:os";
import { FedsynthError } from "../../errors.js";
import { PARALLEL_MIN_WORDS } from "./parallel.js";

const LITTLE_ENDIAN = endianness() === "LE";
// Byte strings at least this long are not copied into the writer's buffer.
const LARGE = 4096;
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A vector's words as little-endian bytes: a view of it where the machine is little-endian, else a swapped copy. */
export function wordsToLittleEndian(v: Uint32Array): Uint8Array {
  const view = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  return LITTLE_ENDIAN ? view : new Uint8Array(Buffer.from(view).swap32());
}

/** Fills `out` from little-endian bytes (exactly 4 per word). */
export function wordsFromLittleEndian(bytes: Uint8Array, out: Uint32Array): Uint32Array {
  const target = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  target.set(bytes.subarray(0, target.byteLength));
  if (!LITTLE_ENDIAN) Buffer.from(target.buffer, target.byteOffset, target.byteLength).swap32();
  return out;
}

export class ByteWriter {
  // Small fields go into one growing buffer; large byte strings (masked vectors) are kept by reference
  // and copied once, in `finish`.
  private parts: Uint8Array[] = [];
  private buf = Buffer.allocUnsafe(256);
  private pos = 0;
  private flushed = 0;

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  private flush(): void {
    if (this.pos === 0) return;
    this.parts.push(this.buf.subarray(0, this.pos));
    this.flushed += this.pos;
    this.buf = Buffer.allocUnsafe(256);
    this.pos = 0;
  }

  u8(v: number): this {
    this.room(1);
    this.buf[this.pos++] = v & 0xff;
    return this;
  }

  u16(v: number): this {
    this.room(2);
    this.pos = this.buf.writeUInt16BE(v & 0xffff, this.pos);
    return this;
  }

  u32(v: number): this {
    this.room(4);
    this.pos = this.buf.writeUInt32BE(v >>> 0, this.pos);
    return this;
  }

  /** Bytes whose length the reader knows from context (digests, keys of a fixed size). */
  fixed(bytes: Uint8Array): this {
    if (bytes.length >= LARGE) {
      this.flush();
      this.parts.push(bytes);
      this.flushed += bytes.length;
      return this;
    }
    this.room(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
    return this;
  }

  bytes(bytes: Uint8Array): this {
    return this.u32(bytes.length).fixed(bytes);
  }

  string(s: string): this {
    // Room for the longest UTF-8 form (3 bytes per UTF-16 unit), then the length written in front of
    // what was written: one pass over the string instead of two.
    this.room(4 + 3 * s.length);
    const n = this.buf.write(s, this.pos + 4, "utf8");
    this.buf.writeUInt32BE(n, this.pos);
    this.pos += 4 + n;
    return this;
  }

  strings(list: readonly string[]): this {
    this.u32(list.length);
    for (const s of list) this.string(s);
    return this;
  }

  /** A vector of 32-bit words, little-endian, behind its word count. Not copied until `finish`. */
  words(v: Uint32Array): this {
    this.u32(v.length);
    return this.fixed(wordsToLittleEndian(v));
  }

  get length(): number {
    return this.flushed + this.pos;
  }

  finish(): Uint8Array {
    this.flush();
    const out = this.parts.length === 1 ? Buffer.from(this.parts[0]) : Buffer.concat(this.parts, this.flushed);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }
}

export class ByteReader {
  private pos = 0;
  private readonly view: DataView;

  constructor(private readonly buf: Uint8Array, private readonly what: string) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  private need(n: number): void {
    if (n < 0 || this.pos + n > this.buf.length) {
      throw new FedsynthError("invalid-argument", `malformed ${this.what}: it ends after ${this.buf.length} bytes, in the middle of a field`);
    }
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  fixed(n: number): Uint8Array {
    this.need(n);
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  bytes(): Uint8Array {
    return this.fixed(this.u32());
  }

  string(): string {
    try {
      return fromUtf8.decode(this.bytes());
    } catch (err) {
      if (err instanceof FedsynthError) throw err;
      throw new FedsynthError("invalid-argument", `malformed ${this.what}: a text field is not valid UTF-8`);
    }
  }

  strings(): string[] {
    const n = this.count(4);
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(this.string());
    return out;
  }

  /** A list length, checked against the bytes left so that a forged count cannot make us allocate. */
  count(minItemBytes: number): number {
    const n = this.u32();
    this.need(n * minItemBytes);
    return n;
  }

  words(): Uint32Array {
    const n = this.u32();
    this.need(n * 4);
    // Always a copy: aligned, and not aliasing the transport's buffer. A long vector (a masked input) is
    // copied into shared memory, so that the coordinator can hand it to its helper thread as it is,
    // without a second copy and without moving (detaching) it (parallel.ts).
    const out = n >= PARALLEL_MIN_WORDS ? new Uint32Array(new SharedArrayBuffer(n * 4)) : new Uint32Array(n);
    wordsFromLittleEndian(this.buf.subarray(this.pos, this.pos + n * 4), out);
    this.pos += n * 4;
    return out;
  }

  end(): void {
    if (this.pos !== this.buf.length) {
      throw new FedsynthError("invalid-argument", `malformed ${this.what}: ${this.buf.length - this.pos} unexpected byte(s) after its last field`);
    }
  }
}
