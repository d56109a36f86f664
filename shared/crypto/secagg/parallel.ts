/**
 * Helper threads for the coordinator's three long loops over the model vector: hashing each masked input
 * it receives, adding each accepted one into the running sum, and removing the masks when the round is
 * unmasked.
 *
 * Receiving a masked input costs the coordinator a digest of the vector (the one the site's signed charge
 * and signature commit to) and then an add of the vector into the running sum; unmasking costs an
 * AES-256-CTR keystream per surviving site (and per dropped–survivor pair) added into the sum. The digest
 * is a tree of SHA-256s over 256 KiB leaves (messages.ts maskedInputDigest), and hashLeaves shares the
 * leaves of a masked input between this thread and the helpers, each claiming the next one nobody has
 * (one SHA-256 of 4 MB was half of the coordinator's time, on one core): with two helpers, this thread
 * and the second hash input i + 1 while the first adds input i into the sum (so for a while three threads
 * work). The unmasking is shared
 * by ranges of the vector between two helper threads while the coordinator's thread waits: node:crypto
 * returns every 64 KiB of keystream in a new buffer, ~400 MB of them for 100 sites × 1M words, and that
 * churn makes V8 collect garbage in the isolate that allocates it, at a cost that grows with the isolate's
 * heap (external-memory pressure forces mark-compacts). A helper's heap is a few MB; the coordinator's is
 * as big as the coordinator (store, transport, sessions). In bench/secagg.mjs (100 × 1M, --trace-gc) the
 * unmasking cost the coordinator's isolate 10 collections, 2 of them mark-compacts, ~127 ms, when its
 * thread took half the ranges; with two helpers it has 4 scavenges (~25 ms, its own allocations) and each
 * helper ~6 (~35 ms). With a single helper (FEDSYNTH_SECAGG_THREADS=2) the coordinator's thread takes
 * ranges beside it, as before. The coordinator's thread waits while two helpers unmask.
 * The calling API stays synchronous: a digest, or a phase that needs the finished sum, waits (Atomics.wait).
 *
 * What the helpers see: the running sum (shared memory, which the coordinator's thread does not touch
 * while a helper adds into it), each masked input as it arrives (read only, to hash it; it is added into
 * the sum only once it has been checked, its signature over its digest verified), and, at the end, the
 * mask seeds the coordinator reconstructed anyway. They are the same process and hold nothing the
 * coordinator's thread did not hold: the invariant of server.ts (no individual unmasked input, ever) is
 * unchanged.
 *
 * A masked input reaches the helper in shared memory: decodeMessage puts long vectors there (encoding.ts),
 * and one that is not (a caller's own array) is copied there first. It is shared, not moved: moving
 * (transferring) an ArrayBuffer detaches it, and the first detach in a V8 isolate makes every optimised
 * typed-array loop in it check for detached buffers from then on (the array-buffer-detaching protector),
 * which made the coordinator's other JavaScript loops (the plaintext baseline of bench/secagg.mjs among
 * them) up to ~1.8× slower. So the caller must not write into a masked input it has handed to receiveMaskedInput: the helper
 * may read it later, and the bytes it adds must be the bytes that were hashed and checked. coordinator.ts
 * and the bench drop the message once it is received.
 *
 * The adds themselves run in a few lines of WebAssembly SIMD (i32x4 add/sub over the running sum, which
 * lives in a shared WebAssembly memory): the keystream (or masked input) is copied 64 KiB at a time into
 * a scratch area beside the sum and added four words per instruction. The masks and keystream are those
 * of prg.ts, word for word (parallel.test.ts); only the loop that adds them differs. The JavaScript loop
 * of prg.ts is kept for short vectors and for the plaintext baseline of bench/secagg.mjs.
 *
 * Short vectors (below PARALLEL_MIN_WORDS), one-core machines, big-endian machines and runtimes without
 * WebAssembly SIMD do everything on the calling thread, as before (so does FEDSYNTH_SECAGG_THREADS=1,
 * for comparing). The helpers are two worker threads per process (one with FEDSYNTH_SECAGG_THREADS=2),
 * shared by every session, started on first use and unref'd (they never keep the process alive). The
 * first adds the masked inputs; all hash and unmask. KERNEL is the one implementation of the loops; the
 * helpers run it, and so does this thread when it hashes or takes ranges (compiled here with `new Function`),
 * so every thread does exactly the same arithmetic. It is a string so that it runs the same from the
 * compiled build and from the TypeScript sources under a test runner.
 */
