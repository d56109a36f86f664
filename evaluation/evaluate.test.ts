import { describe, expect, it } from "vitest";
import { FedsynthError } from "../shared/errors.js";
import { gaussian, SeededRng } from "../shared/random/rng.js";
import type { Cell, Schema, Table } from "../shared/schema/schema.js";
import { evaluate } from "./evaluate.js";
import { isSkipped, type MlUtility } from "./report.js";
import { concatTables } from "./tables.js";

const schema: Schema = {
  missing: ["", "NA"],
  columns: [
    { name: "age", type: "numeric", min: 18, max: 90, integer: true },
    { name: "bmi", type: "numeric", min: 15, max: 50, integer: false },
    { name: "lab", type: "numeric", min: 0, max: 1, integer: false },
    { name: "sex", type: "categorical", values: ["F", "M"] },
    { name: "smoker", type: "categorical", values: ["no", "yes"] },
    { name: "outcome", type: "categorical", values: ["no", "yes"] },
  ],
};

/** Patients whose outcome depends on age, bmi and smoking; ~5% missing cells; `lab` is never measured. */
function patients(n: number, seed: number, missingRate = 0.05): Table {
  const rng = new SeededRng(seed);
  const cols: Cell[][] = schema.columns.map(() => []);
  const maybe = (v: Cell): Cell => (rng.next() < missingRate ? null : v);
  for (let i = 0; i < n; i++) {
    const age = Math.round(Math.max(18, Math.min(90, 55 + 15 * gaussian(rng))));
    const bmi = Math.max(15, Math.min(50, 22 + 0.1 * (age - 18) + 4 * gaussian(rng)));
    const sex = rng.next() < 0.5 ? 0 : 1;
    const smoker = rng.next() < 0.3 ? 1 : 0;
    const z = -6 + 0.06 * age + 0.08 * bmi + 1.5 * smoker;
    const outcome = rng.next() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
    cols[0].push(maybe(age));
    cols[1].push(maybe(bmi));
    cols[2].push(null);
    cols[3].push(maybe(sex));
    cols[4].push(maybe(smoker));
    cols[5].push(maybe(outcome));
  }
  return { schema, rowCount: n, columns: cols };
}

/** Every number in a JSON value is finite (NaN and ±Infinity would not survive JSON.stringify). */
function allFinite(value: unknown, path = "report"): string[] {
  if (typeof value === "number") return Number.isFinite(value) ? [] : [path];
  if (Array.isArray(value)) return value.flatMap((v, i) => allFinite(v, `${path}[${i}]`));
  if (value && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => allFinite(v, `${path}.${k}`));
  return [];
}

function rows(t: Table, pick: number[]): Table {
  return { schema: t.schema, rowCount: pick.length, columns: t.columns.map((c) => pick.map((i) => c[i])) };
}

describe("concatTables", () => {
  it("pools the rows of several sites", () => {
    const a = patients(3, 1);
    const b = patients(2, 2);
    const t = concatTables([a, b]);
    expect(t.rowCount).toBe(5);
    expect(t.columns[0]).toEqual([...a.columns[0], ...b.columns[0]]);
    expect(t.columns[5]).toEqual([...a.columns[5], ...b.columns[5]]);
  });

  it("refuses an empty list and mismatched columns", () => {
    expect(() => concatTables([])).toThrow(FedsynthError);
    const other: Table = { schema: { missing: [], columns: [schema.columns[0]] }, rowCount: 1, columns: [[20]] };
    expect(() => concatTables([patients(2, 1), other])).toThrow(/do not match/);
  });
});

