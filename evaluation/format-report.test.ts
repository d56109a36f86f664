import { describe, expect, it } from "vitest";
import type { Cell, Schema, Table } from "../shared/schema/schema.js";
import { SeededRng } from "../shared/random/rng.js";
import { evaluate } from "./evaluate.js";
import { alignTable, formatReport } from "./format-report.js";

const schema: Schema = {
  missing: [""],
  columns: [
    { name: "age", type: "numeric", min: 0, max: 100, integer: true },
    { name: "weight_kg", type: "numeric", min: 30, max: 200, integer: false },
    { name: "empty", type: "numeric", min: 0, max: 1, integer: false },
    { name: "diagnosis", type: "categorical", values: ["a", "b", "c"] },
  ],
};

function table(n: number, seed: number): Table {
  const rng = new SeededRng(seed);
  const cols: Cell[][] = [[], [], [], []];
  for (let i = 0; i < n; i++) {
    const age = Math.floor(rng.next() * 100);
    cols[0].push(age);
    cols[1].push(rng.next() < 0.1 ? null : 30 + age + rng.next() * 60);
    cols[2].push(null);
    cols[3].push(age < 30 ? 0 : age < 70 ? 1 : 2);
  }
  return { schema, rowCount: n, columns: cols };
}

describe("alignTable", () => {
  it("pads columns to a common width", () => {
    expect(alignTable([["a", "1"], ["long", "10"]], ["left", "right"])).toEqual(["  a      1", "  long  10"]);
  });
});

describe("formatReport", () => {
  it("contains every section, the scores and the explanations", () => {
    const text = formatReport(evaluate({ schema, real: table(300, 1), synthetic: table(300, 2), holdout: table(200, 3) }));
    for (const section of ["Rows", "Overall", "Column shapes", "Column-pair trends", "ML utility", "Privacy: distance to closest record", "What the metrics mean", "Skipped"]) {
      expect(text).toContain(section);
    }
    for (const name of ["age", "weight_kg", "empty", "diagnosis"]) expect(text).toMatch(new RegExp(`^  ${name}\\s`, "m"));
    expect(text).toContain("holdout baseline");
    expect(text).toContain("Kolmogorov–Smirnov");
    expect(text).toContain("logistic-regression");
    expect(text).not.toMatch(/NaN|undefined|Infinity/);
  });

  it("lists what was skipped and why", () => {
    const text = formatReport(evaluate({ schema, real: table(100, 1), synthetic: table(100, 2) }));
    expect(text).toMatch(/Skipped[\s\S]*ML utility: no holdout/);
    expect(text).toMatch(/Privacy: no holdout/);
    expect(text).toMatch(/Holdout baseline: no holdout/);
  });

  it("limits the listed pairs", () => {
    const text = formatReport(evaluate({ schema, real: table(100, 1), synthetic: table(100, 2) }), { maxPairs: 2 });
    expect(text).toContain("lowest 2 of 6 pairs");
  });
});