import { createCipheriv, hash } from "node:crypto";
import { availableParallelism, cpus, endianness } from "node:os";
import { Worker } from "node:worker_threads";
import { FedsynthError } from "../../errors.js";
import { KEYSTREAM_CHUNK_BYTES, MASK_CIPHER, maskNonce, type MaskTerm } from "../prg.js";

/** Below this many words a vector is summed and unmasked on the calling thread. */
export const PARALLEL_MIN_WORDS = 1 << 16;
/** The unmasking is shared out in ranges of this many words (a multiple of the 4-word AES block). */
const GRAIN_WORDS = 1 << 16;
/** Masked inputs handed over and not yet added, at most; the receiving thread waits beyond that. */
const MAX_IN_FLIGHT = 8;
/** Helper threads, at most: the first adds the masked inputs, and all of them unmask. */
export const MAX_HELPERS = 2;
/** The helpers are taken for dead after this long without progress. */
const STALL_MS = 30_000;
/** Keystream is asked of node:crypto this many bytes at a time (prg.ts's KEYSTREAM_CHUNK_BYTES). */
const CHUNK_BYTES = KEYSTREAM_CHUNK_BYTES;
/** Each thread's scratch area (this one's, then each helper's): four keystream chunks side by side. */
const SCRATCH_BYTES = 4 * CHUNK_BYTES;
const WASM_PAGE = 65536;

// The control words of one lane (Int32Array on a SharedArrayBuffer).
const SEQ = 0; // bumped (and notified) whenever a helper finishes something
const DONE = 1; // jobs the helpers have finished
const FAILED = 2; // non-zero once a job failed in a helper
const NEXT_GRAIN = 3; // the next unmasking range to claim, for both threads
const GRAINS_DONE = 4;
const GRAINS_BY = 5; // then one word per thread (this one, helper 0, helper 1): ranges each unmasked
const CONTROL_WORDS = GRAINS_BY + 1 + MAX_HELPERS;

// --- the WebAssembly adder -------------------------------------------------------------------------
//
// Four functions over one imported shared memory, each walking whole 16-byte lanes from dst to dst + n:
//   add(dst, src, n)          dst += src
//   sub(dst, src, n)          dst −= src
//   add4(dst, src, n, stride) dst += src + src[stride] + src[2·stride] + src[3·stride]
//   sub4(dst, src, n, stride) dst −= (the same four)
// all as i32x4 lanes, so mod 2^32 per word.

