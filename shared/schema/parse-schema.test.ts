import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FedsynthError } from "../errors.js";
import { loadSchema, parseSchema, schemaFingerprint } from "./parse-schema.js";

const AGE = { name: "age", type: "numeric", min: 0, max: 120, integer: true };
const SEX = { name: "sex", type: "categorical", values: ["0", "1"] };

function schemaError(text: string, source = "schema.json"): FedsynthError {
  try {
    parseSchema(text, source);
  } catch (err) {
    expect(err).toBeInstanceOf(FedsynthError);
    const e = err as FedsynthError;
    expect(e.code).toBe("invalid-schema");
    expect(e.message).toContain(source);
    expect(e.hint).toBeTruthy();
    expect(e.location?.file).toBe(source);
    return e;
  }
  throw new Error("expected parseSchema to throw");
}

const withColumns = (...columns: unknown[]) => JSON.stringify({ columns });

describe("parseSchema", () => {
  it("parses a valid schema and applies defaults", () => {
    const schema = parseSchema(
      withColumns({ name: "age", type: "numeric", min: 0, max: 120, integer: true, bins: 12 }, { name: "bmi", type: "numeric", min: 10, max: 60 }, SEX),
      "schema.json",
    );
    expect(schema).toEqual({
      columns: [
        { name: "age", type: "numeric", min: 0, max: 120, integer: true, bins: 12 },
        { name: "bmi", type: "numeric", min: 10, max: 60, integer: false },
        { name: "sex", type: "categorical", values: ["0", "1"] },
      ],
      missing: ["", "?", "NA"],
    });
    expect(Object.keys(schema.columns[1])).toEqual(["name", "type", "min", "max", "integer"]);
  });

  it("keeps a custom missing list and accepts a BOM", () => {
    const schema = parseSchema("\ufeff" + JSON.stringify({ columns: [SEX], missing: ["-9", ""] }), "schema.json");
    expect(schema.missing).toEqual(["-9", ""]);
  });

  it("returns a clean copy", () => {
    const values = ["0", "1"];
    const schema = parseSchema(JSON.stringify({ columns: [{ name: "sex", type: "categorical", values }] }), "s.json");
    const c = schema.columns[0];
    expect(c.type === "categorical" && c.values).toEqual(values);
  });

  it("rejects invalid JSON with the parser's message and the position", () => {
    const e = schemaError('{\n  "columns": [\n    {"name": "age",}\n  ]\n}');
    expect(e.message).toContain("not valid JSON");
    expect(e.message).toContain("line 3");
  });

  it("rejects truncated JSON", () => {
    const e = schemaError('{"columns": [');
    expect(e.message).toContain("not valid JSON");
  });

  it.each([
    ["[]", "top level must be a JSON object"],
    ['"x"', "top level must be a JSON object"],
    ["null", "top level must be a JSON object"],
    ["{}", '"columns" is missing'],
    ['{"columns": {}}', '"columns" must be an array'],
    ['{"columns": []}', '"columns" is empty'],
    ['{"columns": [], "colums": []}', 'unknown key "colums"'],
  ])("rejects %s", (text, expected) => {
    expect(schemaError(text).message).toContain(expected);
  });

  it("rejects a column that is not an object", () => {
    const e = schemaError(withColumns(AGE, "sex"));
    expect(e.message).toContain("columns[1] must be an object");
  });

  it.each([
    [{ type: "numeric", min: 0, max: 1 }, '"name" is missing'],
    [{ name: "", type: "numeric", min: 0, max: 1 }, '"name" must not be empty'],
    [{ name: 3, type: "numeric", min: 0, max: 1 }, '"name" must be a string'],
    [{ name: " age", type: "numeric", min: 0, max: 1 }, "whitespace"],
  ])("rejects a bad name %j", (column, expected) => {
    const e = schemaError(withColumns(SEX, column));
    expect(e.message).toContain("columns[1]");
    expect(e.message).toContain(expected);
  });

  it("rejects duplicate column names", () => {
    const e = schemaError(withColumns(AGE, SEX, { ...AGE }));
    expect(e.message).toContain('columns[2] ("age"): duplicate column name (also columns[0])');
    expect(e.location?.column).toBe("age");
  });

  it("rejects an unknown or missing type", () => {
    expect(schemaError(withColumns({ name: "x", type: "category", values: ["a"] })).message).toContain(
      'columns[0] ("x"): "type" must be "numeric" or "categorical", got "category"',
    );
    expect(schemaError(withColumns({ name: "x", values: ["a"] })).message).toContain('"type" is missing');
  });

  it("rejects unknown keys and lists the allowed ones", () => {
    const e = schemaError(withColumns(SEX, { name: "chol", type: "numeric", min: 100, maximum: 600 }));
    expect(e.message).toContain('columns[1] ("chol"): unknown key "maximum"');
    expect(e.message).toContain("name, type, min, max, integer, bins");
    const e2 = schemaError(withColumns({ ...SEX, bins: 3 }));
    expect(e2.message).toContain('unknown key "bins" (allowed for categorical columns: name, type, values)');
  });

  it.each([
    [{ name: "chol", type: "numeric", max: 600 }, '"min" is missing'],
    [{ name: "chol", type: "numeric", min: "100", max: 600 }, '"min" must be a number'],
    [{ name: "chol", type: "numeric", min: 100, max: null }, '"max" must be a number'],
    [{ name: "chol", type: "numeric", min: 100 }, '"max" is missing'],
    [{ name: "chol", type: "numeric", min: 600, max: 100 }, '"min" (600) is greater than "max" (100)'],
    [{ name: "chol", type: "numeric", min: 0.2, max: 0.8, integer: true }, "integer column has no whole number in [0.2, 0.8]"],
    [{ name: "chol", type: "numeric", min: 0, max: 1, integer: "yes" }, '"integer" must be true or false'],
    [{ name: "chol", type: "numeric", min: 0, max: 1, bins: 0 }, '"bins" must be a positive integer'],
    [{ name: "chol", type: "numeric", min: 0, max: 1, bins: 2.5 }, '"bins" must be a positive integer'],
    [{ name: "chol", type: "numeric", min: 0, max: 1, bins: 10001 }, "at most 10000"],
    [{ name: "chol", type: "numeric", min: 0, max: 1, bins: "8" }, '"bins" must be a positive integer'],
  ])("rejects numeric column %j", (column, expected) => {
    const e = schemaError(withColumns(SEX, AGE, column));
    expect(e.message).toContain('columns[2] ("chol")');
    expect(e.message).toContain(expected);
    expect(e.location?.column).toBe("chol");
  });

  it("accepts a step: the measurement's resolution", () => {
    const s = parseSchema(
      withColumns(
        { name: "oldpeak", type: "numeric", min: -3, max: 7, step: 0.1 },
        { name: "bp", type: "numeric", min: 80, max: 220, integer: true, step: 10 },
        { name: "age", type: "numeric", min: 0, max: 120, integer: true, step: 1 },
        { name: "tiny", type: "numeric", min: 0, max: 1, step: 1e-6 }, // exactly 1,000,000 steps
        { name: "wide", type: "numeric", min: 0, max: 1, step: 5 }, // one grid value
      ),
      "s.json",
    );
    expect(s.columns.map((c) => (c.type === "numeric" ? c.step : undefined))).toEqual([0.1, 10, 1, 1e-6, 5]);
    // Absent by default, also for integer columns (whose default step is 1).
    const plain = parseSchema(withColumns(AGE, { name: "bmi", type: "numeric", min: 10, max: 60 }), "s.json");
    expect(plain.columns.every((c) => !("step" in c))).toBe(true);
  });

  it.each([
    [{ name: "chol", type: "numeric", min: 0, max: 1, step: 0 }, '"step" must be a positive finite number, got a number (0)'],
    [{ name: "chol", type: "numeric", min: 0, max: 1, step: -0.1 }, '"step" must be a positive finite number'],
    [{ name: "chol", type: "numeric", min: 0, max: 1, step: "0.1" }, '"step" must be a positive finite number, got a string ("0.1")'],
    [{ name: "chol", type: "numeric", min: 0, max: 1, step: null }, '"step" must be a positive finite number, got null'],
    [{ name: "chol", type: "numeric", min: 0, max: 100, integer: true, step: 2.5 }, '"step" of an integer column must be a whole number >= 1, got 2.5'],
    [{ name: "chol", type: "numeric", min: 0, max: 100, integer: true, step: 0.5 }, "must be a whole number >= 1"],
    [{ name: "chol", type: "numeric", min: 0, max: 1, step: 1e-7 }, "(max - min) / step = 10000000 exceeds 1000000"],
    [{ name: "chol", type: "numeric", min: 0, max: 2e6, integer: true, step: 1 }, "exceeds 1000000"],
    [{ name: "chol", type: "numeric", min: 1e6, max: 1e6 + 1, step: 1e-7 }, "exceeds 1000000"],
    [{ name: "chol", type: "numeric", min: 1e9, max: 1e9, step: 1e-4 }, "too small relative to the bounds"],
  ])("rejects step in numeric column %j", (column, expected) => {
    const e = schemaError(withColumns(SEX, AGE, column), "study/schema.json");
    expect(e.message.startsWith('study/schema.json: columns[2] ("chol"): ')).toBe(true);
    expect(e.message).toContain(expected);
    expect(e.location?.column).toBe("chol");
  });

  it("rejects a non-finite bound", () => {
    const e = schemaError('{"columns": [{"name": "x", "type": "numeric", "min": 0, "max": 1e999}]}');
    expect(e.message).toContain('"max" must be a finite number');
  });

  it("accepts min == max and an integer column with fractional bounds containing an integer", () => {
    const s = parseSchema(withColumns({ name: "x", type: "numeric", min: 0.5, max: 1.5, integer: true }, { name: "y", type: "numeric", min: 3, max: 3 }), "s.json");
    expect(s.columns).toHaveLength(2);
  });

  it.each([
    [{ name: "cp", type: "categorical" }, '"values" is missing'],
    [{ name: "cp", type: "categorical", values: "1,2" }, '"values" must be an array of strings'],
    [{ name: "cp", type: "categorical", values: [] }, '"values" is empty'],
    [{ name: "cp", type: "categorical", values: ["1", 2] }, 'values[1] must be a string, got a number (2) (write "2" in quotes)'],
    [{ name: "cp", type: "categorical", values: ["1", null] }, "values[1] must be a string, got null"],
    [{ name: "cp", type: "categorical", values: ["1", "2", "1"] }, '"values" lists "1" twice'],
    [{ name: "cp", type: "categorical", values: ["1", "?"] }, 'value "?" is also a missing token'],
    [{ name: "cp", type: "categorical", values: ["", "1"] }, 'value "" is also a missing token'],
    [{ name: "cp", type: "categorical", values: ["1 ", "2"] }, "whitespace"],
  ])("rejects categorical column %j", (column, expected) => {
    const e = schemaError(withColumns(AGE, column));
    expect(e.message).toContain('columns[1] ("cp")');
    expect(e.message).toContain(expected);
    expect(e.location?.column).toBe("cp");
  });

  it("allows a category equal to a default missing token when missing is redefined", () => {
    const s = parseSchema(JSON.stringify({ columns: [{ name: "a", type: "categorical", values: ["NA", "x"] }], missing: [""] }), "s.json");
    expect(s.missing).toEqual([""]);
    const e = schemaError(JSON.stringify({ columns: [{ name: "a", type: "categorical", values: ["-9", "x"] }], missing: ["-9"] }));
    expect(e.message).toContain('value "-9" is also a missing token');
  });

  it.each([
    ['{"columns": [], "missing": "?"}', '"missing" must be an array of strings'],
    ['{"columns": [], "missing": ["?", 9]}', "missing[1] must be a string"],
    ['{"columns": [], "missing": [" ?"]}', "whitespace"],
  ])("rejects missing in %s", (text, expected) => {
    const t = text.replace('"columns": []', `"columns": [${JSON.stringify(AGE)}]`);
    expect(schemaError(t).message).toContain(expected);
  });

  it("reads a declared outcome column, and none when the schema declares none", () => {
    expect(parseSchema(JSON.stringify({ columns: [AGE, SEX], outcome: "sex" }), "s.json").outcome).toBe("sex");
    expect(parseSchema(JSON.stringify({ columns: [AGE, SEX], outcome: "age" }), "s.json").outcome).toBe("age");
    expect("outcome" in parseSchema(JSON.stringify({ columns: [AGE, SEX] }), "s.json")).toBe(false);
  });

  it("refuses an outcome that names no column, naming it and the columns there are", () => {
    const e = schemaError(JSON.stringify({ columns: [AGE, SEX], outcome: "death" }));
    expect(e.message).toContain('"outcome" names column "death", which is not in "columns"');
    expect(e.location?.column).toBe("death");
    expect(e.hint).toContain("age, sex");
    expect(schemaError(JSON.stringify({ columns: [AGE, SEX], outcome: 1 })).message).toContain('"outcome" must be the name of a column, got a number (1)');
    expect(schemaError(JSON.stringify({ columns: [AGE, SEX], outcome: ["sex"] })).message).toContain('"outcome" must be the name of a column');
  });

  it("names the source given by the caller", () => {
    const e = schemaError("{}", "study 'x' schema");
    expect(e.message.startsWith("study 'x' schema: ")).toBe(true);
  });
});

