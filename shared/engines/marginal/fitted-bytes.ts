/**
 * The fit section of a version-3 model file (model-bytes.ts): the fitted junction-tree model, so that reading
 * a model and sampling it needs no fit (a fit of 20 columns takes seconds; reading this, milliseconds).
 * Everything of a JointModel that is not recomputed from the released sums on reading: the columns' model
 * groups, the tree, the model's pairs and triples, and the clique marginals. The columns' cell and grid-value
 * probabilities (JointModel p, values) and the row count are collect()'s reading of the sums, which every
 * read runs anyway; the domain, the separators and the tree's size follow from what is stored.
 *
 * All little-endian; u32 unless said, a count before what it counts:
 *   k                                   columns (the schema's)
 *   k × { g, (g − 1) × start }           each column's groups: g ≥ 1, then the first cell of groups 1 … g − 1,
 *                                        strictly increasing within 1 … cells − 1 (the model's groups are runs
 *                                        of consecutive cells: estimate.ts refinement)
 *   m, m × { parent + 1, n, n × column } the cliques, root first, each after its parent (0: the root, clique 0
 *                                        only), each's columns ascending
 *   P, P × { a, b }                      the model's pairs (a < b)
 *   T, T × { a, b, c }                   its 3-way tables' columns (a < b < c)
 *   iterations, f64 loss                 the fit's diagnostics
 *   f64 × Σ_cliques Π groups             each clique's joint probabilities over its columns' groups, row-major
 *                                        (last column fastest), in clique order
 * Float64 for the marginals: the stored fit is then the in-memory one bit for bit, so a read model samples
 * exactly the rows the coordinator's would, and an auditor's refit can be compared for equality (fit-check.ts).
 * The tables are at most MODEL_CELLS (30,000) cells, so the section is at most ~240 KB whatever the schema;
 * float32 would save half of that at the price of both properties.
 */
import type { HistogramLayout } from "../independent/histogram.js";
import type { FedsynthError } from "../../errors.js";
import type { Collected, JointModel } from "./estimate.js";
import type { Grouping } from "./discretise.js";
import { tableSize, treeOf } from "./junction-tree.js";

/** A clique's probabilities may sum to less than 1 only by rounding (or to 0 for a model of no rows: pgm.ts). */
const SUM_TOLERANCE = 1e-6;

export function encodeFit(model: JointModel): Uint8Array {
  const { fit, refine, pairs, triples } = model;
  const { cliques, parent } = fit.tree;
  const starts = refine.map(groupStarts);
  const words = 1 + starts.reduce((n, s) => n + 1 + s.length, 0) + 1 + cliques.reduce((n, c) => n + 2 + c.length, 0) + 1 + 2 * pairs.length + 1 + 3 * triples.length + 1;
  const cells = fit.marginals.reduce((n, m) => n + m.length, 0);
  const bytes = new Uint8Array(4 * words + 8 + 8 * cells);
  const view = new DataView(bytes.buffer);
  let pos = 0;
  const u32 = (x: number) => {
    view.setUint32(pos, x, true);
    pos += 4;
  };
  const f64 = (x: number) => {
    view.setFloat64(pos, x, true);
    pos += 8;
  };
  u32(refine.length);
  for (const s of starts) {
    u32(s.length + 1);
    s.forEach(u32);
  }
  u32(cliques.length);
  cliques.forEach((c, i) => {
    u32(parent[i] + 1);
    u32(c.length);
    c.forEach(u32);
  });
  u32(pairs.length);
  for (const p of pairs) p.forEach(u32);
  u32(triples.length);
  for (const t of triples) t.forEach(u32);
  u32(fit.iterations);
  f64(fit.loss);
  for (const m of fit.marginals) m.forEach(f64);
  return bytes;
}

/** The first cell of every group but the first. */
function groupStarts(g: Grouping): number[] {
  const out: number[] = [];
  for (let c = 1; c < g.length; c++) if (g[c] !== g[c - 1]) out.push(c);
  return out;
}

/**
 * The fitted model of a fit section, checked against the schema's layout and against itself: every count,
 * column and group in range, the tree one whose cliques the sampler can draw parents first (every column in
 * some clique, new in exactly one), every pair and triple within a clique, and the marginals finite,
 * non-negative and of one total. `collected` is the reading of the same file's sums. Errors come from `bad`.
 */
