/**
 * ML utility: is the synthetic data as useful as the real data for a prediction task? One logistic
 * regression is trained on the real rows and one on the synthetic rows; both are scored by AUC on the
 * holdout (real rows no model has seen).
 */
import { FedsynthError } from "../shared/errors.js";
import type { Schema, Table } from "../shared/schema/schema.js";
import { macroOneVsRestAuc, rocAuc } from "./auc.js";
import { encodeFeatures, featureLayout } from "./features.js";
import { fitLogisticRegression, predictProba, type FitOptions } from "./logistic-regression.js";
import { safeRatio, type MlUtility, type Skipped } from "./report.js";
import { isPresent } from "./tables.js";

export interface MlUtilityInput {
  schema: Schema;
  real: Table;
  synthetic: Table;
  holdout?: Table;
  /** Target column name; default: the schema's declared outcome, else its last categorical column. */
  target?: string;
  fit?: FitOptions;
}

/**
 * The target column: the named one, else the schema's declared outcome, else the last categorical column.
 * Throws for a name not in the schema (a typo on the command line); returns a skip reason when there is no
 * usable categorical target.
 */
export function resolveTarget(schema: Schema, target: string | undefined = schema.outcome): { index: number; name: string } | Skipped {
  if (target !== undefined) {
    const index = schema.columns.findIndex((c) => c.name === target);
    if (index < 0) {
      throw new FedsynthError("invalid-argument", `target column '${target}' is not in the schema`, {
        hint: `choose one of: ${schema.columns.map((c) => c.name).join(", ")}`,
      });
    }
    if (schema.columns[index].type !== "categorical") {
      return { skipped: `target column '${target}' is numeric; ML utility needs a categorical target (--target)` };
    }
    return { index, name: target };
  }
  for (let j = schema.columns.length - 1; j >= 0; j--) {
    if (schema.columns[j].type === "categorical") return { index: j, name: schema.columns[j].name };
  }
  return { skipped: "the schema has no categorical column to use as the prediction target (--target)" };
}

interface Labelled {
  rows: Int32Array;
  labels: Int32Array;
}

function labelledRows(table: Table, schema: Schema, target: number): Labelled {
  const column = schema.columns[target];
  const cells = table.columns[target];
  const rows: number[] = [];
  const labels: number[] = [];
  for (let i = 0; i < table.rowCount; i++) {
    const c = cells[i];
    if (isPresent(column, c)) {
      rows.push(i);
      labels.push(c);
    }
  }
  return { rows: Int32Array.from(rows), labels: Int32Array.from(labels) };
}

export function mlUtility(input: MlUtilityInput): MlUtility | Skipped {
  const { schema, real, synthetic, holdout } = input;
  const resolved = resolveTarget(schema, input.target);
  if ("skipped" in resolved) return resolved;
  if (!holdout) return { skipped: "no holdout given (--holdout): the models must be tested on real rows neither was trained on" };

  const targetColumn = schema.columns[resolved.index];
  if (targetColumn.type !== "categorical") return { skipped: "target is not categorical" };
  const classes = targetColumn.values.length;
  const test = labelledRows(holdout, schema, resolved.index);
  if (test.rows.length === 0) return { skipped: `no holdout row has a value for the target '${resolved.name}'` };
  const counts = new Int32Array(classes);
  for (const y of test.labels) counts[y]++;
  const scored: number[] = [];
  for (let c = 0; c < classes; c++) if (counts[c] > 0 && counts[c] < test.rows.length) scored.push(c);
  if (scored.length === 0) {
    return { skipped: `the holdout has a single class of the target '${resolved.name}', so AUC is undefined` };
  }

  const layout = featureLayout(schema, resolved.index);
  const testX = encodeFeatures(schema, holdout, layout, test.rows);
  const binary = classes === 2;
  const notes: string[] = [];

  const trainAndScore = (table: Table, label: "real" | "synthetic"): { auc: number; rows: number } => {
    const train = labelledRows(table, schema, resolved.index);
    const present = new Set(train.labels);
    if (train.rows.length === 0) {
      notes.push(`the ${label} training set has no row with a target value: its AUC is reported as 0.5`);
      return { auc: 0.5, rows: 0 };
    }
    if (present.size < 2) {
      const only = targetColumn.values[train.labels[0]];
      notes.push(`the ${label} training set has a single target class ('${only}'): its AUC is reported as 0.5`);
      return { auc: 0.5, rows: train.rows.length };
    }
    const model = fitLogisticRegression(encodeFeatures(schema, table, layout, train.rows), train.labels, classes, input.fit);
    const proba = predictProba(model, testX);
    let auc: number | null;
    if (binary) {
      const scores = new Float64Array(test.rows.length);
      for (let i = 0; i < scores.length; i++) scores[i] = proba[i * 2 + 1];
      auc = rocAuc(scores, Uint8Array.from(test.labels, (y) => (y === 1 ? 1 : 0)));
    } else {
      auc = macroOneVsRestAuc(proba, classes, test.labels)?.auc ?? null;
    }
    return { auc: auc ?? 0.5, rows: train.rows.length };
  };

  const r = trainAndScore(real, "real");
  const s = trainAndScore(synthetic, "synthetic");
  const dropped = holdout.rowCount - test.rows.length;
  if (dropped > 0) notes.push(`${dropped} holdout row(s) with a missing target were left out`);
  const result: MlUtility = {
    target: resolved.name,
    model: "logistic-regression",
    aucKind: binary ? "binary" : "macro-ovr",
    auc: { real: r.auc, synthetic: s.auc },
    ratio: safeRatio(s.auc, r.auc),
    trainRows: { real: r.rows, synthetic: s.rows },
    testRows: test.rows.length,
    classesScored: scored.map((c) => targetColumn.values[c]),
  };
  if (notes.length > 0) result.notes = notes;
  return result;
}
