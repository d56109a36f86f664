/**
 * The federations the measurement scripts run on, each split 80/20 into training and holdout per run:
 *   heart   the bundled UCI heart-disease sites (examples/heart-disease);
 *   cohort  the generated cardiovascular cohort (scripts/cohort.ts; COHORT_ROWS sets its rows per site);
 *   clinic  the generated admissions federation (scripts/clinic.ts), made after every engine default was
 *           chosen and never used to choose one.
 */
import { resolve } from "node:path";
import { loadSchema, parseSchema } from "../shared/schema/parse-schema.js";
import { readTable, parseTable } from "../shared/schema/read-csv.js";
import type { Schema, Table } from "../shared/schema/schema.js";
import { SeededRng } from "../shared/random/rng.js";
import { concatTables } from "../evaluation/index.js";
import { split } from "./holdout-split.js";
import { COHORT_SCHEMA, COHORT_SITE_ROWS, siteCsv } from "./cohort.js";
import { CLINIC_SCHEMA, CLINIC_SITE_ROWS, clinicSiteCsv } from "./clinic.js";

export interface Dataset {
  name: string;
  schema: Schema;
  target: string;
  /** The run's sites: training and holdout tables. */
  sites(run: number): { train: Table[]; holdout: Table };
}

/** A dataset by name (heart, cohort or clinic); `root` is the repository, for the bundled data. */
export async function dataset(name: string, root: string): Promise<Dataset> {
  if (name === "heart") return heart(root);
  if (name === "cohort") return generated("cohort", COHORT_SCHEMA, cohortSiteRows(), siteCsv, 2000);
  if (name === "clinic") return generated("clinic", CLINIC_SCHEMA, CLINIC_SITE_ROWS, clinicSiteCsv, 3000);
  throw new Error(`DATA: expected heart, cohort or clinic, got ${name}`);
}

async function heart(root: string): Promise<Dataset> {
  const dir = resolve(root, "examples/heart-disease");
  const schema = await loadSchema(resolve(dir, "schema.json"));
  const tables = await Promise.all(["cleveland", "hungary", "switzerland", "va"].map(async (s) => (await readTable(resolve(dir, `${s}.csv`), schema)).table));
  return {
    name: "heart", schema, target: "num",
    sites(run) {
      const rng = new SeededRng(1000 + run);
      const parts = tables.map((t) => split(t, rng));
      return { train: parts.map((p) => p.train), holdout: concatTables(parts.map((p) => p.holdout)) };
    },
  };
}

/** A generated federation: run r's sites are the generator's at seed 1 + r, each split by its own seeded rng. */
function generated(name: string, schemaJson: { outcome: string }, siteRows: number[], csv: (site: number, rows: number, seed: number) => string, splitSeed: number): Dataset {
  const schema = parseSchema(JSON.stringify(schemaJson), `${name} schema`);
  return {
    name, schema, target: schemaJson.outcome,
    sites(run) {
      const parts = siteRows.map((rows, s) => split(parseTable(csv(s, rows, 1 + run), `site${s + 1}.csv`, schema).table, new SeededRng(splitSeed + run)));
      return { train: parts.map((p) => p.train), holdout: concatTables(parts.map((p) => p.holdout)) };
    },
  };
}

/** COHORT_ROWS: the generated cohort's rows per site (comma-separated, at most 5 sites), to measure other cohort sizes. */
function cohortSiteRows(): number[] {
  const v = process.env.COHORT_ROWS;
  if (!v) return COHORT_SITE_ROWS;
  const rows = v.split(",").map((x) => Number(x));
  if (rows.length > 5 || rows.some((r) => !Number.isInteger(r) || r < 5)) throw new Error(`COHORT_ROWS: expected up to 5 comma-separated row counts of at least 5, got ${v}`);
  return rows;
}
