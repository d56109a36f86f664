/**
 * Reading a site's CSV file through the schema. The file is streamed (read once, memory grows only with
 * the table itself); every problem is a FedsynthError whose message starts with "file:line, column 'x'".
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parse as parseStream, type CsvError, type Options as CsvOptions } from "csv-parse";
import { parse as parseSync } from "csv-parse/sync";
import { FedsynthError, formatLocation, type ErrorLocation } from "../errors.js";
import type { Cell, Column, Schema, Table } from "./schema.js";
import { numericGrid, type NumericGrid } from "./bins.js";

export interface DataWarning {
  message: string;
  location?: ErrorLocation;
}

export interface ReadResult {
  table: Table;
  warnings: DataWarning[];
  /** Per numeric column name: how many values were clipped to [min, max]. */
  clipped: Record<string, number>;
  /** Header names (trimmed) that are not in the schema, in file order. */
  ignoredColumns: string[];
}

export interface ReadOptions {
  onWarning?: (w: DataWarning) => void;
}

/** Reads and validates a CSV file against the schema, streaming it. */
export async function readTable(path: string, schema: Schema, opts: ReadOptions = {}): Promise<ReadResult> {
  try {
    const st = await stat(path);
    if (!st.isFile()) {
      throw new FedsynthError("invalid-argument", `${path}: not a regular file`, {
        hint: "Give the path of the site's CSV file.",
        location: { file: path },
      });
    }
  } catch (err) {
    if (err instanceof FedsynthError) throw err;
    throw fileError(path, err);
  }

  const reader = new TableReader(path, schema, opts.onWarning);
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      // Stop reading as soon as a row has been rejected.
      if (reader.failure) return cb(reader.failure);
      reader.lines.feed(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      reader.lines.end();
      cb();
    },
  });
  const parser = parseStream(reader.csvOptions());
  const sink = new Writable({ objectMode: true, write: (_r, _e, cb) => cb() });
  try {
    await pipeline(createReadStream(path), counter, parser, sink);
  } catch (err) {
    if (reader.failure) throw reader.failure;
    if (err instanceof FedsynthError) throw err;
    if (isCsvError(err)) throw reader.csvError(err);
    throw fileError(path, err);
  }
  return reader.finish();
}

/** Parses CSV text against the schema; `source` names the file in messages. */
export function parseTable(text: string, source: string, schema: Schema, opts: ReadOptions = {}): ReadResult {
  const reader = new TableReader(source, schema, opts.onWarning);
  const buf = Buffer.from(text, "utf8");
  reader.lines.feed(buf);
  reader.lines.end();
  try {
    parseSync(buf, reader.csvOptions());
  } catch (err) {
    if (reader.failure) throw reader.failure;
    if (isCsvError(err)) throw reader.csvError(err);
    throw err;
  }
  return reader.finish();
}

/** Values within this fraction of a step from a grid value count as on the grid (decimal text vs binary doubles). */
const GRID_TOLERANCE = 1e-6;

/** Strict decimal number syntax: optional sign, digits with optional fraction, optional exponent. */
const NUMBER_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** The number written in `text` (already trimmed), or undefined if it is not a plain finite decimal number. */
export function parseStrictNumber(text: string): number | undefined {
  if (!NUMBER_RE.test(text)) return undefined;
  const v = Number(text);
  return Number.isFinite(v) ? v : undefined;
}

interface ColumnState {
  column: Column;
  /** Index of the column in the CSV header. */
  field: number;
  cells: Cell[];
  clipped: number;
  firstClippedLine?: number;
  rounded: number;
  firstRoundedLine?: number;
  /** Columns with a "step" (other than an integer column's default 1): values are snapped to this grid. */
  grid?: NumericGrid;
  snapped: number;
  firstSnappedLine?: number;
  /** Categorical: exact text → index, and numeric value → index for float-written categories. */
  exact?: Map<string, number>;
  numeric?: Map<number, number>;
  lo?: number;
  hi?: number;
}

/** The per-record logic shared by the streaming and the in-memory reader. */
class TableReader {
  readonly lines = new LineCounter();
  failure: FedsynthError | undefined;
  private readonly missing: Set<string>;
  private readonly warnings: DataWarning[] = [];
  private states: ColumnState[] | undefined;
  private header: string[] | undefined;
  private headerLine = 1;
  private ignored: string[] = [];
  private rowCount = 0;
  /** Byte offset just after the last accepted record, and csv-parse's empty-line count at that point. */
  private prevEnd = 0;
  private prevEmpty = 0;

  constructor(
    private readonly file: string,
    private readonly schema: Schema,
    private readonly onWarning?: (w: DataWarning) => void,
  ) {
    this.missing = new Set(schema.missing);
  }