function leb128(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

function adderModuleBytes(): Uint8Array {
  const section = (id: number, bytes: number[]) => [id, ...leb128(bytes.length), ...bytes];
  const name = (s: string) => [s.length, ...Buffer.from(s, "ascii")];
  const get = (i: number) => [0x20, i];
  const set = (i: number) => [0x21, i];
  const i32Add = 0x6a;
  const simd = (op: number) => [0xfd, ...leb128(op)];
  const load = (addr: number[]) => [...addr, ...simd(0x00), 4, 0]; // v128.load align=16 offset=0
  const store = [...simd(0x0b), 4, 0]; // v128.store
  const [I32X4_ADD, I32X4_SUB] = [174, 177];
  // dst is param 0, src param 1, n param 2, [stride param 3]; `end` the local after the params.
  const loop = (params: number, lanes: number[]) => {
    const end = params;
    return [
      1, 1, 0x7f, // one i32 local: end
      ...get(0), ...get(2), i32Add, ...set(end),
      0x02, 0x40, 0x03, 0x40, // block, loop
      ...get(0), ...get(end), 0x4f, 0x0d, 1, // if dst >= end: break
      ...get(0), ...load(get(0)), ...lanes, ...store,
      ...get(0), 0x41, 16, i32Add, ...set(0),
      ...get(1), 0x41, 16, i32Add, ...set(1),
      0x0c, 0, 0x0b, 0x0b, 0x0b, // continue, end loop, end block, end function
    ];
  };
  const one = (op: number) => loop(3, [...load(get(1)), ...simd(op)]);
  const four = (op: number) => {
    const at = (k: number) => load([...get(1), ...Array.from({ length: k }, () => [...get(3), i32Add]).flat()]);
    return loop(4, [...at(0), ...at(1), ...simd(I32X4_ADD), ...at(2), ...simd(I32X4_ADD), ...at(3), ...simd(I32X4_ADD), ...simd(op)]);
  };
  const body = (code: number[]) => [...leb128(code.length), ...code];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, [2, 0x60, 3, 0x7f, 0x7f, 0x7f, 0, 0x60, 4, 0x7f, 0x7f, 0x7f, 0x7f, 0]),
    ...section(2, [1, ...name("e"), ...name("m"), 2, 3, 1, ...leb128(65536)]), // shared memory, 1..65536 pages
    ...section(3, [4, 0, 0, 1, 1]),
    ...section(7, [4, ...name("add"), 0, 0, ...name("sub"), 0, 1, ...name("add4"), 0, 2, ...name("sub4"), 0, 3]),
    ...section(10, [4, ...body(one(I32X4_ADD)), ...body(one(I32X4_SUB)), ...body(four(I32X4_ADD)), ...body(four(I32X4_SUB))]),
  ]);
}

// The project compiles without the DOM library, which is where TypeScript declares WebAssembly.
type WasmModule = object;
interface WasmMemory {
  readonly buffer: SharedArrayBuffer;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: unknown };
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
}
const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

let adderModule: WasmModule | null | undefined;

function getAdderModule(): WasmModule | undefined {
  if (adderModule === undefined) {
    try {
      const bytes = adderModuleBytes();
      adderModule = wasm?.validate(bytes) ? new wasm.Module(bytes) : null;
    } catch {
      adderModule = null;
    }
  }
  return adderModule ?? undefined;
}

