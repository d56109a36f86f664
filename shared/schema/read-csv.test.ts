import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FedsynthError } from "../errors.js";
import { loadSchema } from "./parse-schema.js";
import { parseStrictNumber, parseTable, readTable, type DataWarning } from "./read-csv.js";
import type { Schema } from "./schema.js";

const schema: Schema = {
  columns: [
    { name: "age", type: "numeric", min: 0, max: 120, integer: true },
    { name: "sex", type: "categorical", values: ["0", "1"] },
    { name: "oldpeak", type: "numeric", min: -3, max: 7, integer: false },
    { name: "cp", type: "categorical", values: ["1", "2", "3", "4"] },
  ],
  missing: ["", "?", "NA"],
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "fedsynth-csv-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let fileCounter = 0;
/** Writes `text` to a fresh directory as `name` and returns the path. */
async function csvFile(text: string | Buffer, name = "site.csv"): Promise<string> {
  const sub = join(dir, String(fileCounter++));
  await mkdir(sub, { recursive: true });
  const path = join(sub, name);
  await writeFile(path, text);
  return path;
}

/** Reads through both entry points (streaming file and in-memory text); both must fail the same way. */
async function readError(text: string, s: Schema = schema): Promise<FedsynthError> {
  const path = await csvFile(text);
  const err = await readTable(path, s).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(FedsynthError);
  let syncErr: unknown;
  try {
    parseTable(text, path, s);
  } catch (e) {
    syncErr = e;
  }
  expect(syncErr).toBeInstanceOf(FedsynthError);
  expect((syncErr as FedsynthError).message).toBe((err as FedsynthError).message);
  const e = err as FedsynthError;
  expect(e.message).toContain("site.csv");
  expect(e.hint).toBeTruthy();
  expect(e.location?.file).toBe(path);
  return e;
}

const HEADER = "age,sex,oldpeak,cp";

describe("parseTable / readTable", () => {
  it("reads cells column-major: numbers, category indices and nulls", async () => {
    const text = `${HEADER}\n63,1,2.3,1\n67,0,1.5,4\n?,NA,,3\n`;
    const path = await csvFile(text);
    const r = await readTable(path, schema);
    expect(r.table.rowCount).toBe(3);
    expect(r.table.schema).toBe(schema);
    expect(r.table.columns).toEqual([
      [63, 67, null],
      [1, 0, null],
      [2.3, 1.5, null],
      [0, 3, 2],
    ]);
    expect(r.warnings).toEqual([]);
    expect(r.ignoredColumns).toEqual([]);
    expect(r.clipped).toEqual({ age: 0, oldpeak: 0 });
    expect(parseTable(text, path, schema)).toEqual(r);
  });

  it("matches columns by trimmed header name in any order, and trims cells", () => {
    const r = parseTable(` cp , oldpeak,sex ,age\n" 2 ", 0.5 , 1, 40 \n 3, NA ,0,?\n`, "site.csv", schema);
    expect(r.table.columns).toEqual([
      [40, null],
      [1, 0],
      [0.5, null],
      [1, 2],
    ]);
  });

  it("ignores extra columns with one warning naming them", () => {
    const warnings: DataWarning[] = [];
    const r = parseTable(`id,${HEADER},site\n1,63,1,2.3,1,x\n2,50,0,0,2,y\n`, "site.csv", schema, { onWarning: (w) => warnings.push(w) });
    expect(r.ignoredColumns).toEqual(["id", "site"]);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0].message).toContain("site.csv:1");
    expect(r.warnings[0].message).toContain("'id', 'site'");
    expect(warnings).toEqual(r.warnings);
    expect(r.table.columns[0]).toEqual([63, 50]);
  });

  it("accepts float-formatted categories", () => {
    const r = parseTable(`${HEADER}\n63.0,1.0,2.3,4.0\n50,0.0,0,1e0\n`, "site.csv", schema);
    expect(r.table.columns[1]).toEqual([1, 0]);
    expect(r.table.columns[3]).toEqual([3, 0]);
    expect(r.table.columns[0]).toEqual([63, 50]);
    expect(r.warnings).toEqual([]);
  });

  it("prefers an exact category match over a numeric one", () => {
    const s: Schema = { columns: [{ name: "g", type: "categorical", values: ["1.0", "1"] }], missing: [""] };
    expect(parseTable("g\n1\n1.0\n01\n", "site.csv", s).table.columns[0]).toEqual([1, 0, 0]);
  });

  it("clips out-of-range values, counts them, and warns once per column", () => {
    const warnings: DataWarning[] = [];
    const text = `${HEADER}\n130,1,8,1\n-5,0,-4,1\n150,0,7,1\n40,0,-3,1\n`;
    const r = parseTable(text, "site.csv", schema, { onWarning: (w) => warnings.push(w) });
    expect(r.table.columns[0]).toEqual([120, 0, 120, 40]);
    expect(r.table.columns[2]).toEqual([7, -3, 7, -3]);
    expect(r.clipped).toEqual({ age: 3, oldpeak: 2 });
    expect(r.warnings).toHaveLength(2);
    expect(r.warnings[0].message).toContain("column 'age'");
    expect(r.warnings[0].message).toContain("3 values outside [0, 120]");
    expect(r.warnings[0].message).toContain("first on line 2");
    expect(r.warnings[0].location).toEqual({ file: "site.csv", line: 2, column: "age" });
    expect(r.warnings[1].message).toContain("column 'oldpeak'");
    expect(warnings).toEqual(r.warnings);
  });

  it("rounds non-integer values of integer columns with a summary warning", () => {
    const r = parseTable(`${HEADER}\n63.4,1,0,1\n63.5,1,0,1\n64,1,0,1\n120.4,1,0,1\n120.6,1,0,1\n`, "site.csv", schema);
    expect(r.table.columns[0]).toEqual([63, 64, 64, 120, 120]);
    expect(r.clipped.age).toBe(1);
    const rounding = r.warnings.find((w) => w.message.includes("rounded"));
    expect(rounding?.message).toContain("column 'age'");
    expect(rounding?.message).toContain("4 non-integer values were rounded");
    expect(rounding?.location?.line).toBe(2);
  });

  it("snaps values of a column with a step to the grid min + k·step, with a summary warning", () => {
    const s: Schema = {
      columns: [
        { name: "oldpeak", type: "numeric", min: -3, max: 7, integer: false, step: 0.1 },
        { name: "bp", type: "numeric", min: 80, max: 225, integer: true, step: 10 },
        { name: "x", type: "numeric", min: 0.05, max: 1, integer: false, step: 0.25 },
      ],
      missing: [""],
    };
    const text = "oldpeak,bp,x\n0,120,0.05\n1.2,125.4,0.3\n0.14,134,1\n-2.96,80,0.55\n2.3,224,\n7.04,79,0.8\n";
    const r = parseTable(text, "site.csv", s);
    expect(r.table.columns[0]).toEqual([0, 1.2, 0.1, -3, 2.3, 7]);
    // Integer: rounded first (125.4 → 125), then snapped (125 → 130, the nearest of 120/130; ties go up).
    expect(r.table.columns[1]).toEqual([120, 130, 130, 80, 220, 80]);
    // Grid 0.05, 0.3, 0.55, 0.8 (1 is off the grid: its nearest grid value within the bounds is 0.8).
    expect(r.table.columns[2]).toEqual([0.05, 0.3, 0.8, 0.55, null, 0.8]);
    const warning = (column: string) => r.warnings.find((w) => w.message.includes("snapped") && w.location?.column === column);
    // 0.14 and -2.96 are snapped; 7.04 is clipped to 7, on the grid.
    expect(warning("oldpeak")?.message).toBe("site.csv, column 'oldpeak': 2 values were snapped to the nearest multiple of the step 0.1 from -3 (first on line 4)");
    expect(warning("oldpeak")?.location).toEqual({ file: "site.csv", line: 4, column: "oldpeak" });
    // 125 → 130, 134 → 130, 224 → 220 (225 is not on the grid); 79 is clipped to 80, on the grid.
    expect(warning("bp")?.message).toContain("3 values were snapped to the nearest multiple of the step 10 from 80 (first on line 3)");
    expect(r.warnings.find((w) => w.message.includes("rounded"))?.message).toContain("1 non-integer value was rounded");
    expect(warning("x")?.message).toContain("1 value was snapped");
    expect(r.clipped).toEqual({ oldpeak: 1, bp: 1, x: 0 });
    // Values written at the grid's resolution are not snapped, whatever their binary rounding.
    const clean = parseTable("oldpeak,bp,x\n0.3,100,0.3\n0.7,100,0.3\n-2.9,100,0.3\n6.9,100,0.3\n", "site.csv", s);
    expect(clean.table.columns[0]).toEqual([0.3, 0.7, -2.9, 6.9]);
    expect(clean.warnings).toEqual([]);
  });

  it("clips integer columns to the whole numbers inside fractional bounds", () => {
    const s: Schema = { columns: [{ name: "x", type: "numeric", min: 0.5, max: 3.5, integer: true }], missing: [""] };
    const r = parseTable("x\n0.2\n3.6\n2\n", "site.csv", s);
    expect(r.table.columns[0]).toEqual([1, 3, 2]);
    expect(r.clipped.x).toBe(2);
  });

  it.each(["63.0", "-1.5", "1e3", "  42  ", "+5", ".5", "5.", "1E-2"])("accepts the number %j", (cell) => {
    const s: Schema = { columns: [{ name: "x", type: "numeric", min: -1e6, max: 1e6, integer: false }], missing: ["?"] };
    const r = parseTable(`x\n"${cell}"\n`, "site.csv", s);
    expect(r.table.columns[0][0]).toBe(Number(cell.trim()));
  });

  it.each(["abc", "12abc", "0x10", "Infinity", "-Infinity", "NaN", "1e999", "1,5", "", "1 2", "--1", "1e"])("rejects the number %j", async (cell) => {
    const s: Schema = { columns: [{ name: "x", type: "numeric", min: 0, max: 10, integer: false }, { name: "y", type: "categorical", values: ["a"] }], missing: ["?"] };
    const e = await readError(`x,y\n1,a\n2,a\n"${cell}",a\n`, s);
    expect(e.code).toBe("invalid-data");
    expect(e.message).toContain("site.csv:4");
    expect(e.message).toContain("column 'x'");
    expect(e.message).toContain(`${JSON.stringify(cell)} is not a number`);
    expect(e.location).toMatchObject({ line: 4, column: "x" });
  });

  it("reports a bad number with file, line and column", async () => {
    const e = await readError(`${HEADER}\n63,1,2.3,1\n67,0,1.5,4\nabc,1,0,1\n`);
    expect(e.message).toMatch(/site\.csv:4, column 'age': "abc" is not a number$/);
  });

  it("reports an unknown category with the allowed values", async () => {
    const e = await readError(`${HEADER}\n63,1,2.3,1\n67,0,1.5,9\n`);
    expect(e.code).toBe("invalid-data");
    expect(e.message).toMatch(/site\.csv:3, column 'cp': category "9" is not in the schema \(allowed: 1, 2, 3, 4\)$/);
    expect(e.location).toMatchObject({ line: 3, column: "cp" });
  });

  it("rejects a category that is only numerically close", async () => {
    const e = await readError(`${HEADER}\n63,1.5,2.3,1\n`);
    expect(e.message).toContain("site.csv:2, column 'sex': category \"1.5\"");
  });

  it("reports a schema column missing from the header, listing the header", async () => {
    const e = await readError("age,sex,cp\n63,1,1\n");
    expect(e.code).toBe("invalid-data");
    expect(e.message).toContain("site.csv:1");
    expect(e.message).toContain("column 'oldpeak'");
    expect(e.message).toContain("header found: age, sex, cp");
    expect(e.location).toMatchObject({ line: 1, column: "oldpeak" });
  });

  it("lists several missing columns and suggests case fixes", async () => {
    const e = await readError("Age,sex\n63,1\n");
    expect(e.message).toContain("'age', 'oldpeak', 'cp'");
    expect(e.hint).toContain("'Age' for 'age'");
  });

  it("rejects duplicate header names", async () => {
    const e = await readError("age,sex,oldpeak,cp, age\n1,1,1,1,1\n");
    expect(e.code).toBe("invalid-data");
    expect(e.message).toContain("site.csv:1");
    expect(e.message).toContain("column 'age'");
    expect(e.message).toContain("twice");
  });

  it("rejects a row with too few or too many fields, naming the line", async () => {
    const few = await readError(`${HEADER}\n63,1,2.3,1\n67,0,1.5\n`);
    expect(few.code).toBe("invalid-data");
    expect(few.message).toContain("site.csv:3");
    expect(few.message).toContain("3 fields but the header has 4");
    const many = await readError(`${HEADER}\n63,1,2.3,1\n\n67,0,1.5,1,1\n`);
    expect(many.message).toContain("site.csv:4");
    expect(many.message).toContain("5 fields");
  });

  it("rejects an unterminated quote, naming the line where the row starts", async () => {
    const e = await readError(`${HEADER}\n63,1,2.3,1\n"67,0,1.5,1\n50,1,1,1\n`);
    expect(e.code).toBe("invalid-data");
    expect(e.message).toContain("site.csv:3");
    expect(e.message).toContain("never closed");
  });

  it("rejects a stray quote inside a field", async () => {
    const e = await readError(`${HEADER}\n63,1,2.3,1\n63,1,2"3,1\n`);
    expect(e.code).toBe("invalid-data");
    expect(e.message).toContain("site.csv:3, column 'oldpeak'");
    const after = await readError(`${HEADER}\n63,1,2.3,1\n63,"1"x,2.3,1\n`);
    expect(after.message).toContain("site.csv:3");
    expect(after.message).toContain("after the closing quote");
  });

  it("counts lines right with quoted multi-line fields, blank lines and CRLF", async () => {
    const lf = await readError(`note,${HEADER}\n"a\nb\nc",63,1,2.3,1\n\n\n"x",abc,1,2.3,1\n`);
    expect(lf.message).toContain("site.csv:7, column 'age'");
    const crlf = await readError(`note,${HEADER}\r\n"a\r\nb",63,1,2.3,1\r\n\r\n"x\r\ny",64,1,2.3,1\r\nz,65,7,2.3,1\r\n`);
    expect(crlf.message).toContain("site.csv:7, column 'sex'");
    const multi = await readError(`note,${HEADER}\n"first\nsecond",oops,1,2.3,1\n`);
    expect(multi.message).toContain("site.csv:2, column 'age'");
  });

  it("handles a byte order mark and a last line without newline", () => {
    const r = parseTable(`\ufeff${HEADER}\r\n63,1,2.3,1\r\n64,1,2.3,1`, "site.csv", schema);
    expect(r.table.rowCount).toBe(2);
    expect(() => parseTable(`\ufeff${HEADER}\n63,1,2.3,1\nx,1,2.3,1`, "site.csv", schema)).toThrow(/site\.csv:3, column 'age'/);
  });

  it("rejects an empty file and a header-only file", async () => {
    for (const text of ["", "\n\n", `${HEADER}\n`, `${HEADER}`]) {
      const e = await readError(text);
      expect(e.code).toBe("invalid-data");
      expect(e.message).toContain("has no data rows");
    }
  });

  it("reports a missing file as not-found", async () => {
    const path = join(dir, "does-not-exist.csv");
    const err = await readTable(path, schema).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FedsynthError);
    expect((err as FedsynthError).code).toBe("not-found");
    expect((err as FedsynthError).message).toContain(path);
  });

  it("rejects a directory", async () => {
    const err = await readTable(dir, schema).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FedsynthError);
    expect((err as FedsynthError).message).toContain(dir);
  });

  it("streams a large file and still counts lines exactly across chunks", async () => {
    const rows = 150_000;
    const parts: string[] = [`note,${HEADER}`];
    for (let i = 0; i < rows; i++) {
      // every 1000th row has a two-line quoted note
      parts.push(i % 1000 === 0 ? `"multi\nline ${i}",${20 + (i % 80)},${i % 2},${(i % 70) / 10 - 3},${1 + (i % 4)}` : `n${i},${20 + (i % 80)},${i % 2},${(i % 70) / 10 - 3},${1 + (i % 4)}`);
    }
    const good = parts.join("\r\n") + "\r\n";
    const path = await csvFile(good, "big.csv");
    const r = await readTable(path, schema);
    expect(r.table.rowCount).toBe(rows);
    expect(r.table.columns[0][rows - 1]).toBe(20 + ((rows - 1) % 80));
    expect(r.table.columns[3][12345]).toBe(12345 % 4);

    // a bad cell in the data row of index 140001 (one header line + 141 two-line rows before it)
    const bad = [...parts];
    bad[140_002] = `n,63,1,2.3,5`;
    const e = await readError(bad.join("\r\n"));
    const expectedLine = 1 + 140_001 + 141 + 1;
    expect(e.message).toContain(`site.csv:${expectedLine}, column 'cp'`);
  });

  it("reads the four heart-disease example sites", async () => {
    const base = fileURLToPath(new URL("../../examples/heart-disease/", import.meta.url));
    const hd = await loadSchema(join(base, "schema.json"));
    const expected: Record<string, number> = { cleveland: 303, hungary: 294, switzerland: 123, va: 200 };
    for (const [site, count] of Object.entries(expected)) {
      const r = await readTable(join(base, `${site}.csv`), hd);
      expect(r.table.rowCount).toBe(count);
      expect(r.ignoredColumns).toEqual([]);
      expect(r.warnings.filter((w) => w.message.includes("rounded") || w.message.includes("snapped"))).toEqual([]);
    }
    const swiss = await readTable(join(base, "switzerland.csv"), hd);
    const chol = hd.columns.findIndex((c) => c.name === "chol");
    expect(swiss.table.columns[chol].every((v) => v === null)).toBe(true);
    const hungary = await readTable(join(base, "hungary.csv"), hd);
    expect(hungary.clipped.chol).toBe(2);
    // oldpeak is recorded to 0.1: every value is on the schema's grid, exactly.
    const oldpeak = hd.columns.findIndex((c) => c.name === "oldpeak");
    for (const v of hungary.table.columns[oldpeak]) if (v !== null) expect(Number(v.toFixed(1))).toBe(v);
  });
});

describe("parseStrictNumber", () => {
  it("parses plain decimals only", () => {
    expect(parseStrictNumber("63.0")).toBe(63);
    expect(parseStrictNumber("-1.5")).toBe(-1.5);
    expect(parseStrictNumber("1e3")).toBe(1000);
    expect(parseStrictNumber("0x10")).toBeUndefined();
    expect(parseStrictNumber("Infinity")).toBeUndefined();
    expect(parseStrictNumber("")).toBeUndefined();
    expect(parseStrictNumber(" 1")).toBeUndefined(); // callers trim
  });
});