describe("schemaFingerprint", () => {
  const base = { columns: [AGE, SEX], missing: ["", "?", "NA"] };
  it("is a sha256 hex digest independent of key order and missing order", () => {
    const a = parseSchema(JSON.stringify(base), "a.json");
    const b = parseSchema(
      JSON.stringify({ missing: ["NA", "", "?"], columns: [{ integer: true, max: 120, min: 0, type: "numeric", name: "age" }, { values: ["0", "1"], type: "categorical", name: "sex" }] }),
      "b.json",
    );
    expect(schemaFingerprint(a)).toMatch(/^[0-9a-f]{64}$/);
    expect(schemaFingerprint(a)).toBe(schemaFingerprint(b));
  });

  it("encodes a step only when it sets a grid other than the default", () => {
    const fp = (...columns: unknown[]) => schemaFingerprint(parseSchema(withColumns(...columns), "s.json"));
    const BMI = { name: "bmi", type: "numeric", min: 10, max: 60 };
    // An integer column's step 1 is its default grid.
    expect(fp({ ...AGE, step: 1 }, BMI)).toBe(fp(AGE, BMI));
    expect(fp({ ...AGE, step: 5 }, BMI)).not.toBe(fp(AGE, BMI));
    expect(fp(AGE, { ...BMI, step: 0.1 })).not.toBe(fp(AGE, BMI));
    expect(fp(AGE, { ...BMI, step: 0.1 })).not.toBe(fp(AGE, { ...BMI, step: 0.5 }));
    expect(fp(AGE, { ...BMI, step: 0.1 })).toBe(fp(AGE, { step: 0.1, max: 60, min: 10, type: "numeric", name: "bmi" }));
  });

  it("changes when anything meaningful changes", () => {
    const fp = schemaFingerprint(parseSchema(JSON.stringify(base), "a.json"));
    const variants = [
      { ...base, columns: [{ ...AGE, max: 110 }, SEX] },
      { ...base, columns: [{ ...AGE, integer: false }, SEX] },
      { ...base, columns: [{ ...AGE, bins: 8 }, SEX] },
      { ...base, columns: [{ ...AGE, step: 2 }, SEX] },
      { ...base, columns: [AGE, { ...SEX, values: ["1", "0"] }] },
      { ...base, columns: [SEX, AGE] },
      { ...base, missing: ["?"] },
      { ...base, outcome: "sex" },
    ];
    for (const v of variants) expect(schemaFingerprint(parseSchema(JSON.stringify(v), "v.json"))).not.toBe(fp);
  });
});