  csvOptions(): CsvOptions {
    return {
      bom: true,
      skip_empty_lines: true,
      relax_column_count: false,
      on_record: (record: string[], ctx) => {
        if (this.failure) return null;
        const line = this.lines.lineAt(this.prevEnd) + (ctx.empty_lines - this.prevEmpty);
        try {
          if (this.header === undefined) this.onHeader(record, line);
          else this.onRow(record, line);
        } catch (err) {
          // csv-parse swallows exceptions thrown here; keep the first one and stop.
          this.failure = err instanceof FedsynthError ? err : FedsynthError.from(err);
          return null;
        }
        this.prevEnd = ctx.bytes;
        this.prevEmpty = ctx.empty_lines;
        return null;
      },
    };
  }

  /** Start line of the record csv-parse failed on. */
  private failedRecordLine(err: CsvError): number {
    const empty = typeof (err as unknown as { empty_lines?: number }).empty_lines === "number"
      ? (err as unknown as { empty_lines: number }).empty_lines
      : this.prevEmpty;
    return this.lines.lineAt(this.prevEnd) + Math.max(0, empty - this.prevEmpty);
  }

  csvError(err: CsvError): FedsynthError {
    const line = this.failedRecordLine(err);
    const loc: ErrorLocation = { file: this.file, line };
    const e = err as unknown as { record?: unknown; column?: unknown };
    let message: string;
    let hint: string;
    switch (err.code) {
      case "CSV_RECORD_INCONSISTENT_FIELDS_LENGTH": {
        const got = Array.isArray(e.record) ? e.record.length : undefined;
        const expected = this.header?.length;
        message = `${formatLocation(loc)}: row has ${got ?? "a different number of"} field${got === 1 ? "" : "s"} but the header has ${expected ?? "a different number"}`;
        hint = "Every row needs the same number of comma-separated fields as the header; fields containing commas must be in double quotes.";
        break;
      }
      case "CSV_QUOTE_NOT_CLOSED":
        message = `${formatLocation(loc)}: a quoted field in the row starting on this line is never closed (reached the end of the file)`;
        hint = 'Close the quote; a double quote inside a quoted field is written as "".';
        break;
      case "INVALID_OPENING_QUOTE":
      case "CSV_INVALID_CLOSING_QUOTE": {
        if (typeof e.column === "number" && this.header && e.column < this.header.length) loc.column = this.header[e.column];
        const what =
          err.code === "INVALID_OPENING_QUOTE"
            ? "a double quote inside a field that does not start with a quote"
            : "characters after the closing quote of a quoted field";
        message = `${formatLocation(loc)}: malformed CSV: ${what}`;
        hint = 'Quote the whole field ("like this"); a double quote inside a quoted field is written as "".';
        break;
      }
      default:
        message = `${formatLocation(loc)}: malformed CSV: ${err.message}`;
        hint = "Check that the file is comma-separated text with a header row.";
    }
    return new FedsynthError("invalid-data", message, { hint, location: loc, cause: err });
  }

  private warn(w: DataWarning): void {
    this.warnings.push(w);
    this.onWarning?.(w);
  }

