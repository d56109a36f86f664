/**
 * The fidelity report: column shapes and pair trends of the synthetic rows against the pooled real rows,
 * and — given a holdout of real rows not used for training — ML utility, a distance-to-closest-record
 * privacy check, and the holdout's own shape/pair scores as the baseline a perfect generator would reach.
 */
import type { Schema, Table } from "../shared/schema/schema.js";
import { columnShapes } from "./column-shapes.js";
import { distanceToClosest } from "./distance-to-closest.js";
import type { FitOptions } from "./logistic-regression.js";
import { mlUtility } from "./ml-utility.js";
import { pairTrends } from "./pair-trends.js";
import { clamp01, type EvaluationReport } from "./report.js";
import { checkTable } from "./tables.js";

export interface EvaluateInput {
  schema: Schema;
  /** All real training rows, pooled over sites (see concatTables). */
  real: Table;
  synthetic: Table;
  /** Real rows held out from training; enables ML utility, privacy and the holdout baseline. */
  holdout?: Table;
  /** ML-utility target column; default: the schema's declared outcome, else its last categorical column. */
  target?: string;
  /** Seed for the row sampling of the privacy check (default 1). */
  seed?: number;
  /** Logistic-regression settings (tests and experiments). */
  fit?: FitOptions;
}

export function evaluate(input: EvaluateInput): EvaluationReport {
  const { schema, real, synthetic, holdout } = input;
  checkTable(real, schema, "real");
  checkTable(synthetic, schema, "synthetic");
  if (holdout) checkTable(holdout, schema, "holdout");

  const shapes = columnShapes(schema, real, synthetic);
  const pairs = pairTrends(schema, real, synthetic);
  const overall = clamp01(pairs.pairs.length > 0 ? (shapes.score + pairs.score) / 2 : shapes.score);

  const privacySkip = !holdout
    ? "no holdout given (--holdout): distances of synthetic rows need real non-training rows for comparison"
    : holdout.rowCount === 0
      ? "the holdout has no rows"
      : real.rowCount === 0
        ? "no real rows to measure distances to"
        : synthetic.rowCount === 0
          ? "no synthetic rows"
          : undefined;

  const report: EvaluationReport = {
    rows: holdout
      ? { real: real.rowCount, synthetic: synthetic.rowCount, holdout: holdout.rowCount }
      : { real: real.rowCount, synthetic: synthetic.rowCount },
    columnShapes: shapes,
    pairTrends: pairs,
    mlUtility: mlUtility({ schema, real, synthetic, holdout, target: input.target, fit: input.fit }),
    privacy: privacySkip
      ? { skipped: privacySkip }
      : { dcr: distanceToClosest({ schema, real, synthetic, holdout: holdout!, seed: input.seed }) },
    holdoutBaseline: !holdout
      ? { skipped: "no holdout given (--holdout)" }
      : holdout.rowCount === 0
        ? { skipped: "the holdout has no rows" }
        : { columnShapes: columnShapes(schema, real, holdout), pairTrends: pairTrends(schema, real, holdout) },
    overall,
  };
  return report;
}
