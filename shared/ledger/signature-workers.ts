/**
 * Ed25519 verification on worker threads. Checking signatures is most of the work of verifying a
 * ledger (OpenSSL takes ~0.2 ms per signature on a small machine, and nearly every entry is a signed
 * charge), and each check is independent, so the checks are sent out in chunks as the audit meets them
 * and the audit itself goes on meanwhile.
 *
 * The worker is a few lines of plain JavaScript run with `eval`, so it needs no build step or loader
 * (the same code serves the compiled dist/ and the TypeScript sources under vitest). It verifies
 * exactly as shared/crypto/identity.ts's verifyDetached does: node:crypto Ed25519 over the raw key.
 * If a worker dies, its unanswered chunks are verified on the main thread instead: never assumed good.
 */
import { Worker } from "node:worker_threads";
import { verifyDetached } from "../crypto/identity.js";

const CHUNK = 256;

const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { createPublicKey, verify } = require("node:crypto");
const SPKI = Buffer.from("302a300506032b6570032100", "hex");
const keys = new Map();
parentPort.on("message", ({ id, messages, offsets, signatures, publicKeys }) => {
  const n = offsets.length - 1;
  const verdicts = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const raw = publicKeys.subarray(32 * i, 32 * i + 32);
    const hex = Buffer.from(raw).toString("hex");
    let key = keys.get(hex);
    try {
      if (!key) keys.set(hex, (key = createPublicKey({ key: Buffer.concat([SPKI, raw]), format: "der", type: "spki" })));
      verdicts[i] = verify(null, messages.subarray(offsets[i], offsets[i + 1]), key, signatures.subarray(64 * i, 64 * i + 64)) ? 1 : 0;
    } catch {
      verdicts[i] = 0;
    }
  }
  parentPort.postMessage({ id, verdicts }, [verdicts.buffer]);
});
`;

interface Job {
  message: Uint8Array;
  signature: Uint8Array;
  publicKey: Uint8Array;
}

interface Chunk {
  /** Job number of jobs[0]. */
  first: number;
  jobs: Job[];
  worker: number;
  done: boolean;
  settled: Promise<void>;
  settle: () => void;
}

export class SignatureWorkers {
  private readonly workers: Worker[] = [];
  private readonly chunks: Chunk[] = [];
  private readonly dead = new Set<number>();
  private queue: Job[] = [];
  private verdicts = new Uint8Array(1024);
  private jobs = 0;

  constructor(threads: number) {
    for (let w = 0; w < Math.max(1, threads); w++) {
      const worker = new Worker(WORKER_SOURCE, { eval: true });
      worker.on("message", ({ id, verdicts }: { id: number; verdicts: Uint8Array }) => {
        const chunk = this.chunks[id];
        if (chunk && verdicts?.length === chunk.jobs.length) this.record(chunk, verdicts);
        else if (chunk) this.verifyHere(chunk);
      });
      worker.on("error", () => this.abandon(w));
      worker.on("exit", () => this.abandon(w));
      this.workers.push(worker);
    }
  }

  /** Queues one check (raw 64-byte signature, 32-byte key); returns its job number. */
  add(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): number {
    this.queue.push({ message, signature, publicKey });
    const job = this.jobs++;
    if (this.queue.length >= CHUNK) this.send();
    return job;
  }

  /** Every job's verdict (1: the signature holds), by job number; then the workers are stopped. */
  async finish(): Promise<Uint8Array> {
    if (this.queue.length > 0) this.send();
    await Promise.all(this.chunks.map((c) => c.settled));
    await Promise.all(this.workers.map((w) => w.terminate()));
    return this.verdicts.subarray(0, this.jobs);
  }

  /** Stops the workers without waiting for answers (when the verdicts are no longer needed). */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private send(): void {
    const jobs = this.queue;
    this.queue = [];
    const id = this.chunks.length;
    const alive = this.workers.map((_, w) => w).filter((w) => !this.dead.has(w));
    const worker = alive.length > 0 ? alive[id % alive.length] : -1;
    let settle = () => {};
    const settled = new Promise<void>((resolve) => (settle = resolve));
    const chunk: Chunk = { first: this.jobs - jobs.length, jobs, worker, done: false, settled, settle };
    this.chunks.push(chunk);
    if (worker < 0) return this.verifyHere(chunk);
    const offsets = new Uint32Array(jobs.length + 1);
    jobs.forEach((j, i) => (offsets[i + 1] = offsets[i] + j.message.length));
    const messages = new Uint8Array(offsets[jobs.length]);
    const signatures = new Uint8Array(64 * jobs.length);
    const publicKeys = new Uint8Array(32 * jobs.length);
    jobs.forEach((j, i) => {
      messages.set(j.message, offsets[i]);
      signatures.set(j.signature, 64 * i);
      publicKeys.set(j.publicKey, 32 * i);
    });
    this.workers[worker].postMessage({ id, messages, offsets, signatures, publicKeys }, [messages.buffer, offsets.buffer, signatures.buffer, publicKeys.buffer]);
  }

  /** A worker stopped: whatever it had not answered is verified here. */
  private abandon(worker: number): void {
    this.dead.add(worker);
    for (const chunk of this.chunks) {
      if (chunk.worker === worker && !chunk.done) this.verifyHere(chunk);
    }
  }

  private verifyHere(chunk: Chunk): void {
    this.record(chunk, Uint8Array.from(chunk.jobs, (j) => (verifyDetached(j.message, j.signature, j.publicKey) ? 1 : 0)));
  }

  private record(chunk: Chunk, verdicts: Uint8Array): void {
    if (chunk.done) return;
    const end = chunk.first + chunk.jobs.length;
    if (end > this.verdicts.length) {
      const grown = new Uint8Array(Math.max(end, 2 * this.verdicts.length));
      grown.set(this.verdicts);
      this.verdicts = grown;
    }
    this.verdicts.set(verdicts, chunk.first);
    chunk.done = true;
    chunk.settle();
  }
}
