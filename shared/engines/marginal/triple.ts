/**
 * 3-way tables as the coordinator reads them (post-processing of released sums): a selected round's
 * table over three columns' coarse groups, and its James–Stein shrinkage. The table's departure from
 * independence, d = y − N·r⊗s⊗t (r, s, t: the columns' group shares), splits into orthogonal ANOVA parts —
 * three 2-way interactions (each double-centred, constant along the third axis) and the 3-way
 * interaction (what no pair table can say) — and each part is shrunk by its own max(0, 1 − df·v/‖I‖²), as
 * estimate.ts shrinks a pair table's interaction: pure noise has about df·v of each part, so only the
 * dependence that stands out of its noise is kept. The table's 1-way margins are kept as they are.
 */
import { groupCount, type Grouping } from "./discretise.js";

export interface TripleMeasurement {
  vars: [number, number, number];
  groups: [Grouping, Grouping, Grouping];
  /** The pooled noisy table, row-major (the first column's groups slowest), and each cell's noise variance. */
  y: Float64Array;
  variance: number;
}

export interface TripleShrink {
  shrunk: Float64Array;
  /** Each part's ‖I‖² / (df · v), in the order ab, ac, bc, abc: about 1 for pure noise. */
  strength: [number, number, number, number];
}

/** Cells of a table over these groupings. */
export function tripleSize(groups: readonly Grouping[]): number {
  return groups.reduce((s, g) => s * groupCount(g), 1);
}

export function shrinkTriple(y: ArrayLike<number>, shares: [ArrayLike<number>, ArrayLike<number>, ArrayLike<number>], N: number, variance: number): TripleShrink {
  const [r, s, t] = shares;
  const [A, B, C] = [r.length, s.length, t.length];
  const at = (a: number, b: number, c: number) => (a * B + b) * C + c;
  const d = new Float64Array(A * B * C);
  for (let a = 0; a < A; a++) for (let b = 0; b < B; b++) for (let c = 0; c < C; c++) d[at(a, b, c)] = y[at(a, b, c)] - N * r[a] * s[b] * t[c];
  // Means over the axes left out: m_ab over c, m_a over b and c, and so on.
  const mab = new Float64Array(A * B);
  const mac = new Float64Array(A * C);
  const mbc = new Float64Array(B * C);
  const ma = new Float64Array(A);
  const mb = new Float64Array(B);
  const mc = new Float64Array(C);
  let m = 0;
  for (let a = 0; a < A; a++) {
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < C; c++) {
        const x = d[at(a, b, c)];
        mab[a * B + b] += x / C;
        mac[a * C + c] += x / B;
        mbc[b * C + c] += x / A;
        ma[a] += x / (B * C);
        mb[b] += x / (A * C);
        mc[c] += x / (A * B);
        m += x / (A * B * C);
      }
    }
  }
  const iab = (a: number, b: number) => mab[a * B + b] - ma[a] - mb[b] + m;
  const iac = (a: number, c: number) => mac[a * C + c] - ma[a] - mc[c] + m;
  const ibc = (b: number, c: number) => mbc[b * C + c] - mb[b] - mc[c] + m;
  const ss = [0, 0, 0, 0];
  const three = new Float64Array(A * B * C);
  for (let a = 0; a < A; a++) {
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < C; c++) {
        const x = d[at(a, b, c)] - mab[a * B + b] - mac[a * C + c] - mbc[b * C + c] + ma[a] + mb[b] + mc[c] - m;
        three[at(a, b, c)] = x;
        ss[0] += iab(a, b) ** 2;
        ss[1] += iac(a, c) ** 2;
        ss[2] += ibc(b, c) ** 2;
        ss[3] += x * x;
      }
    }
  }
  const df = [(A - 1) * (B - 1), (A - 1) * (C - 1), (B - 1) * (C - 1), (A - 1) * (B - 1) * (C - 1)];
  const keep = ss.map((x, i) => (df[i] > 0 && x > 0 && Number.isFinite(x) ? Math.max(0, 1 - (df[i] * variance) / x) : 0));
  const strength = ss.map((x, i) => (df[i] > 0 && variance > 0 ? x / (df[i] * variance) : 0)) as TripleShrink["strength"];
  const shrunk = new Float64Array(A * B * C);
  for (let a = 0; a < A; a++) {
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < C; c++) {
        const k = at(a, b, c);
        shrunk[k] = y[k] - (1 - keep[0]) * iab(a, b) - (1 - keep[1]) * iac(a, c) - (1 - keep[2]) * ibc(b, c) - (1 - keep[3]) * three[k];
      }
    }
  }
  return { shrunk, strength };
}
