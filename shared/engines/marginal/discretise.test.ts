/** The marginal engine's cells and groups come from the schema (and, for round 2, released sums) only. */
import { describe, expect, it } from "vitest";
import { cellCodes, checkGrouping, coarseLayout, groupCount, massGrouping, maxGroups, NUMERIC_GROUPS, schemaGrouping } from "./discretise.js";
import { conformanceSchema, conformanceSites } from "../conformance.js";
import { binIndex, numericBins } from "../../schema/bins.js";
import type { NumericColumn, Schema } from "../../schema/schema.js";

const layout = coarseLayout(conformanceSchema);

describe("marginal discretisation", () => {
  it("codes every row in the independent engine's coarse cells, missing last", () => {
    const [site] = conformanceSites(1, [300]);
    const codes = cellCodes(conformanceSchema, layout, site);
    conformanceSchema.columns.forEach((column, j) => {
      const bins = column.type === "numeric" ? numericBins(column as NumericColumn) : undefined;
      site.columns[j].forEach((v, i) => {
        const want = v === null ? layout.sizes[j] - 1 : bins ? binIndex(bins, v as number) : (v as number);
        expect(codes[j][i]).toBe(want);
      });
    });
  });

  it("refuses a table that does not fit the schema", () => {
    const [site] = conformanceSites(1, [10]);
    expect(() => cellCodes(conformanceSchema, layout, { ...site, columns: site.columns.slice(1) })).toThrow(/columns/);
    const bad = { ...site, columns: site.columns.map((c, j) => (j === 4 ? c.map(() => 7) : c)) };
    expect(() => cellCodes(conformanceSchema, layout, bad)).toThrow(/invalid value/);
  });

  it("groups consecutive cells, keeps missing alone and last, and never exceeds the public cap", () => {
    conformanceSchema.columns.forEach((column, j) => {
      const size = layout.sizes[j];
      for (const g of [schemaGrouping(column, size), massGrouping(column, size, Float64Array.from({ length: size }, (_, c) => (c % 3) + 0.5)), massGrouping(column, size, new Float64Array(size), 2)]) {
        expect(checkGrouping(g, column, size)).toBe(g);
        expect(groupCount(g)).toBeLessThanOrEqual(maxGroups(column, size));
      }
    });
    const age = conformanceSchema.columns[0];
    expect(groupCount(schemaGrouping(age, layout.sizes[0]))).toBe(NUMERIC_GROUPS + 1);
  });

  it("puts group boundaries at the pooled mass's quantiles", () => {
    const column = { name: "x", type: "numeric", min: 0, max: 100, integer: false, bins: 10 } as const;
    const p = [0.5, 0.1, 0.1, 0.1, 0.1, 0.02, 0.02, 0.02, 0.02, 0.02, 0];
    const g = massGrouping(column, 11, p, 3);
    expect(g).toEqual([0, 1, 1, 2, 2, 2, 2, 2, 2, 2, 3]);
  });

  it("rejects groupings a coordinator could use to single out cells or blow up the tables", () => {
    const sex = conformanceSchema.columns[4];
    expect(() => checkGrouping([0, 0, 0], sex, 3)).toThrow(/missing/);
    expect(() => checkGrouping([0, 2, 3], sex, 3)).toThrow(/consecutive/);
    expect(() => checkGrouping([0, 1], sex, 3)).toThrow(/3 cells/);
    const wide: Schema = { columns: [{ name: "c", type: "categorical", values: "abcdefghijkl".split("") }], missing: [""] };
    expect(() => checkGrouping(Array.from({ length: 13 }, (_, c) => c), wide.columns[0], 13)).toThrow(/more than/);
  });
});
