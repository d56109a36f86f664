/**
 * A person-readable text rendering of the fidelity report: scores in aligned tables, the holdout baseline
 * next to the synthetic scores, a short explanation of every metric, and what was skipped and why.
 */
import { isSkipped, type EvaluationReport, type HoldoutBaseline, type PairTrendScore } from "./report.js";

export interface FormatOptions {
  /** Pairs listed individually, lowest scores first (default 15); the rest are summarized. */
  maxPairs?: number;
}

type Align = "left" | "right";

/** Render rows of cells as columns padded to a common width, two spaces apart, each line indented. */
export function alignTable(rows: string[][], align: Align[], indent = "  "): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, k) => (widths[k] = Math.max(widths[k] ?? 0, cell.length)));
  return rows.map(
    (row) =>
      indent +
      row
        .map((cell, k) => ((align[k] ?? "left") === "right" ? cell.padStart(widths[k]) : cell.padEnd(widths[k])))
        .join("  ")
        .trimEnd(),
  );
}

const f3 = (x: number): string => (Number.isFinite(x) ? x.toFixed(3) : "n/a");
const pct = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : "n/a");

function heading(title: string): string[] {
  return ["", title, "-".repeat(title.length)];
}

export function formatReport(report: EvaluationReport, options: FormatOptions = {}): string {
  const maxPairs = options.maxPairs ?? 15;
  const baseline: HoldoutBaseline | undefined =
    report.holdoutBaseline && !isSkipped(report.holdoutBaseline) ? report.holdoutBaseline : undefined;
  const skipped: string[] = [];
  const lines: string[] = ["fedsynth fidelity report", "========================"];

  const rows = [["real (training)", String(report.rows.real)], ["synthetic", String(report.rows.synthetic)]];
  if (report.rows.holdout !== undefined) rows.push(["holdout", String(report.rows.holdout)]);
  lines.push(...heading("Rows"), ...alignTable(rows, ["left", "right"]));

  lines.push(...heading("Overall"));
  const overallRows = [
    ["overall score", f3(report.overall)],
    ["column shapes", f3(report.columnShapes.score), baseline ? `holdout baseline ${f3(baseline.columnShapes.score)}` : ""],
    ["column-pair trends", report.pairTrends.pairs.length > 0 ? f3(report.pairTrends.score) : "n/a", baseline && baseline.pairTrends.pairs.length > 0 ? `holdout baseline ${f3(baseline.pairTrends.score)}` : ""],
  ];
  lines.push(...alignTable(overallRows, ["left", "right", "left"]));

  // Column shapes.
  lines.push(...heading("Column shapes"));
  const shapeRows: string[][] = [["column", "metric", "synthetic", ...(baseline ? ["holdout"] : []), ""]];
  const shapeNotes: string[] = [];
  for (const [name, entry] of Object.entries(report.columnShapes.columns)) {
    const b = baseline?.columnShapes.columns[name];
    shapeRows.push([name, entry.metric, f3(entry.score), ...(baseline ? [b ? f3(b.score) : "n/a"] : []), entry.note ? "*" : ""]);
    if (entry.note) shapeNotes.push(`* ${name}: ${entry.note}`);
  }
  if (shapeRows.length === 1) lines.push("  (the schema has no columns)");
  else lines.push(...alignTable(shapeRows, ["left", "left", "right", "right", "left"]));
  for (const n of shapeNotes) lines.push(`  ${n}`);

  // Pair trends.
  lines.push(...heading("Column-pair trends"));
  const pairs = report.pairTrends.pairs;
  if (pairs.length === 0) {
    skipped.push(`Column-pair trends: ${report.pairTrends.note ?? "no pairs"}`);
    lines.push(`  ${report.pairTrends.note ?? "no pairs"}`);
  } else {
    const byMetric = (metric: string): PairTrendScore[] => pairs.filter((p) => p.metric === metric);
    const summary: string[][] = [];
    for (const metric of ["correlation", "contingency"]) {
      const ps = byMetric(metric);
      if (ps.length > 0) {
        const m = ps.reduce((s, p) => s + p.score, 0) / ps.length;
        summary.push([`${metric} pairs`, String(ps.length), `mean ${f3(m)}`]);
      }
    }
    lines.push(...alignTable(summary, ["left", "right", "left"]));
    const baselineScore = new Map<string, number>();
    for (const p of baseline?.pairTrends.pairs ?? []) baselineScore.set(pairKey(p), p.score);
    const sorted = [...pairs].sort((a, b) => a.score - b.score);
    const shown = sorted.slice(0, Math.max(0, maxPairs));
    lines.push("");
    lines.push(shown.length < pairs.length ? `  lowest ${shown.length} of ${pairs.length} pairs:` : "  all pairs, lowest first:");
    const pairRows: string[][] = [["columns", "metric", "synthetic", ...(baseline ? ["holdout"] : []), ""]];
    const pairNotes: string[] = [];
    for (const p of shown) {
      const b = baselineScore.get(pairKey(p));
      pairRows.push([`${p.columns[0]} × ${p.columns[1]}`, p.metric, f3(p.score), ...(baseline ? [b !== undefined ? f3(b) : "n/a"] : []), p.note ? "*" : ""]);
      if (p.note) pairNotes.push(`* ${p.columns[0]} × ${p.columns[1]}: ${p.note}`);
    }
    lines.push(...alignTable(pairRows, ["left", "left", "right", "right", "left"]));
    const hiddenNotes = sorted.slice(shown.length).filter((p) => p.note).length;
    for (const n of pairNotes) lines.push(`  ${n}`);
    if (hiddenNotes > 0) lines.push(`  (${hiddenNotes} pair(s) not shown also carry notes; see the JSON report)`);
  }

  // ML utility.
  lines.push(...heading("ML utility"));
  const ml = report.mlUtility;
  if (!ml || isSkipped(ml)) {
    const why = ml ? ml.skipped : "not computed";
    lines.push(`  skipped: ${why}`);
    skipped.push(`ML utility: ${why}`);
  } else {
    const kind = ml.aucKind === "binary" ? "ROC AUC" : `macro one-vs-rest AUC over ${ml.classesScored.length} classes`;
    lines.push(`  target '${ml.target}', ${ml.model}, ${kind}`);
    lines.push(
      ...alignTable(
        [
          ["holdout AUC, trained on real", f3(ml.auc.real), `${ml.trainRows.real} training rows`],
          ["holdout AUC, trained on synthetic", f3(ml.auc.synthetic), `${ml.trainRows.synthetic} training rows`],
          ["ratio synthetic / real", f3(ml.ratio), `tested on ${ml.testRows} holdout rows`],
        ],
        ["left", "right", "left"],
      ),
    );
    for (const n of ml.notes ?? []) lines.push(`  note: ${n}`);
  }

  // Privacy.
  lines.push(...heading("Privacy: distance to closest record"));
  const pv = report.privacy;
  if (!pv || isSkipped(pv)) {
    const why = pv ? pv.skipped : "not computed";
    lines.push(`  skipped: ${why}`);
    skipped.push(`Privacy: ${why}`);
  } else {
    const d = pv.dcr;
    lines.push(
      ...alignTable(
        [
          ["median distance, synthetic → closest real", f3(d.syntheticMedian), `${d.sampled.synthetic} rows measured`],
          ["median distance, holdout → closest real", f3(d.holdoutMedian), `${d.sampled.holdout} rows measured`],
          ["ratio synthetic / holdout", f3(d.ratio), dcrVerdict(d.ratio, d.holdoutMedian)],
          ["exact copies of a real row", pct(d.shareExactCopies), `holdout: ${pct(d.holdoutShareExactCopies)}`],
          ["synthetic closer than the median holdout row", pct(d.shareCloserThanHoldoutMedian), "about 50% expected"],
        ],
        ["left", "right", "left"],
      ),
    );
    for (const n of d.notes ?? []) lines.push(`  note: ${n}`);
  }

  if (report.holdoutBaseline && isSkipped(report.holdoutBaseline)) {
    skipped.push(`Holdout baseline: ${report.holdoutBaseline.skipped}`);
  } else if (!report.holdoutBaseline) {
    skipped.push("Holdout baseline: not computed");
  }

  lines.push(...heading("What the metrics mean"));
  lines.push(
    "  All scores lie in [0, 1]; higher is better. Missing values count everywhere as a value of their own.",
    "  Column shapes   numeric: 1 − Kolmogorov–Smirnov distance between the real and synthetic distributions,",
    "                  with 'missing' as an atom below the minimum; categorical: 1 − total variation distance",
    "                  over the categories and 'missing'.",
    "  Pair trends     two numeric columns: 1 − |ρ_real − ρ_synthetic| / 2 (Pearson, rows with both present);",
    "                  other pairs (or pairs without a correlation): 1 − total variation distance of the joint",
    "                  histogram of the binned columns, 'missing' included.",
    "  Overall         mean of the column-shape and pair-trend scores.",
    "  Holdout         the same scores for real holdout rows vs the training rows: what a fresh real sample",
    "  baseline        scores. Synthetic scores near the baseline are as good as can be expected.",
    "  ML utility      a logistic regression trained on real rows and one trained on synthetic rows, both",
    "                  scored by AUC on the holdout; a ratio near 1 means the synthetic data is as useful.",
    "  Privacy (DCR)   distance of each row to its closest training row (mean per-column distance: numeric",
    "                  |a − b| / range, categorical and missingness 0/1). A ratio ≥ ~1 means synthetic rows",
    "                  are no closer to training patients than new patients are; exact copies should be rare.",
  );

  lines.push(...heading("Skipped"));
  if (skipped.length === 0) lines.push("  nothing");
  else for (const s of skipped) lines.push(`  - ${s}`);

  return lines.join("\n") + "\n";
}

function dcrVerdict(ratio: number, holdoutMedian: number): string {
  if (holdoutMedian <= 1e-12) return "not informative: holdout rows coincide with training rows";
  return ratio >= 0.95 ? "ok: no closer than new patients" : "synthetic rows sit closer to training rows than new patients do";
}

function pairKey(p: PairTrendScore): string {
  return `${p.columns[0]}\u0000${p.columns[1]}`;
}