// --- the kernel: the same code on both threads ------------------------------------------------------
//
// A lane: { u8: Uint8Array over the shared memory, ops: the adder's exports, scratch: this thread's
// scratch offset }. Words are processed in whole 16-byte lanes; a chunk shorter than CHUNK_WORDS is the
// last of the vector, and the words past its end fall in the padding after the sum, which nothing reads.
const KERNEL = String.raw`
const MASK_CIPHER = ${JSON.stringify(MASK_CIPHER)};
const CHUNK_WORDS = ${CHUNK_BYTES / 4};
const CHUNK_BYTES = CHUNK_WORDS * 4;
const STREAMS_PER_PASS = 128;
const ZEROS = Buffer.alloc(CHUNK_BYTES);

// prg.ts's keystream: AES-256-CTR under the seed, initial counter block = the domain's nonce ‖ BE32(block).
function keystreamChunk(stream, words) {
  return stream.update(words === CHUNK_WORDS ? ZEROS : ZEROS.subarray(0, words * 4));
}

function wholeLanes(words) {
  return ((words + 3) & ~3) * 4;
}

/** sum[from, to) += sign·mask for every term (seeds 32 bytes each, nonces 12 each, signs ±1). */
function maskRange(lane, length, seeds, nonces, signs, from, to) {
  if (from % 4 !== 0 || (to !== length && to % 4 !== 0)) throw new Error("bad mask range " + from + ".." + to);
  const count = signs.length;
  for (let first = 0; first < count; first += STREAMS_PER_PASS) {
    const last = Math.min(count, first + STREAMS_PER_PASS);
    const streams = [];
    for (let k = first; k < last; k++) {
      // Word from is the first of block from / 4 (four words to a 16-byte block).
      const iv = Buffer.alloc(16);
      iv.set(nonces.subarray(k * 12, k * 12 + 12), 0);
      iv.writeUInt32BE(from / 4, 12);
      streams.push(createCipheriv(MASK_CIPHER, seeds.subarray(k * 32, k * 32 + 32), iv));
    }
    for (let off = from; off < to; off += CHUNK_WORDS) {
      const n = Math.min(CHUNK_WORDS, to - off);
      const bytes = wholeLanes(n);
      let k = first;
      while (k < last) {
        const s = signs[k];
        if (k + 3 < last && signs[k + 1] === s && signs[k + 2] === s && signs[k + 3] === s) {
          for (let j = 0; j < 4; j++) lane.u8.set(keystreamChunk(streams[k - first + j], n), lane.scratch + j * CHUNK_BYTES);
          if (s === 1) lane.ops.add4(off * 4, lane.scratch, bytes, CHUNK_BYTES);
          else lane.ops.sub4(off * 4, lane.scratch, bytes, CHUNK_BYTES);
          k += 4;
        } else {
          lane.u8.set(keystreamChunk(streams[k - first], n), lane.scratch);
          if (s === 1) lane.ops.add(off * 4, lane.scratch, bytes);
          else lane.ops.sub(off * 4, lane.scratch, bytes);
          k += 1;
        }
      }
    }
  }
}

/** sum += words (a Uint32Array of the sum's length). */
function addVector(lane, words) {
  const bytes = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
  for (let off = 0; off < words.length; off += CHUNK_WORDS) {
    const n = Math.min(CHUNK_WORDS, words.length - off);
    lane.u8.set(bytes.subarray(off * 4, off * 4 + n * 4), lane.scratch);
    lane.ops.add(off * 4, lane.scratch, wholeLanes(n));
  }
}

/**
 * The SHA-256 of every leaf (leafBytes of bytes each, the last one shorter) not yet claimed, one leaf per
 * claim: ctl[3] is the next leaf to claim, ctl[4] counts the leaves done, ctl[5 + i] is 1 once leaf i's
 * digest is in out[32i, 32i + 32). onLeaf runs after each. Returns how many leaves this thread hashed.
 */
function hashLeaves(ctl, bytes, leafBytes, count, out, onLeaf) {
  let mine = 0;
  for (;;) {
    const i = Atomics.add(ctl, 3, 1);
    if (i >= count) return mine;
    hashLeaf(bytes, leafBytes, i, out);
    Atomics.store(ctl, 5 + i, 1);
    Atomics.add(ctl, 4, 1);
    mine++;
    if (onLeaf) onLeaf();
  }
}

// The digest as a "binary" string: no 32-byte Buffer (memory outside V8's heap) per leaf.
function hashLeaf(bytes, leafBytes, i, out) {
  const d = hash("sha256", bytes.subarray(i * leafBytes, Math.min(bytes.length, (i + 1) * leafBytes)), "binary");
  for (let j = 0; j < 32; j++) out[i * 32 + j] = d.charCodeAt(j);
}
`;

const WORKER_SOURCE = String.raw`
"use strict";
const { parentPort, workerData } = require("node:worker_threads");
const { createCipheriv, hash } = require("node:crypto");
${KERNEL}
const [SEQ, DONE, FAILED, NEXT_GRAIN, GRAINS_DONE, GRAINS_BY] = [0, 1, 2, 3, 4, 5];
// Bumped on every job and every range done, whichever session it is for: a session waiting behind
// another session's long unmasking sees the helper is alive.
const heartbeat = workerData.heartbeat;
const adder = workerData.adder;

function bump(ctl) {
  Atomics.add(heartbeat, 0, 1);
  Atomics.add(ctl, SEQ, 1);
  Atomics.notify(ctl, SEQ);
}

// The lane of the session last worked for (the memory arrives with every job; instantiating the adder
// over it is done once per session, and only one session's memory is kept).
let cached = { id: -1 };
function laneOf(job) {
  if (cached.id !== job.lane) {
    const ops = new WebAssembly.Instance(adder, { e: { m: job.memory } }).exports;
    cached = { id: job.lane, lane: { u8: new Uint8Array(job.memory.buffer), ops, scratch: job.scratch } };
  }
  return cached.lane;
}

parentPort.on("message", (job) => {
  const ctl = job.ctl;
  try {
    if (job.op === "add") {
      addVector(laneOf(job), job.words);
    } else if (job.op === "mask") {
      try {
        const lane = laneOf(job);
        for (;;) {
          const g = Atomics.add(ctl, NEXT_GRAIN, 1);
          if (g >= job.grains) break;
          const from = g * job.grain;
          maskRange(lane, job.length, job.seeds, job.nonces, job.signs, from, Math.min(job.length, from + job.grain));
          Atomics.add(ctl, GRAINS_BY + 1 + workerData.index, 1);
          Atomics.add(ctl, GRAINS_DONE, 1);
          bump(ctl);
        }
      } finally {
        job.seeds.fill(0);
      }
    } else if (job.op === "hash") {
      hashLeaves(ctl, job.bytes, job.leafBytes, job.count, job.out, () => bump(ctl));
    } else if (job.op === "release") {
      if (cached.id === job.lane) cached = { id: -1 };
    } else {
      throw new Error("unknown job " + job.op);
    }
  } catch (err) {
    Atomics.store(ctl, FAILED, 1);
  } finally {
    Atomics.add(ctl, DONE, 1);
    bump(ctl);
  }
});
`;