describe("loadSchema", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "fedsynth-schema-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads a file and names it in errors", async () => {
    const good = join(dir, "schema.json");
    await writeFile(good, JSON.stringify({ columns: [AGE] }));
    expect((await loadSchema(good)).columns[0].name).toBe("age");

    const bad = join(dir, "bad-schema.json");
    await writeFile(bad, JSON.stringify({ columns: [{ ...AGE, min: "0" }] }));
    const err = await loadSchema(bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FedsynthError);
    expect((err as FedsynthError).code).toBe("invalid-schema");
    expect((err as FedsynthError).message).toBe(`${bad}: columns[0] ("age"): "min" must be a number, got a string ("0")`);
  });

  it("reports a missing file as not-found", async () => {
    const path = join(dir, "nope.json");
    const err = await loadSchema(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FedsynthError);
    expect((err as FedsynthError).code).toBe("not-found");
    expect((err as FedsynthError).message).toContain(path);
  });

  it("loads the heart-disease example schema", async () => {
    const schema = await loadSchema(fileURLToPath(new URL("../../examples/heart-disease/schema.json", import.meta.url)));
    expect(schema.columns.map((c) => c.name)).toEqual(["age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach", "exang", "oldpeak", "slope", "ca", "thal", "num"]);
    expect(schema.columns[9]).toEqual({ name: "oldpeak", type: "numeric", min: -3, max: 7, integer: false, step: 0.1 });
  });
});