export function decodeFit(section: Uint8Array, layout: HistogramLayout, collected: Collected, bad: (why: string) => FedsynthError): JointModel {
  const view = new DataView(section.buffer, section.byteOffset, section.byteLength);
  let pos = 0;
  const u32 = (what: string) => {
    if (pos + 4 > section.length) throw bad(`its fit is truncated (in ${what})`);
    const x = view.getUint32(pos, true);
    pos += 4;
    return x;
  };
  const k = layout.columns;
  const columnOf = (what: string) => {
    const v = u32(what);
    if (v >= k) throw bad(`its fit's ${what} names column ${v + 1}, the schema has ${k}`);
    return v;
  };
  const ascending = (vars: number[], what: string) => {
    for (let i = 1; i < vars.length; i++) if (vars[i] <= vars[i - 1]) throw bad(`its fit's ${what} has columns ${vars.join(",")}, not ascending`);
    return vars;
  };

  const columns = u32("the column count");
  if (columns !== k) throw bad(`its fit has ${columns} columns, the schema ${k} (a model of another schema)`);
  const refine: Grouping[] = layout.sizes.map((cells, j) => {
    const groups = u32(`column ${j + 1}'s groups`);
    if (groups < 1 || groups > cells) throw bad(`its fit gives column ${j + 1} ${groups} groups, it has ${cells} cells`);
    const out: Grouping = new Array(cells).fill(0);
    let previous = 0;
    for (let g = 1; g < groups; g++) {
      const start = u32(`column ${j + 1}'s groups`);
      if (start <= previous || start >= cells) throw bad(`its fit's group ${g + 1} of column ${j + 1} starts at cell ${start}, outside ${previous + 1} … ${cells - 1}`);
      for (let c = start; c < cells; c++) out[c] = g;
      previous = start;
    }
    return out;
  });
  const domain = refine.map((g) => g[g.length - 1] + 1);

  const m = u32("the clique count");
  if (m < 1 || m > k) throw bad(`its fit has ${m} cliques, a tree of ${k} columns has 1 … ${k}`);
  const cliques: number[][] = [];
  const parent: number[] = [];
  const seen = new Uint8Array(k);
  for (let i = 0; i < m; i++) {
    const up = u32(`clique ${i + 1}`) - 1;
    if (i === 0 ? up !== -1 : up < 0 || up >= i) throw bad(`its fit's clique ${i + 1} has parent ${up + 1}${i === 0 ? ", the root has none" : `, a parent comes before it (1 … ${i})`}`);
    const n = u32(`clique ${i + 1}`);
    if (n < 1 || n > k) throw bad(`its fit's clique ${i + 1} has ${n} columns`);
    const vars = ascending(Array.from({ length: n }, () => columnOf(`clique ${i + 1}`)), `clique ${i + 1}`);
    // What the clique shares with the cliques before it must be what it shares with its parent: the
    // sampler draws the rest, and only the rest, given that separator.
    const fresh = vars.filter((v) => !seen[v]);
    const shared = vars.filter((v) => seen[v]);
    if (fresh.length === 0) throw bad(`its fit's clique ${i + 1} has no column of its own`);
    if (i > 0 && shared.some((v) => !cliques[up].includes(v))) throw bad(`its fit's clique ${i + 1} shares a column with an earlier clique that is not its parent's (not a junction tree)`);
    for (const v of fresh) seen[v] = 1;
    cliques.push(vars);
    parent.push(up);
  }
  const missing = seen.indexOf(0);
  if (missing >= 0) throw bad(`its fit's cliques leave out column ${missing + 1}`);

  const inClique = (vars: number[], what: string) => {
    if (!cliques.some((q) => vars.every((v) => q.includes(v)))) throw bad(`its fit's ${what} (columns ${vars.map((v) => v + 1).join(",")}) is in no clique`);
    return vars;
  };
  const pairCount = u32("the pair count");
  const pairs: [number, number][] = [];
  for (let t = 0; t < pairCount; t++) {
    const what = `pair ${t + 1}`;
    pairs.push(inClique(ascending([columnOf(what), columnOf(what)], what), what) as [number, number]);
  }
  const tripleCount = u32("the triple count");
  const triples: [number, number, number][] = [];
  for (let t = 0; t < tripleCount; t++) {
    const what = `3-way table ${t + 1}`;
    triples.push(inClique(ascending([columnOf(what), columnOf(what), columnOf(what)], what), what) as [number, number, number]);
  }
  const iterations = u32("the iterations");
  if (pos + 8 > section.length) throw bad("its fit is truncated (in the loss)");
  const loss = view.getFloat64(pos, true);
  pos += 8;
  if (!(loss >= 0) || !Number.isFinite(loss)) throw bad(`its fit's loss is ${loss}, not a finite value >= 0`);

  const tree = treeOf(cliques, parent, domain);
  const sizes = cliques.map((c) => tableSize(c, domain));
  const cells = tree.size;
  const left = (section.length - pos) / 8;
  if (left !== cells) throw bad(`its fit's cliques have ${cells} cells, the file holds ${left < cells ? "only " : ""}${Math.floor(left)} values${left > cells ? " (bytes beyond its fit)" : ""}`);
  let total = NaN;
  const marginals = sizes.map((size, i) => {
    const out = new Float64Array(size);
    let sum = 0;
    for (let c = 0; c < size; c++, pos += 8) {
      const x = view.getFloat64(pos, true);
      if (!(x >= 0) || !Number.isFinite(x)) throw bad(`its fit's clique ${i + 1} holds ${x} at cell ${c + 1}, not a probability`);
      out[c] = x;
      sum += x;
    }
    if (i === 0) total = sum;
    if (sum > 1 + SUM_TOLERANCE || Math.abs(sum - total) > SUM_TOLERANCE) throw bad(`its fit's clique ${i + 1} sums to ${sum}${i > 0 ? `, clique 1 to ${total}` : ""}`);
    return out;
  });

  return {
    fit: { tree, domain, marginals, rows: collected.rows, iterations, loss },
    refine, p: collected.p, values: collected.values, pairs, triples,
  };
}