interface Lane {
  u8: Uint8Array;
  ops: Record<"add" | "sub", (dst: number, src: number, n: number) => void> & Record<"add4" | "sub4", (dst: number, src: number, n: number, stride: number) => void>;
  scratch: number;
}

interface Kernel {
  maskRange(lane: Lane, length: number, seeds: Uint8Array, nonces: Uint8Array, signs: number[], from: number, to: number): void;
  addVector(lane: Lane, words: Uint32Array): void;
  hashLeaves(ctl: Int32Array, bytes: Uint8Array, leafBytes: number, count: number, out: Uint8Array, onLeaf?: () => void): number;
  hashLeaf(bytes: Uint8Array, leafBytes: number, i: number, out: Uint8Array): void;
}

let kernel: Kernel | undefined;

function getKernel(): Kernel {
  kernel ??= new Function("createCipheriv", "hash", `"use strict";\n${KERNEL}\nreturn { maskRange, addVector, hashLeaves, hashLeaf };`)(createCipheriv, hash) as Kernel;
  return kernel;
}

interface Helper {
  worker: Worker;
  /** Its place among the helpers: which scratch area and which GRAINS_BY word are its own. */
  index: number;
  /** False once it has exited or thrown; a helper that died is not used again. */
  alive: boolean;
}

/** By index; a slot is empty until its helper is started, and again once it died (see getHelpers). */
const helpers: (Helper | undefined)[] = [];
/** Counts everything any helper finishes, for every session (see waitFor). */
let heartbeat: Int32Array | undefined;
let helpersDisabled = false;

function cores(): number {
  try {
    return availableParallelism();
  } catch {
    return cpus().length;
  }
}

/** How many helpers this process uses: none on one core (or without SIMD, or big-endian), one with FEDSYNTH_SECAGG_THREADS=2. */
export function helperCount(): number {
  if (cores() < 2 || endianness() !== "LE" || !getAdderModule()) return 0;
  const env = process.env.FEDSYNTH_SECAGG_THREADS;
  if (env === "1") return 0;
  if (env === "2") return 1;
  return MAX_HELPERS;
}

/** The helpers alive now, starting any that is not (a dead one is replaced for the next session). */
function getHelpers(): Helper[] {
  if (helpersDisabled) return [];
  const wanted = helperCount();
  if (wanted === 0) {
    helpersDisabled = true;
    return [];
  }
  heartbeat ??= new Int32Array(new SharedArrayBuffer(4));
  for (let index = 0; index < wanted; index++) {
    if (helpers[index]) continue;
    const worker = new Worker(WORKER_SOURCE, { eval: true, name: `fedsynth-secagg-helper-${index}`, workerData: { heartbeat, adder: getAdderModule(), index } });
    worker.unref();
    const h: Helper = { worker, index, alive: true };
    // Lanes that still hold it see `alive` false, or give up when it makes no progress.
    const forget = () => {
      h.alive = false;
      if (helpers[index] === h) helpers[index] = undefined;
    };
    worker.on("error", forget);
    worker.on("exit", forget);
    helpers[index] = h;
  }
  return helpers.slice(0, wanted) as Helper[];
}

