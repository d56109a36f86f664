/**
 * Area under the ROC curve as the Mann–Whitney U statistic: AUC = (R₊ − n₊(n₊+1)/2) / (n₊ n₋) with R₊
 * the sum of the positives' ranks. Tied scores get mid-ranks, so a tie between a positive and a negative
 * counts ½ — the same as the trapezoidal ROC area.
 */

/** ROC AUC of `scores` for binary `labels` (truthy = positive); null if either class is absent. */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number | boolean>): number | null {
  const n = Math.min(scores.length, labels.length);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => scores[a] - scores[b]);
  let nPos = 0;
  let rankSumPos = 0;
  let i = 0;
  while (i < n) {
    let k = i;
    while (k + 1 < n && scores[order[k + 1]] === scores[order[i]]) k++;
    // Ranks i+1 .. k+1 (1-based) share the mid-rank.
    const midRank = (i + 1 + k + 1) / 2;
    for (let t = i; t <= k; t++) {
      if (labels[order[t]]) {
        nPos++;
        rankSumPos += midRank;
      }
    }
    i = k + 1;
  }
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return null;
  const auc = (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
  return Math.max(0, Math.min(1, auc));
}

/**
 * Macro-averaged one-vs-rest AUC. `proba` is row-major n × classes; `labels` are class indices. Only classes
 * with both positives and negatives among the labels are averaged; null if there is none.
 */
export function macroOneVsRestAuc(
  proba: ArrayLike<number>,
  classes: number,
  labels: ArrayLike<number>,
): { auc: number; perClass: (number | null)[] } | null {
  const n = labels.length;
  const perClass: (number | null)[] = [];
  let sum = 0;
  let count = 0;
  const scores = new Float64Array(n);
  const isPos = new Uint8Array(n);
  for (let c = 0; c < classes; c++) {
    for (let i = 0; i < n; i++) {
      scores[i] = proba[i * classes + c];
      isPos[i] = labels[i] === c ? 1 : 0;
    }
    const auc = rocAuc(scores, isPos);
    perClass.push(auc);
    if (auc !== null) {
      sum += auc;
      count++;
    }
  }
  return count > 0 ? { auc: sum / count, perClass } : null;
}
