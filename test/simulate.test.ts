/** `fedsynth simulate` on the bundled four-hospital data: real coordinator, real agents, real gRPC. */
import { describe, expect, it, beforeAll } from "vitest";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { EXAMPLES, HEART_SITES, heartSiteArgs, runCli, tempDir, type CliResult } from "./support/cli.js";
import { parseSchema } from "../shared/schema/parse-schema.js";
import { parseTable } from "../shared/schema/read-csv.js";
import { chooseEngine } from "../shared/engines/engine-choice.js";

describe("fedsynth simulate on the heart-disease federation", () => {
  const dir = tempDir();
  const out = join(dir, "synthetic.csv");
  const summaryPath = join(dir, "summary.json");
  const workdir = join(dir, "work");
  let result: CliResult;

  beforeAll(async () => {
    result = await runCli([
      "simulate", "--schema", join(EXAMPLES, "schema.json"), ...heartSiteArgs(), "--epsilon", "1", "--delta", "1e-5",
      "--rounds", "2", "--rows", "1500", "--seed", "3", "--out", out, "--summary", summaryPath, "--workdir", workdir,
    ]);
  }, 180_000);

  it("exits 0 and says where the synthetic rows are", () => {
    expect(result.stderr + result.stdout).not.toMatch(/error/i);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`wrote 1500 synthetic rows to ${out}`);
  });

  it("writes the summary contract: engine, rounds, seconds, each site's rows and charged epsilon within budget", () => {
    const summary = JSON.parse(readFileSync(summaryPath, "utf8"));
    // No --engine: the coordinator chose one for a study of this schema and size, and says why.
    const schema = parseSchema(readFileSync(join(EXAMPLES, "schema.json"), "utf8"), "schema.json");
    expect(summary.engine).toBe(chooseEngine(schema, { sites: 4, expectedRows: 920 }).engine);
    expect(summary.engineReason).toMatch(/a small-to-mid-sized study \(14 columns, \d+ marginal cells, 920 rows declared/);
    expect(summary.rounds).toBe(2);
    expect(summary.seconds).toBeGreaterThan(0);
    expect(Object.keys(summary.sites).sort()).toEqual([...HEART_SITES].sort());
    expect(summary.sites.cleveland.rows).toBe(303);
    expect(summary.sites.hungary.rows).toBe(294);
    expect(summary.sites.switzerland.rows).toBe(123);
    expect(summary.sites.va.rows).toBe(200);
    for (const s of Object.values<any>(summary.sites)) {
      expect(s.epsilon).toBeLessThanOrEqual(1);
      // The budget is used, not wasted: calibration spends nearly all of it.
      expect(s.epsilon).toBeGreaterThan(0.99);
      expect(s.delta).toBe(1e-5);
    }
  });

  it("writes a CSV with the schema's header whose every row reads back through the schema", () => {
    const text = readFileSync(out, "utf8");
    const schema = parseSchema(readFileSync(join(EXAMPLES, "schema.json"), "utf8"), "schema.json");
    expect(text.split("\n")[0]).toBe(schema.columns.map((c) => c.name).join(","));
    const { table } = parseTable(text, out, schema);
    expect(table.rowCount).toBe(1500);
    // Missingness is modelled: Switzerland's structurally missing cholesterol must show up as missing cells.
    const chol = schema.columns.findIndex((c) => c.name === "chol");
    const missing = table.columns[chol].filter((v) => v === null).length / table.rowCount;
    expect(missing).toBeGreaterThan(0.1);
    expect(missing).toBeLessThan(0.35);
  });

  it("keeps the coordinator's store, each site's store and every process's log in --workdir", () => {
    expect(existsSync(join(workdir, "coordinator", "coordinator.sqlite"))).toBe(true);
    for (const s of HEART_SITES) expect(existsSync(join(workdir, "sites", s, "site.sqlite"))).toBe(true);
    expect(readdirSync(join(workdir, "logs")).sort()).toEqual(["coordinator.log", ...HEART_SITES.map((s) => `${s}.log`)].sort());
  });

  it("reproduces the pooled column distributions (mean column shape ≥ 0.85 at epsilon 1)", async () => {
    const evalResult = await runCli([
      "evaluate", "--schema", join(EXAMPLES, "schema.json"), "--real", ...HEART_SITES.map((s) => join(EXAMPLES, `${s}.csv`)),
      "--synthetic", out, "--format", "json",
    ]);
    expect(evalResult.code).toBe(0);
    const report = JSON.parse(evalResult.stdout);
    expect(report.columnShapes.score).toBeGreaterThan(0.85);
  });
});