/** Starts the helper threads now rather than on the first masked input (they take tens of milliseconds). */
export function warmUp(): void {
  getHelpers();
}

let nextLaneId = 0;

/**
 * One session's running sum and its share of the helpers. `undefined` from `open` means: no helper for
 * this vector, do it all on the calling thread.
 */
export class ParallelSum {
  /** The running sum, in shared memory (a view of `length` words at the start of it). */
  readonly sum: Uint32Array;
  private readonly memory: WasmMemory;
  private readonly lane: Lane;
  private readonly sumBytes: number;
  /** The helpers this lane was opened with, by index; the first adds the masked inputs. */
  private readonly helpers: readonly Helper[];
  private readonly id = nextLaneId++;
  private readonly ctl = new Int32Array(new SharedArrayBuffer(CONTROL_WORDS * 4));
  private posted = 0;

  private constructor(adder: WasmModule, length: number, helpers: readonly Helper[]) {
    // [sum, padded to 16 bytes][this thread's scratch][helper 0's scratch][helper 1's scratch]
    const sumBytes = Math.ceil((length * 4) / 16) * 16;
    const pages = Math.ceil((sumBytes + (1 + MAX_HELPERS) * SCRATCH_BYTES) / WASM_PAGE);
    this.memory = new wasm!.Memory({ initial: pages, maximum: pages, shared: true });
    this.sum = new Uint32Array(this.memory.buffer, 0, length);
    const ops = new wasm!.Instance(adder, { e: { m: this.memory } }).exports as Lane["ops"];
    this.lane = { u8: new Uint8Array(this.memory.buffer), ops, scratch: sumBytes };
    this.sumBytes = sumBytes;
    this.helpers = helpers;
  }

  /** `helpers` caps how many helpers this lane uses (for tests and comparisons); the process's count otherwise. */
  static open(length: number, options: { helpers?: number } = {}): ParallelSum | undefined {
    if (length < PARALLEL_MIN_WORDS || !Number.isSafeInteger(length) || length * 4 + (1 + MAX_HELPERS) * SCRATCH_BYTES > 65536 * WASM_PAGE) return undefined;
    const helpers = getHelpers().slice(0, options.helpers ?? MAX_HELPERS);
    if (helpers.length === 0) return undefined;
    return new ParallelSum(getAdderModule()!, length, helpers);
  }

  /** Ranges unmasked by each thread since the lane opened: [this thread, helper 0, helper 1]. */
  get unmaskedRanges(): number[] {
    return Array.from({ length: 1 + MAX_HELPERS }, (_, i) => Atomics.load(this.ctl, GRAINS_BY + i));
  }

  // Nothing is ever transferred (see above): every buffer in a job is shared memory or small.
  private post(h: Helper, op: string, fields: object): void {
    if (!h.alive) throw new FedsynthError("internal", "a secure-aggregation helper thread has stopped");
    h.worker.postMessage({ op, ctl: this.ctl, lane: this.id, memory: this.memory, scratch: this.sumBytes + (1 + h.index) * SCRATCH_BYTES, ...fields });
    this.posted++;
  }

  /**
   * Hands `masked` (already checked) to the helper, which adds it into the sum later: the caller must not
   * write into it any more (see above). One in shared memory (decodeMessage's) is shared as it is; any
   * other is copied into shared memory first.
   */
  add(masked: Uint32Array): void {
    if (masked.length !== this.sum.length) throw new FedsynthError("internal", `cannot add a vector of ${masked.length} words to one of ${this.sum.length}`);
    this.waitFor(() => this.posted - Atomics.load(this.ctl, DONE) < MAX_IN_FLIGHT, "add a masked input");
    let words = masked;
    if (!(masked.buffer instanceof SharedArrayBuffer)) {
      words = new Uint32Array(new SharedArrayBuffer(masked.byteLength));
      words.set(masked);
    }
    this.post(this.helpers[0], "add", { words });
  }

