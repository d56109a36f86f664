/**
 * Streaming CSV output: a header of the schema's column names, then one row per write. Memory stays flat
 * however many rows are written, as long as callers await write() when it returns a promise (backpressure).
 *
 * Written by hand rather than with csv-stringify: output quoting is four characters' worth of rules
 * (RFC 4180), and csv-stringify's per-record stream transform capped `fedsynth sample` at about 50–75k
 * rows/s, below the product's 100k rows/s target. Rows go straight into ~64 KiB byte chunks: a field of
 * printable ASCII without a comma or quote is copied byte by byte, anything else is written as csvField
 * writes it, in UTF-8. Building each line as a string first (joining 20 short strings, then the lines)
 * cost more than sampling the row.
 */
import { createWriteStream } from "node:fs";
import { FedsynthError } from "../errors.js";
import type { OutputRow, Schema } from "./schema.js";

export interface CsvWriter {
  /** Queues one row (one string per schema column, "" for missing). Await the result when it is a promise. */
  write(row: OutputRow): Promise<void> | void;
  /** Flushes and closes the file; rejects if anything failed while writing. */
  close(): Promise<void>;
}

const CHUNK_BYTES = 64 * 1024;
const NEEDS_QUOTES = /[",\r\n]/;

/** A field as RFC 4180 writes it: quoted (with doubled quotes) only when it holds a comma, quote or newline. */
export function csvField(text: string): string {
  return NEEDS_QUOTES.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** ASCII codes a field copies as they are: printable characters and tab, but not a comma or quote. */
const PLAIN = Uint8Array.from({ length: 128 }, (_, c) => (c === 9 || (c >= 32 && c < 127 && c !== 44 && c !== 34) ? 1 : 0));

export function createCsvWriter(path: string, schema: Schema): CsvWriter {
  const width = schema.columns.length;
  const file = createWriteStream(path);
  let failure: FedsynthError | undefined;
  let closed = false;
  file.on("error", (err) => {
    failure ??= writeError(path, err);
  });
  // Rows go into `chunk` (bytes 0 .. used − 1); full chunks not yet handed to the stream wait in `pending`.
  let chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  let used = 0;
  const pending: Buffer[] = [];

  /**
   * Writes `text` as csvField does at `at` of the chunk, and returns where it ends: or −1 when the chunk
   * might not hold it and one byte after it (UTF-8 takes up to 3 bytes per UTF-16 unit; quotes add 2).
   */
  const field = (text: string, at: number): number => {
    const s = typeof text === "string" ? text : String(text);
    const buf = chunk;
    if (at + 3 * s.length + 3 > buf.length) return -1;
    let pos = at;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 128 && PLAIN[c] === 1) buf[pos++] = c;
      else return at + buf.write(csvField(s), at, "utf8");
    }
    return pos;
  };

  /** Writes the row's line at `at` of the chunk; returns where it ends, or −1 when it might not fit. */
  const put = (row: readonly string[], at: number): number => {
    let pos = field(row[0], at);
    for (let i = 1; i < row.length && pos >= 0; i++) {
      chunk[pos++] = 44;
      pos = field(row[i], pos);
    }
    if (pos >= 0) chunk[pos++] = 10;
    return pos;
  };

  const line = (row: readonly string[]): void => {
    let end = put(row, used);
    if (end < 0) {
      // The row goes into a new chunk (of its own size if it could be longer than one), written again.
      if (used > 0) pending.push(chunk.subarray(0, used));
      let bound = 1;
      for (const text of row) bound += 3 * String(text).length + 3;
      chunk = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, bound));
      end = put(row, 0);
    }
    used = end;
  };

  /** Resolves on the first of the events (rejecting if the stream failed), and leaves no listener behind. */
  const settle = (events: string[]): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const done = () => {
        for (const e of events) file.off(e, done);
        if (failure) reject(failure);
        else resolve();
      };
      for (const e of events) file.on(e, done);
    });

  const flush = (): Promise<void> | void => {
    if (used > 0) {
      pending.push(chunk.subarray(0, used));
      // The stream keeps the buffers it is given until they are written: the next rows go into a new chunk.
      chunk = Buffer.allocUnsafe(CHUNK_BYTES);
      used = 0;
    }
    let ok = true;
    for (const b of pending.splice(0)) ok = file.write(b) && ok;
    if (!ok) return settle(["drain", "close"]);
  };

  line(schema.columns.map((c) => c.name));
  return {
    write(row: OutputRow): Promise<void> | void {
      if (failure) throw failure;
      if (closed) throw new FedsynthError("internal", `${path}: write after close`);
      if (row.length !== width) {
        throw new FedsynthError("internal", `${path}: row has ${row.length} values but the schema has ${width} columns`);
      }
      line(row);
      if (used >= CHUNK_BYTES - 1024 || pending.length > 0) return flush();
    },
    async close(): Promise<void> {
      if (!closed) {
        closed = true;
        if (!failure) await flush();
        if (!file.destroyed) {
          const finished = settle(["finish", "close"]);
          file.end();
          await finished.catch(() => undefined);
        }
      }
      if (failure) throw failure;
    },
  };
}

/**
 * A number as written to CSV: integers without decimals; otherwise at most 6 decimals, trailing zeros
 * removed, no exponent (for |value| < 1e21).
 */
export function formatNumber(value: number, integer: boolean): string {
  if (!Number.isFinite(value)) throw new FedsynthError("internal", `cannot write the non-finite number ${value} to CSV`);
  let s = integer ? Math.round(value).toFixed(0) : value.toFixed(6);
  if (s.includes(".") && !s.includes("e")) s = s.replace(/0+$/, "").replace(/\.$/, "");
  return s === "-0" ? "0" : s;
}

function writeError(path: string, err: unknown): FedsynthError {
  if (err instanceof FedsynthError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return new FedsynthError(code === "ENOENT" ? "not-found" : "internal", `${path}: cannot write the CSV file: ${message}`, {
    hint: code === "ENOENT" ? "Check that the output directory exists." : "Check the output path, permissions and free disk space.",
    location: { file: path },
    cause: err,
  });
}