  private onHeader(record: string[], line: number): void {
    this.headerLine = line;
    const names = record.map((h) => h.trim());
    const firstIndex = new Map<string, number>();
    names.forEach((n, i) => {
      const prev = firstIndex.get(n);
      if (prev !== undefined) {
        throw new FedsynthError(
          "invalid-data",
          `${formatLocation({ file: this.file, line, column: n })}: the header names this column twice (fields ${prev + 1} and ${i + 1})`,
          { hint: "Rename or remove one of the two columns so that header names are unique.", location: { file: this.file, line, column: n } },
        );
      }
      firstIndex.set(n, i);
    });

    const absent = this.schema.columns.filter((c) => !firstIndex.has(c.name));
    if (absent.length > 0) {
      const found = names.length > 40 ? `${names.slice(0, 40).join(", ")}, … (${names.length} columns)` : names.join(", ");
      const lower = new Map(names.map((n) => [n.toLowerCase(), n]));
      const suggestions = absent
        .map((c) => (lower.has(c.name.toLowerCase()) ? `'${lower.get(c.name.toLowerCase())}' for '${c.name}'` : undefined))
        .filter((s): s is string => s !== undefined);
      const loc: ErrorLocation = { file: this.file, line, column: absent[0].name };
      const what =
        absent.length === 1
          ? `${formatLocation(loc)}: the schema column is missing from the header`
          : `${formatLocation({ file: this.file, line })}: schema columns missing from the header: ${absent.map((c) => `'${c.name}'`).join(", ")}`;
      throw new FedsynthError("invalid-data", `${what} (header found: ${found})`, {
        hint:
          suggestions.length > 0
            ? `Header names are case-sensitive: found ${suggestions.join(", ")}. Rename the header to match the schema.`
            : "The CSV needs a header row naming every schema column (order does not matter; extra columns are ignored).",
        location: loc,
      });
    }

    const inSchema = new Set(this.schema.columns.map((c) => c.name));
    this.ignored = names.filter((n) => !inSchema.has(n));
    if (this.ignored.length > 0) {
      this.warn({
        message: `${formatLocation({ file: this.file, line })}: ignoring ${this.ignored.length} column${this.ignored.length === 1 ? "" : "s"} not in the schema: ${this.ignored.map((n) => `'${n}'`).join(", ")}`,
        location: { file: this.file, line },
      });
    }

    this.header = names;
    this.states = this.schema.columns.map((column) => {
      const state: ColumnState = { column, field: firstIndex.get(column.name)!, cells: [], clipped: 0, rounded: 0, snapped: 0 };
      if (column.type === "categorical") {
        state.exact = new Map(column.values.map((v, k) => [v, k]));
        state.numeric = new Map();
        column.values.forEach((v, k) => {
          const n = parseStrictNumber(v);
          if (n !== undefined && !state.numeric!.has(n)) state.numeric!.set(n, k);
        });
      } else if (column.integer) {
        state.lo = Math.ceil(column.min);
        state.hi = Math.floor(column.max);
      } else {
        state.lo = column.min;
        state.hi = column.max;
      }
      if (column.type === "numeric" && column.step !== undefined && !(column.integer && column.step === 1)) {
        state.grid = numericGrid(column);
      }
      return state;
    });
  }

  private onRow(record: string[], line: number): void {
    for (const s of this.states!) {
      const text = record[s.field].trim();
      if (this.missing.has(text)) {
        s.cells.push(null);
        continue;
      }
      const column = s.column;
      if (column.type === "categorical") {
        let k = s.exact!.get(text);
        if (k === undefined) {
          const n = parseStrictNumber(text);
          if (n !== undefined) k = s.numeric!.get(n);
        }
        if (k === undefined) {
          const loc = { file: this.file, line, column: column.name };
          const allowed = column.values.length > 30 ? `${column.values.slice(0, 30).join(", ")}, …` : column.values.join(", ");
          throw new FedsynthError(
            "invalid-data",
            `${formatLocation(loc)}: category ${quoteCell(text)} is not in the schema (allowed: ${allowed})`,
            { hint: `Use one of the schema's values, or a missing token (${this.missingList()}) for an unknown value; if the category is real, the consortium must add it to the schema.`, location: loc },
          );
        }
        s.cells.push(k);
      } else {
        let v = parseStrictNumber(text);
        if (v === undefined) {
          const loc = { file: this.file, line, column: column.name };
          throw new FedsynthError("invalid-data", `${formatLocation(loc)}: ${quoteCell(text)} is not a number`, {
            hint: `Write a plain decimal number (e.g. 63, 2.5, -1e3), or a missing token (${this.missingList()}) for a missing value.`,
            location: loc,
          });
        }
        if (column.integer && !Number.isInteger(v)) {
          v = Math.round(v);
          if (s.rounded++ === 0) s.firstRoundedLine = line;
        }
        if (v < s.lo!) {
          v = s.lo!;
          if (s.clipped++ === 0) s.firstClippedLine = line;
        } else if (v > s.hi!) {
          v = s.hi!;
          if (s.clipped++ === 0) s.firstClippedLine = line;
        }
        if (s.grid) {
          // The nearest grid value (min + k·step), which lies within the bounds.
          const snapped = s.grid.value(s.grid.index(v));
          if (Math.abs(snapped - v) > GRID_TOLERANCE * s.grid.step && s.snapped++ === 0) s.firstSnappedLine = line;
          v = snapped;
        }
        s.cells.push(v === 0 ? 0 : v); // no -0
      }
    }
    this.rowCount++;
  }

  private missingList(): string {
    return this.schema.missing.length === 0 ? "none defined" : this.schema.missing.map((m) => JSON.stringify(m)).join(", ");
  }

