/**
 * The marginal engine's public study settings: the shape of its releases (from the schema) and the noise
 * calibrated for them (budget.ts), checked whenever a site or the coordinator reads them back from JSON.
 */
import type { JsonObject } from "../engine.js";
import type { Schema } from "../../schema/schema.js";
import { FedsynthError } from "../../errors.js";
import { checkSchema } from "../study-checks.js";

export { checkSchema };
import { coarseLayout, maxGroups } from "./discretise.js";
import type { BudgetShape, GridPlan, MarginalBudget } from "./budget.js";

export const CONFIG_VERSION = 1;

export interface MarginalConfig extends BudgetShape, MarginalBudget {
  version: number;
  rounds: number;
}

export function invalid(message: string, hint?: string): FedsynthError {
  return new FedsynthError("invalid-argument", message, { hint });
}


/** The marginal engine's limit on rounds, for checkPrivacy (study-checks.ts). */
export const MARGINAL_ROUNDS = { max: 1000, hint: "The marginal engine needs 2 rounds: selection, then measurement." };

/** The release shape of a study, from the schema and the number of rounds alone. */
export function budgetShape(schema: Schema, rounds: number): BudgetShape {
  const layout = coarseLayout(schema);
  const columns = layout.columns;
  const most = schema.columns.map((c, j) => maxGroups(c, layout.sizes[j])).sort((a, b) => b - a);
  // Any spanning tree has columns − 1 edges, each table at most the two largest group counts.
  const tableCells = columns > 1 ? (columns - 1) * most[0] * most[1] : 0;
  return { columns, cells: layout.total, coarseCells: layout.coarseTotal, fineColumns: layout.fine.length, pairs: rounds > 1 ? (columns * (columns - 1)) / 2 : 0, edges: columns - 1, tableCells };
}

const positive = (v: unknown) => typeof v === "number" && Number.isFinite(v) && v > 0;
const nonNegative = (v: unknown) => typeof v === "number" && Number.isFinite(v) && v >= 0;

function readGrid(raw: unknown, what: string): GridPlan {
  const g = raw as Partial<GridPlan> | null;
  for (const f of ["gamma", "gridSigma", "gridL2Sensitivity", "dimension", "coordinateBound"] as const) {
    if (!positive(g?.[f])) throw invalid(`The marginal engine's ${what} grid has no valid ${f} (${JSON.stringify(g?.[f])})`, "Use the config returned by configure().");
  }
  return g as GridPlan;
}

export function readConfig(config: JsonObject, schema: Schema): MarginalConfig {
  checkSchema(schema);
  const c = config as unknown as Partial<MarginalConfig> | null;
  if (c?.version !== CONFIG_VERSION) {
    throw invalid(`The marginal engine's config has version ${JSON.stringify(c?.version)}, this build reads ${CONFIG_VERSION}`, "Use the config returned by configure().");
  }
  if (!Number.isSafeInteger(c.rounds) || (c.rounds as number) < 1) throw invalid("The marginal engine's config has no valid rounds", "Use the config returned by configure().");
  const shape = budgetShape(schema, c.rounds as number);
  for (const k of ["columns", "cells", "coarseCells", "fineColumns", "pairs", "edges", "tableCells"] as const) {
    if (c[k] !== shape[k]) throw invalid(`The marginal engine's config does not match the schema (${k}: ${JSON.stringify(c[k])}, the schema gives ${shape[k]})`, "Configure the engine with the study's schema.");
  }
  if (!positive(c.sigmaMarginals) || !positive(c.sensMarginals)) throw invalid("The marginal engine's config has no valid marginal noise", "Use the config returned by configure().");
  for (const k of ["sigmaScores", "sigmaPairs", "sensScores", "sensPairs"] as const) {
    if (!nonNegative(c[k])) throw invalid(`The marginal engine's config has no valid ${k}`, "Use the config returned by configure().");
  }
  if (c.rounds! > 1 && !(positive(c.sigmaPairs) && positive(c.sigmaScores))) throw invalid("The marginal engine's config has no noise for its later rounds", "Use the config returned by configure().");
  if (c.secure !== undefined) {
    const s = c.secure;
    if (!positive(s?.threshold) || !positive(s?.sites) || !positive(s?.maxSiteRows)) throw invalid("The marginal engine's secure-aggregation config is incomplete", "Use the config returned by configure().");
    readGrid(s.first, "first round's");
    readGrid(s.later, "later rounds'");
  }
  return c as MarginalConfig;
}