  /** Waits until every input handed over is in the sum. */
  settle(): void {
    this.waitFor(() => Atomics.load(this.ctl, DONE) === this.posted, "finish adding the masked inputs");
  }

  /**
   * applyMasks(sum, terms) of prg.ts, the vector's ranges shared between the helpers, and this thread too
   * when the lane has one helper (or one of two has died).
   */
  applyMasks(terms: readonly MaskTerm[]): void {
    this.settle();
    if (terms.length === 0) return;
    const length = this.sum.length;
    const grains = Math.ceil(length / GRAIN_WORDS);
    Atomics.store(this.ctl, NEXT_GRAIN, 0);
    Atomics.store(this.ctl, GRAINS_DONE, 0);
    const maskers = this.helpers.filter((h) => h.alive);
    if (maskers.length === 0) throw new FedsynthError("internal", "the secure-aggregation helper threads have stopped");
    // Same-sign terms next to each other, so that the kernel can take them four at a time.
    const ordered = [...terms.filter((t) => t.sign === 1), ...terms.filter((t) => t.sign === -1)];
    const seeds = new Uint8Array(ordered.length * 32);
    const nonces = new Uint8Array(ordered.length * 12);
    const signs = ordered.map((t) => t.sign);
    try {
      ordered.forEach((t, k) => {
        if (t.seed.length !== 32) throw new FedsynthError("invalid-argument", `a mask seed is 32 bytes (256 bits), not ${t.seed.length}`);
        seeds.set(t.seed, k * 32);
        nonces.set(maskNonce(t.domain), k * 12);
      });
      // Each helper gets its own copy of the seeds (structured clone) and wipes it when done.
      for (const h of maskers) this.post(h, "mask", { length, grain: GRAIN_WORDS, grains, seeds, nonces, signs });
      if (maskers.length < MAX_HELPERS) {
        const k = getKernel();
        for (;;) {
          const g = Atomics.add(this.ctl, NEXT_GRAIN, 1);
          if (g >= grains) break;
          const from = g * GRAIN_WORDS;
          k.maskRange(this.lane, length, seeds, nonces, signs, from, Math.min(length, from + GRAIN_WORDS));
          Atomics.add(this.ctl, GRAINS_BY, 1);
          Atomics.add(this.ctl, GRAINS_DONE, 1);
        }
      }
    } finally {
      seeds.fill(0);
    }
    // Wait for every range to be done (not for every helper to pick the job up: one that has not yet
    // finds nothing left to claim).
    this.waitFor(() => Atomics.load(this.ctl, GRAINS_DONE) === grains, "remove the masks");
  }

  /** Lets the helpers drop this session's memory (each keeps the last session's otherwise). */
  release(): void {
    for (const h of this.helpers) {
      try {
        if (h.alive) this.post(h, "release", {});
      } catch {
        // That helper is gone, and its memory with it.
      }
    }
  }

  private waitFor(ready: () => boolean, what: string): void {
    const beat = heartbeat;
    const progress = () => Atomics.load(this.ctl, SEQ) + (beat ? Atomics.load(beat, 0) : 0);
    let seen = progress();
    let since = Date.now();
    // SEQ is read before `ready` is checked, so a job finished in between makes the wait return at once.
    for (let seq = Atomics.load(this.ctl, SEQ); !ready(); seq = Atomics.load(this.ctl, SEQ)) {
      if (Atomics.load(this.ctl, FAILED) !== 0) throw new FedsynthError("internal", `the secure-aggregation helper thread failed to ${what}`);
      Atomics.wait(this.ctl, SEQ, seq, 1000);
      const now = progress();
      if (now !== seen) {
        seen = now;
        since = Date.now();
      } else if (Date.now() - since > STALL_MS) {
        throw new FedsynthError("internal", `the secure-aggregation helper thread made no progress for ${STALL_MS / 1000} s (while waiting to ${what})`);
      }
    }
    if (Atomics.load(this.ctl, FAILED) !== 0) throw new FedsynthError("internal", `the secure-aggregation helper thread failed to ${what}`);
  }
}

// --- the masked-input digest's leaves ---------------------------------------------------------------

