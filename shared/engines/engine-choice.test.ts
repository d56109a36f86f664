import { describe, expect, it } from "vitest";
import { parseSchema } from "../schema/parse-schema.js";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { chooseEngine, LARGE_COHORT_ROWS, SMALL_COHORT_ROWS, WIDE_SCHEMA_COLUMNS } from "./engine-choice.js";
import { getEngine } from "./registry.js";

const heart = parseSchema(readFileSync(fileURLToPath(new URL("../../examples/heart-disease/schema.json", import.meta.url)), "utf8"), "heart");
const numeric = (n: number) => parseSchema(JSON.stringify({ columns: Array.from({ length: n }, (_, i) => ({ name: `c${i}`, type: "numeric", min: 0, max: 10 })) }), "wide");

describe("the default engine of a study", () => {
  it("is the marginal engine for a small-to-mid-sized or undeclared study, the independent engine for a very small one, with the reason in words", () => {
    expect(chooseEngine(heart, { sites: 4, expectedRows: 920 })).toMatchObject({ engine: "marginal", reason: expect.stringMatching(/a small-to-mid-sized study \(14 columns, \d+ marginal cells, 920 rows declared\)/) });
    expect(chooseEngine(heart, { sites: 4 })).toMatchObject({ engine: "marginal", reason: expect.stringMatching(/no cohort size declared/) });
    expect(chooseEngine(heart, { sites: 4, expectedRows: SMALL_COHORT_ROWS })).toMatchObject({ engine: "marginal", reason: expect.stringMatching(/500 rows declared/) });
    expect(chooseEngine(heart, { sites: 4, expectedRows: SMALL_COHORT_ROWS - 1 })).toMatchObject({ engine: "independent", reason: expect.stringMatching(/a very small study \(14 columns, 499 rows declared; under 500 rows/) });
  });

  it("is the neural engine for a large cohort or a wide schema", () => {
    expect(chooseEngine(heart, { sites: 4, expectedRows: LARGE_COHORT_ROWS })).toMatchObject({ engine: "neural", reason: expect.stringMatching(/200,000 rows declared/) });
    expect(chooseEngine(numeric(WIDE_SCHEMA_COLUMNS + 1), { sites: 3 })).toMatchObject({ engine: "neural", reason: expect.stringMatching(/41 columns/) });
    expect(chooseEngine(numeric(WIDE_SCHEMA_COLUMNS), { sites: 3, expectedRows: 10_000 }).engine).toBe("marginal");
  });

  it("passes over an engine that refuses the study, and says why", () => {
    const c = chooseEngine(numeric(WIDE_SCHEMA_COLUMNS + 1), { sites: 3 }, (e) => (e === "neural" ? "the network would be too large" : undefined));
    expect(c).toMatchObject({ engine: "marginal", reason: expect.stringMatching(/\(not neural: the network would be too large\)$/) });
    expect(() => chooseEngine(heart, { sites: 3, expectedRows: 10_000 }, () => "no")).toThrow(/no engine can run this study: not marginal: no; not independent: no/);
  });

  it("is the independent engine for a single column", () => {
    expect(chooseEngine(numeric(1), { sites: 2 }).engine).toBe("independent");
  });

  it("always names an engine this build has", () => {
    for (const schema of [heart, numeric(1), numeric(60)]) for (const rows of [0, 100, 10_000, 10_000_000]) getEngine(chooseEngine(schema, { sites: 3, expectedRows: rows }).engine);
  });
});
