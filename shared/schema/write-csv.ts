/**
 * Streaming CSV output: a header of the schema's column names, then one row per write. Memory stays flat
 * however many rows are written, as long as callers await write() when it returns a promise (backpressure).
 */
import { createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import { stringify } from "csv-stringify";
import { FedsynthError } from "../errors.js";
import type { OutputRow, Schema } from "./schema.js";

export interface CsvWriter {
  /** Queues one row (one string per schema column, "" for missing). Await the result when it is a promise. */
  write(row: OutputRow): Promise<void> | void;
  /** Flushes and closes the file; rejects if anything failed while writing. */
  close(): Promise<void>;
}

export function createCsvWriter(path: string, schema: Schema): CsvWriter {
  const width = schema.columns.length;
  const stringifier = stringify({
    header: true,
    columns: schema.columns.map((c) => c.name),
    record_delimiter: "unix",
  });
  const file = createWriteStream(path);
  let failure: FedsynthError | undefined;
  let closed = false;
  const done = pipeline(stringifier, file).catch((err: unknown) => {
    failure ??= writeError(path, err);
  });

  const waitDrain = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const settle = () => {
        stringifier.off("drain", settle);
        stringifier.off("close", settle);
        if (failure) reject(failure);
        else resolve();
      };
      stringifier.on("drain", settle);
      stringifier.on("close", settle);
    });

  return {
    write(row: OutputRow): Promise<void> | void {
      if (failure) throw failure;
      if (closed) throw new FedsynthError("internal", `${path}: write after close`);
      if (row.length !== width) {
        throw new FedsynthError("internal", `${path}: row has ${row.length} values but the schema has ${width} columns`);
      }
      if (!stringifier.write(row)) return waitDrain();
    },
    async close(): Promise<void> {
      if (!closed) {
        closed = true;
        stringifier.end();
      }
      await done;
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