describe("evaluate", () => {
  it("scores a table against itself 1 on shapes and pairs", () => {
    const real = patients(400, 1);
    const r = evaluate({ schema, real, synthetic: real });
    expect(r.columnShapes.score).toBe(1);
    expect(r.pairTrends.score).toBe(1);
    expect(r.overall).toBe(1);
    expect(r.pairTrends.pairs).toHaveLength(15);
    expect(r.rows).toEqual({ real: 400, synthetic: 400 });
    expect(isSkipped(r.mlUtility) && r.mlUtility.skipped).toMatch(/holdout/);
    expect(isSkipped(r.privacy)).toBe(true);
    expect(isSkipped(r.holdoutBaseline)).toBe(true);
  });

  it("produces the full report with a holdout", () => {
    const real = patients(2000, 1);
    const holdout = patients(800, 2);
    const synthetic = patients(2000, 3);
    const r = evaluate({ schema, real, synthetic, holdout });
    expect(r.rows).toEqual({ real: 2000, synthetic: 2000, holdout: 800 });
    expect(r.columnShapes.score).toBeGreaterThan(0.9);
    expect(r.pairTrends.score).toBeGreaterThan(0.9);
    const ml = r.mlUtility as MlUtility;
    expect(ml.target).toBe("outcome");
    expect(ml.aucKind).toBe("binary");
    expect(ml.auc.real).toBeGreaterThan(0.7);
    expect(ml.ratio).toBeGreaterThan(0.9);
    expect(ml.ratio).toBeLessThan(1.1);
    expect(isSkipped(r.privacy)).toBe(false);
    if (!r.privacy || isSkipped(r.privacy)) throw new Error("privacy missing");
    expect(r.privacy.dcr.ratio).toBeGreaterThan(0.7);
    if (!r.holdoutBaseline || isSkipped(r.holdoutBaseline)) throw new Error("baseline missing");
    expect(r.holdoutBaseline.columnShapes.score).toBeGreaterThan(0.9);
    expect(allFinite(r)).toEqual([]);
    // JSON round trip loses nothing.
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  });

  it("reports a single-class synthetic training set as AUC 0.5 with a note", () => {
    const real = patients(500, 1);
    const holdout = patients(300, 2);
    const synthetic = patients(500, 3);
    synthetic.columns[5] = synthetic.columns[5].map((c) => (c === null ? null : 0));
    const ml = evaluate({ schema, real, synthetic, holdout }).mlUtility as MlUtility;
    expect(ml.auc.synthetic).toBe(0.5);
    expect(ml.notes?.join(" ")).toMatch(/single target class/);
  });

  it("lowers ML utility when the target is unrelated to the features", () => {
    const real = patients(1500, 1);
    const holdout = patients(600, 2);
    const rng = new SeededRng(9);
    const synthetic = patients(1500, 3);
    synthetic.columns[5] = synthetic.columns[5].map(() => (rng.next() < 0.5 ? 1 : 0));
    const ml = evaluate({ schema, real, synthetic, holdout }).mlUtility as MlUtility;
    expect(ml.auc.synthetic).toBeLessThan(ml.auc.real - 0.1);
    expect(ml.ratio).toBeLessThan(0.9);
  });

  it("uses macro one-vs-rest AUC for a multi-class target and honours --target", () => {
    const real = patients(800, 1);
    const holdout = patients(400, 2);
    const multi: Schema = {
      ...schema,
      columns: schema.columns.map((c) => (c.name === "sex" ? { name: "sex", type: "categorical", values: ["F", "M", "X"] } : c)),
    };
    const withSchema = (t: Table): Table => ({ ...t, schema: multi });
    const r = evaluate({ schema: multi, real: withSchema(real), synthetic: withSchema(real), holdout: withSchema(holdout), target: "sex" });
    const ml = r.mlUtility as MlUtility;
    expect(ml.target).toBe("sex");
    expect(ml.aucKind).toBe("macro-ovr");
    expect(ml.classesScored).toEqual(["F", "M"]);
    expect(ml.ratio).toBe(1);
  });

  it("predicts the schema's declared outcome when no target is given", () => {
    const t = patients(200, 1);
    const declared: Schema = { ...schema, outcome: "smoker" };
    const r = evaluate({ schema: declared, real: t, synthetic: t, holdout: t });
    expect((r.mlUtility as MlUtility).target).toBe("smoker");
    // A named target still wins, and a numeric outcome is skipped as a numeric target is.
    expect((evaluate({ schema: declared, real: t, synthetic: t, holdout: t, target: "sex" }).mlUtility as MlUtility).target).toBe("sex");
    const numeric = evaluate({ schema: { ...schema, outcome: "lab" }, real: t, synthetic: t, holdout: t });
    expect(isSkipped(numeric.mlUtility) && numeric.mlUtility.skipped).toMatch(/numeric/);
  });

  it("rejects an unknown target and skips a numeric one", () => {
    const t = patients(50, 1);
    expect(() => evaluate({ schema, real: t, synthetic: t, holdout: t, target: "nope" })).toThrow(/not in the schema/);
    const r = evaluate({ schema, real: t, synthetic: t, holdout: t, target: "age" });
    expect(isSkipped(r.mlUtility) && r.mlUtility.skipped).toMatch(/numeric/);
  });

  it("flags synthetic rows copied from the training rows", () => {
    const real = patients(600, 1, 0);
    const holdout = patients(300, 2, 0);
    const copies = rows(real, Array.from({ length: 300 }, (_, i) => i * 2));
    const r = evaluate({ schema, real, synthetic: copies, holdout });
    if (!r.privacy || isSkipped(r.privacy)) throw new Error("privacy missing");
    expect(r.privacy.dcr.shareExactCopies).toBe(1);
    expect(r.privacy.dcr.ratio).toBeLessThan(1);
  });

  it("never produces NaN, with missing cells, an all-missing column and empty tables", () => {
    const real = patients(200, 1, 0.3);
    const holdout = patients(100, 2, 0.3);
    const synthetic = patients(150, 3, 0.3);
    const empty = patients(0, 4);
    const allMissing = patients(100, 5, 1);
    const cases = [
      evaluate({ schema, real, synthetic, holdout }),
      evaluate({ schema, real, synthetic: empty, holdout }),
      evaluate({ schema, real: empty, synthetic, holdout }),
      evaluate({ schema, real, synthetic, holdout: empty }),
      evaluate({ schema, real, synthetic: allMissing, holdout: allMissing }),
      evaluate({ schema, real: allMissing, synthetic: allMissing }),
      evaluate({ schema: { missing: [], columns: [] }, real: { schema: { missing: [], columns: [] }, rowCount: 3, columns: [] }, synthetic: { schema: { missing: [], columns: [] }, rowCount: 2, columns: [] } }),
    ];
    for (const r of cases) {
      expect(allFinite(r)).toEqual([]);
      for (const s of [r.overall, r.columnShapes.score, r.pairTrends.score]) {
        expect(s).toBeGreaterThanOrEqual(0);
        expect(s).toBeLessThanOrEqual(1);
      }
    }
    // The never-measured column scores 1 (both sides entirely missing) and its pairs fall back to contingency.
    expect(cases[0].columnShapes.columns.lab.score).toBe(1);
    const labPairs = cases[0].pairTrends.pairs.filter((p) => p.columns.includes("lab"));
    expect(labPairs.every((p) => p.metric === "contingency")).toBe(true);
    // Privacy and the baseline need rows on every side.
    expect(isSkipped(cases[1].privacy) && cases[1].privacy.skipped).toMatch(/no synthetic rows/);
    expect(isSkipped(cases[3].privacy) && cases[3].privacy.skipped).toMatch(/holdout has no rows/);
    expect(isSkipped(cases[3].holdoutBaseline)).toBe(true);
    expect(isSkipped(cases[3].mlUtility)).toBe(true);
    // Empty synthetic table: scores 0 with notes.
    expect(cases[1].columnShapes.score).toBe(0);
    expect(cases[1].columnShapes.columns.age.note).toMatch(/no rows/);
    expect(cases[1].overall).toBe(0);
  });

  it("checks that the tables match the schema", () => {
    const bad: Table = { schema, rowCount: 2, columns: schema.columns.map(() => [null]) };
    expect(() => evaluate({ schema, real: patients(5, 1), synthetic: bad })).toThrow(/cells/);
  });
});
