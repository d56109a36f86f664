/** `fedsynth evaluate`: fidelity, utility and privacy of a synthetic CSV against the real data. */
import type { Command } from "commander";
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { loadSchema } from "../../shared/schema/parse-schema.js";
import { readTable } from "../../shared/schema/read-csv.js";
import type { Schema, Table } from "../../shared/schema/schema.js";
import { evaluate, formatReport, concatTables, type EvaluationReport } from "../../evaluation/index.js";
import { parseCount } from "../options.js";

export interface EvaluateFiles {
  schema: string;
  real: string[];
  synthetic: string;
  holdout: string[];
  target?: string;
  seed?: number;
}

async function readAll(files: string[], schema: Schema): Promise<Table> {
  const tables: Table[] = [];
  for (const f of files) tables.push((await readTable(resolve(f), schema)).table);
  return concatTables(tables);
}

export async function evaluateFiles(input: EvaluateFiles): Promise<EvaluationReport> {
  const schema = await loadSchema(resolve(input.schema));
  const real = await readAll(input.real, schema);
  const synthetic = (await readTable(resolve(input.synthetic), schema)).table;
  const holdout = input.holdout.length ? await readAll(input.holdout, schema) : undefined;
  return evaluate({ schema, real, synthetic, holdout, target: input.target, seed: input.seed });
}

export function registerEvaluateCommand(program: Command): void {
  program
    .command("evaluate")
    .description("score a synthetic CSV: column shapes, column-pair trends, ML utility and distance to closest record")
    .requiredOption("--schema <schema.json>", "the study schema")
    .requiredOption("--real <file.csv...>", "the real rows the synthesizer was trained on (one or more files)")
    .requiredOption("--synthetic <file.csv>", "the synthetic rows")
    .option("--holdout <file.csv...>", "real rows NOT used in training: needed for ML utility and privacy", [])
    .option("--target <column>", "the column to predict for ML utility (default: the schema's \"outcome\", else its last categorical column)")
    .option("--seed <n>", "seed for subsampling in the privacy metric", parseCount("--seed", 0))
    .option("--json <report.json>", "also write the full report as JSON")
    .option("--format <text|json>", "what to print: the readable summary or the JSON report", "text")
    .action(async (opts: { schema: string; real: string[]; synthetic: string; holdout: string[]; target?: string; seed?: number; json?: string; format: string }) => {
      const report = await evaluateFiles({ schema: opts.schema, real: opts.real, synthetic: opts.synthetic, holdout: opts.holdout, target: opts.target, seed: opts.seed });
      if (opts.json) writeFileSync(resolve(opts.json), JSON.stringify(report, null, 2) + "\n");
      process.stdout.write(opts.format === "json" ? JSON.stringify(report, null, 2) + "\n" : formatReport(report) + "\n");
    });
}