  finish(): ReadResult {
    if (this.failure) throw this.failure;
    if (this.header === undefined || this.rowCount === 0) {
      const detail = this.header === undefined ? "the file is empty" : `only a header on line ${this.headerLine}`;
      throw new FedsynthError("invalid-data", `${this.file}: has no data rows (${detail})`, {
        hint: "The CSV needs a header row followed by one row per patient.",
        location: { file: this.file },
      });
    }
    const clipped: Record<string, number> = {};
    for (const s of this.states!) {
      const column = s.column;
      if (column.type !== "numeric") continue;
      clipped[column.name] = s.clipped;
      if (s.rounded > 0) {
        const loc = { file: this.file, line: s.firstRoundedLine, column: column.name };
        this.warn({
          message: `${formatLocation({ file: this.file, column: column.name })}: ${s.rounded} non-integer value${s.rounded === 1 ? " was" : "s were"} rounded to the nearest integer (first on line ${s.firstRoundedLine})`,
          location: loc,
        });
      }
      if (s.snapped > 0) {
        const loc = { file: this.file, line: s.firstSnappedLine, column: column.name };
        const origin = column.integer ? Math.ceil(column.min) : column.min;
        this.warn({
          message: `${formatLocation({ file: this.file, column: column.name })}: ${s.snapped} value${s.snapped === 1 ? " was" : "s were"} snapped to the nearest multiple of the step ${column.step} from ${origin} (first on line ${s.firstSnappedLine})`,
          location: loc,
        });
      }
      if (s.clipped > 0) {
        const loc = { file: this.file, line: s.firstClippedLine, column: column.name };
        this.warn({
          message: `${formatLocation({ file: this.file, column: column.name })}: ${s.clipped} value${s.clipped === 1 ? "" : "s"} outside [${column.min}, ${column.max}] clipped to the bounds (first on line ${s.firstClippedLine})`,
          location: loc,
        });
      }
    }
    const table: Table = { schema: this.schema, rowCount: this.rowCount, columns: this.states!.map((s) => s.cells) };
    return { table, warnings: this.warnings, clipped, ignoredColumns: this.ignored };
  }
}

/**
 * Maps byte offsets to 1-based line numbers. Fed the same bytes as csv-parse; "\n", "\r\n" and a lone "\r"
 * each end a line. Queries must be non-decreasing, so consumed break positions can be dropped.
 */
class LineCounter {
  /** Offsets of line breaks (of the "\n" for "\r\n"), ascending; entries before `head` are consumed. */
  private breaks: number[] = [];
  private head = 0;
  private dropped = 0;
  private offset = 0;
  private pendingCR = -1;

  feed(buf: Buffer): void {
    const n = buf.length;
    if (n === 0) return;
    let i = 0;
    if (this.pendingCR >= 0) {
      if (buf[0] === 0x0a) {
        this.breaks.push(this.offset);
        i = 1;
      } else {
        this.breaks.push(this.pendingCR);
      }
      this.pendingCR = -1;
    }
    if (buf.indexOf(0x0d, i) === -1) {
      for (let j = buf.indexOf(0x0a, i); j !== -1; j = buf.indexOf(0x0a, j + 1)) this.breaks.push(this.offset + j);
    } else {
      for (; i < n; i++) {
        const c = buf[i];
        if (c === 0x0a) this.breaks.push(this.offset + i);
        else if (c === 0x0d) {
          if (i + 1 < n) {
            if (buf[i + 1] === 0x0a) {
              this.breaks.push(this.offset + i + 1);
              i++;
            } else this.breaks.push(this.offset + i);
          } else this.pendingCR = this.offset + i;
        }
      }
    }
    this.offset += n;
  }

  end(): void {
    if (this.pendingCR >= 0) this.breaks.push(this.pendingCR);
    this.pendingCR = -1;
  }

  /** Line holding the byte at `offset`. */
  lineAt(offset: number): number {
    const b = this.breaks;
    while (this.head < b.length && b[this.head] < offset) this.head++;
    const line = 1 + this.dropped + this.head;
    if (this.head > 4096 && this.head * 2 > b.length) {
      this.breaks = b.slice(this.head);
      this.dropped += this.head;
      this.head = 0;
    }
    return line;
  }
}

function quoteCell(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}

function isCsvError(err: unknown): err is CsvError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === "string" && "lines" in err;
}

function fileError(path: string, err: unknown): FedsynthError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOENT") {
    return new FedsynthError("not-found", `${path}: file not found`, {
      hint: "Check the path to the site's CSV file.",
      location: { file: path },
      cause: err,
    });
  }
  if (code === "EISDIR") {
    return new FedsynthError("invalid-argument", `${path}: is a directory, not a CSV file`, {
      hint: "Give the path of the site's CSV file.",
      location: { file: path },
      cause: err,
    });
  }
  return new FedsynthError("invalid-argument", `${path}: cannot read the file: ${err instanceof Error ? err.message : String(err)}`, {
    hint: "Check that the file exists and is readable.",
    location: { file: path },
    cause: err,
  });
}
