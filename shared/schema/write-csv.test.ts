import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FedsynthError } from "../errors.js";
import { parseTable, readTable } from "./read-csv.js";
import type { OutputRow, Schema } from "./schema.js";
import { createCsvWriter, csvField, formatNumber } from "./write-csv.js";

const schema: Schema = {
  columns: [
    { name: "age", type: "numeric", min: 0, max: 120, integer: true },
    { name: "oldpeak", type: "numeric", min: -3, max: 7, integer: false },
    { name: "diag", type: "categorical", values: ["none", "a,b", 'say "hi"', "multi\nline", "1"] },
    { name: "odd, name", type: "categorical", values: ["x", "y"] },
  ],
  missing: ["", "?", "NA"],
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "fedsynth-write-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("createCsvWriter", () => {
  it("round-trips rows through parseTable, quoting where needed", async () => {
    const path = join(dir, "out.csv");
    const rows: OutputRow[] = [
      [formatNumber(63, true), formatNumber(2.3, false), "none", "x"],
      [formatNumber(40.6, true), formatNumber(-1.25, false), "a,b", "y"],
      ["", "", 'say "hi"', ""],
      [formatNumber(0, true), formatNumber(1 / 3, false), "multi\nline", "x"],
      ["120", "7", "1", "y"],
    ];
    const writer = createCsvWriter(path, schema);
    for (const row of rows) await writer.write(row);
    await writer.close();

    const text = await readFile(path, "utf8");
    expect(text.split("\n")[0]).toBe('age,oldpeak,diag,"odd, name"');
    expect(text).toContain('"a,b"');
    expect(text).toContain('"say ""hi"""');

    const r = parseTable(text, path, schema);
    expect(r.table.rowCount).toBe(rows.length);
    expect(r.warnings).toEqual([]);
    expect(r.table.columns).toEqual([
      [63, 41, null, 0, 120],
      [2.3, -1.25, null, 0.333333, 7],
      [0, 1, 2, 3, 4],
      [0, 1, null, 0, 1],
    ]);
    expect(await readTable(path, schema)).toEqual(r);
  });

  it("writes each line as csvField writes its fields, in UTF-8, whatever the text and however long the line", async () => {
    const path = join(dir, "text.csv");
    const s: Schema = { columns: [{ name: "a", type: "categorical", values: ["x"] }, { name: "b, \"c\"", type: "categorical", values: ["y"] }], missing: [""] };
    const long = "é,".repeat(40_000) + '"end"';
    const fields = ["", "plain", "tab\there", "a,b", 'say "hi"', "multi\nline", "cr\rhere", "naïve", "日本語", "emoji 😀", "\u00a0", "~", long, "x".repeat(70_000)];
    const rows: OutputRow[] = fields.flatMap((a) => fields.slice(0, 6).map((b) => [a, b]));
    // Lines of multi-byte text across many chunk ends, short ones and some of several KiB.
    for (let i = 0; i < 20_000; i++) rows.push(["日本語" + i, "é".repeat(i % 7) + (i % 3 === 0 ? "," : "")]);
    for (let i = 0; i < 100; i++) rows.push(i % 2 === 0 ? ["日".repeat(1500 + 37 * i), '"'] : ['"', "日".repeat(1500 + 37 * i)]);
    const writer = createCsvWriter(path, s);
    for (const row of rows) await writer.write(row);
    await writer.close();
    const want = [s.columns.map((c) => csvField(c.name)), ...rows.map((r) => r.map(csvField))].map((r) => r.join(",") + "\n").join("");
    expect((await readFile(path)).equals(Buffer.from(want, "utf8"))).toBe(true);
  });

  it("writes only the header when no rows are written", async () => {
    const path = join(dir, "empty.csv");
    const writer = createCsvWriter(path, schema);
    await writer.close();
    expect(await readFile(path, "utf8")).toBe('age,oldpeak,diag,"odd, name"\n');
  });

  it("rejects a row of the wrong width", async () => {
    const writer = createCsvWriter(join(dir, "width.csv"), schema);
    expect(() => writer.write(["1", "2"])).toThrow(FedsynthError);
    await writer.close();
  });

  it("streams many rows with backpressure", async () => {
    const path = join(dir, "many.csv");
    const s: Schema = { columns: [{ name: "i", type: "numeric", min: 0, max: 1e9, integer: true }, { name: "x", type: "numeric", min: 0, max: 1, integer: false }], missing: [""] };
    const writer = createCsvWriter(path, s);
    const n = 200_000;
    let waits = 0;
    for (let i = 0; i < n; i++) {
      const p = writer.write([formatNumber(i, true), formatNumber((i % 1000) / 1000, false)]);
      if (p) {
        waits++;
        await p;
      }
    }
    await writer.close();
    expect(waits).toBeGreaterThan(0);
    const r = await readTable(path, s);
    expect(r.table.rowCount).toBe(n);
    expect(r.table.columns[0][n - 1]).toBe(n - 1);
    expect(r.table.columns[1][1999]).toBe(0.999);
  });

  it("reports an unwritable path on close", async () => {
    const path = join(dir, "no-such-dir", "out.csv");
    const writer = createCsvWriter(path, schema);
    const err = await (async () => {
      await writer.write(["1", "1", "none", "x"]);
      await writer.close();
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FedsynthError);
    expect((err as FedsynthError).message).toContain(path);
  });
});

describe("formatNumber", () => {
  it.each([
    [63, true, "63"],
    [63.4, true, "63"],
    [63.5, true, "64"],
    [-0.4, true, "0"],
    [-0, false, "0"],
    [2.3, false, "2.3"],
    [63, false, "63"],
    [1 / 3, false, "0.333333"],
    [-1.5, false, "-1.5"],
    [0.1 + 0.2, false, "0.3"],
    [1e-7, false, "0"],
    [-1e-7, false, "0"],
    [123456789.125, false, "123456789.125"],
    [1e15, true, "1000000000000000"],
    [2.0000004, false, "2"],
  ])("formats %d (integer %s) as %s", (value, integer, expected) => {
    expect(formatNumber(value, integer)).toBe(expected);
  });

  it("refuses non-finite values", () => {
    expect(() => formatNumber(Number.NaN, false)).toThrow(FedsynthError);
    expect(() => formatNumber(Infinity, true)).toThrow(FedsynthError);
  });
});
