/**
 * The fidelity report's shape. Everything here is plain JSON: numbers are always finite, optional parts are
 * either present or carry a `skipped` reason, so the report can be written with JSON.stringify as is.
 */

export type ShapeMetric = "KS" | "TVD";
export type PairMetric = "correlation" | "contingency";

export interface ColumnShapeScore {
  metric: ShapeMetric;
  /** 1 − KS statistic (numeric) or 1 − total variation distance (categorical), both with "missing" included. */
  score: number;
  note?: string;
}

export interface ColumnShapes {
  /** Mean of the per-column scores (0 when the schema has no columns). */
  score: number;
  columns: { [name: string]: ColumnShapeScore };
}

export interface PairTrendScore {
  columns: [string, string];
  metric: PairMetric;
  score: number;
  note?: string;
}

export interface PairTrends {
  /** Mean of the per-pair scores (0, with a note, when the schema has fewer than two columns). */
  score: number;
  pairs: PairTrendScore[];
  note?: string;
}

export interface Skipped {
  skipped: string;
}

export interface MlUtility {
  target: string;
  model: "logistic-regression";
  /** "binary" → ROC AUC; "macro-ovr" → macro average of one-vs-rest AUCs over classes present in the holdout. */
  aucKind: "binary" | "macro-ovr";
  /** Holdout AUC of a model trained on the real rows, and of one trained on the synthetic rows. */
  auc: { real: number; synthetic: number };
  /** synthetic / real (capped at RATIO_CAP). */
  ratio: number;
  /** Training and test rows actually used (rows whose target is missing are dropped). */
  trainRows: { real: number; synthetic: number };
  testRows: number;
  /** Classes of the target present in the holdout with both positives and negatives (the AUC averages over these). */
  classesScored: string[];
  notes?: string[];
}

export interface DistanceToClosest {
  /** Median over (sampled) synthetic rows of the distance to the closest real training row. */
  syntheticMedian: number;
  /** Median over (sampled) holdout rows of the distance to the closest real training row. */
  holdoutMedian: number;
  /** syntheticMedian / holdoutMedian (capped at RATIO_CAP); ≥ ~1: synthetic rows are no closer to training rows than new patients are. */
  ratio: number;
  /** Share of synthetic rows at distance 0 from some real row: exact copies. */
  shareExactCopies: number;
  /** The same share for holdout rows — how often real patients coincide by chance under this schema. */
  holdoutShareExactCopies: number;
  /** Share of synthetic rows closer to the training rows than the median holdout row is. (About 0.5 is expected.) */
  shareCloserThanHoldoutMedian: number;
  sampled: { synthetic: number; holdout: number };
  notes?: string[];
}

export interface Privacy {
  dcr: DistanceToClosest;
}

export interface HoldoutBaseline {
  columnShapes: ColumnShapes;
  pairTrends: PairTrends;
}

export interface EvaluationReport {
  rows: { real: number; synthetic: number; holdout?: number };
  columnShapes: ColumnShapes;
  pairTrends: PairTrends;
  mlUtility?: MlUtility | Skipped;
  privacy?: Privacy | Skipped;
  /** The same shape and pair metrics for holdout vs real: what "as good as a fresh real sample" scores. */
  holdoutBaseline?: HoldoutBaseline | Skipped;
  /** Mean of columnShapes.score and pairTrends.score (column shapes alone when there are no pairs). */
  overall: number;
}

/** Ratios are capped so that they stay finite (and JSON-serializable) when the denominator is 0 or tiny. */
export const RATIO_CAP = 100;

/** a / b, finite: 1 when both are 0, RATIO_CAP when only b is 0, capped at RATIO_CAP otherwise. */
export function safeRatio(a: number, b: number): number {
  if (!Number.isFinite(a) || !Number.isFinite(b)) return 0;
  if (b <= 0) return a <= 0 ? 1 : RATIO_CAP;
  return Math.min(RATIO_CAP, Math.max(0, a / b));
}

/** Mean of finite values; `empty` when there are none. */
export function mean(values: number[], empty = 0): number {
  let sum = 0;
  let n = 0;
  for (const v of values) {
    if (Number.isFinite(v)) {
      sum += v;
      n++;
    }
  }
  return n > 0 ? sum / n : empty;
}

/** Clamp to [0, 1], mapping NaN to 0. */
export function clamp01(x: number): number {
  if (!(x > 0)) return 0;
  return x > 1 ? 1 : x;
}

export function isSkipped(x: unknown): x is Skipped {
  return typeof x === "object" && x !== null && typeof (x as Skipped).skipped === "string";
}