/** A digest is shared out only when it has at least this many leaves. */
const PARALLEL_MIN_LEAVES = 2;
/** The shortest wait for a helper's leaf before this thread hashes it too (see hashLeaves). */
const LEAF_WAIT_MIN_MS = 0.5;
/**
 * Leaves hashed by this thread and by the helpers since the process started, and of this thread's how
 * many it hashed again because a helper was late with them (for tests and bench/secagg.mjs).
 */
const leavesHashed = { here: 0, helpers: 0, redone: 0 };

export function hashedLeaves(): { here: number; helpers: number; redone: number } {
  return { ...leavesHashed };
}

/**
 * The SHA-256 of each `leafBytes`-byte leaf of `bytes` (the last one may be shorter), concatenated: the
 * leaves of the masked-input digest (messages.ts). A long vector in shared memory (as decodeMessage leaves
 * a masked input) is hashed by this thread and a helper together (the second of two; the only one, with
 * one), each claiming the next leaf that nobody has: the one SHA-256 of a 4 MB input was the longest step
 * of receiving it, on one core. Any
 * other input, or without helpers, is hashed here alone; the bytes are the same either way. The caller must
 * not write into `bytes` until this returns. A helper that stops or stalls midway costs a short wait
 * (twice this thread's time per leaf), after which this thread hashes whatever leaves are not done.
 */
export function hashLeaves(bytes: Uint8Array, leafBytes: number): Uint8Array {
  if (!Number.isSafeInteger(leafBytes) || leafBytes <= 0) throw new FedsynthError("internal", `a digest leaf is a positive whole number of bytes, not ${leafBytes}`);
  const count = Math.ceil(bytes.length / leafBytes);
  const k = getKernel();
  const parallel = count >= PARALLEL_MIN_LEAVES && bytes.length >= PARALLEL_MIN_WORDS * 4 && bytes.buffer instanceof SharedArrayBuffer;
  const helpers = parallel ? getHelpers().filter((h) => h.alive) : [];
  if (helpers.length === 0) {
    const out = new Uint8Array(count * 32);
    for (let i = 0; i < count; i++) k.hashLeaf(bytes, leafBytes, i, out);
    leavesHashed.here += count;
    return out;
  }
  // [SEQ, DONE (jobs), FAILED, next leaf, leaves done, one flag per leaf][the leaves' digests]
  const shared = new SharedArrayBuffer((5 + count) * 4 + count * 32);
  const ctl = new Int32Array(shared, 0, 5 + count);
  const out = new Uint8Array(shared, (5 + count) * 4, count * 32);
  // With two helpers the first is left to add the inputs before this one (waking it for leaves it would
  // rarely get to cost more than it gave: three threads busy on two cores); with one, it hashes too.
  for (const h of helpers.length > 1 ? helpers.slice(1) : helpers) {
    h.worker.postMessage({ op: "hash", ctl, bytes, leafBytes, count, out });
  }
  const start = performance.now();
  let mine = k.hashLeaves(ctl, bytes, leafBytes, count, out);
  // The leaves the helpers still hash should be done within about one leaf's time. A helper that is
  // later than twice that (descheduled on a busy machine, or stopped) has its leaves hashed here too; if
  // it finishes one of them after all, it writes the same 32 bytes.
  const end = performance.now();
  const deadline = end + Math.max(LEAF_WAIT_MIN_MS, mine > 0 ? (2 * (end - start)) / mine : LEAF_WAIT_MIN_MS);
  for (let seq = Atomics.load(ctl, SEQ); Atomics.load(ctl, 4) < count; seq = Atomics.load(ctl, SEQ)) {
    const left = deadline - performance.now();
    if (left <= 0) {
      for (let i = 0; i < count; i++) {
        if (Atomics.load(ctl, 5 + i) !== 0) continue;
        k.hashLeaf(bytes, leafBytes, i, out);
        mine++;
        leavesHashed.redone++;
      }
      break;
    }
    Atomics.wait(ctl, SEQ, seq, left);
  }
  leavesHashed.here += mine;
  leavesHashed.helpers += count - mine;
  return out.slice();
}
