/**
 * A junction tree over the columns for a set of cliques that must be covered (the measured pairs): the
 * graph joining every clique's columns is triangulated by greedy elimination (fewest fill-in edges, then
 * the smallest clique table), its maximal cliques are joined by a maximum-weight spanning tree over the
 * sizes of their intersections (which, for the cliques of a chordal graph, has the running intersection
 * property), and the tree is listed root first, each clique after its parent. Columns no clique mentions
 * are cliques of their own, joined by empty separators.
 *
 * Deterministic: ties go to the lower column index, so the coordinator and anyone re-fitting the released
 * sums get the same tree.
 */

export interface JunctionTree {
  /** Each clique's columns, ascending. */
  cliques: number[][];
  /** Each clique's parent in the listed order (−1 for the root, which is clique 0); parents come first. */
  parent: number[];
  /** The columns each clique shares with its parent (ascending; empty for the root). */
  separators: number[][];
  /** Σ over cliques of the product of its columns' domain sizes: the model's table cells. */
  size: number;
}

/** Cells of a table over `vars`. */
export function tableSize(vars: readonly number[], domain: readonly number[]): number {
  let s = 1;
  for (const v of vars) s *= domain[v];
  return s;
}

/** The junction tree for `cover` (lists of columns, each a clique the model must contain). */
export function junctionTree(domain: readonly number[], cover: readonly (readonly number[])[]): JunctionTree {
  const k = domain.length;
  const adj: Uint8Array[] = Array.from({ length: k }, () => new Uint8Array(k));
  for (const c of cover) {
    for (const a of c) for (const b of c) if (a !== b) adj[a][b] = 1;
  }
  // Greedy elimination.
  const eliminated = new Uint8Array(k);
  const found: number[][] = [];
  for (let step = 0; step < k; step++) {
    let best = -1;
    let bestFill = Infinity;
    let bestWeight = Infinity;
    for (let v = 0; v < k; v++) {
      if (eliminated[v]) continue;
      const nb: number[] = [];
      for (let u = 0; u < k; u++) if (!eliminated[u] && adj[v][u]) nb.push(u);
      let fill = 0;
      for (let i = 0; i < nb.length; i++) for (let j = i + 1; j < nb.length; j++) if (!adj[nb[i]][nb[j]]) fill++;
      let weight = domain[v];
      for (const u of nb) weight *= domain[u];
      if (fill < bestFill || (fill === bestFill && weight < bestWeight)) {
        best = v;
        bestFill = fill;
        bestWeight = weight;
      }
    }
    const nb: number[] = [];
    for (let u = 0; u < k; u++) if (!eliminated[u] && adj[best][u]) nb.push(u);
    for (const a of nb) for (const b of nb) if (a !== b) adj[a][b] = 1;
    found.push([best, ...nb].sort((a, b) => a - b));
    eliminated[best] = 1;
  }
  // Maximal cliques, in a canonical order (by smallest column, then lexicographically).
  const subset = (a: number[], b: number[]) => a.length <= b.length && a.every((x) => b.includes(x));
  const maximal = found.filter((c, i) => !found.some((d, j) => j !== i && subset(c, d) && (c.length < d.length || j < i)));
  const lex = (a: number[], b: number[]) => {
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
    return a.length - b.length;
  };
  maximal.sort(lex);
  // Maximum spanning tree over intersection sizes (Prim from clique 0), then breadth-first order.
  const m = maximal.length;
  const shared = (a: number[], b: number[]) => a.filter((x) => b.includes(x));
  const inTree = new Uint8Array(m);
  const bestW = new Float64Array(m).fill(-1);
  const from = new Int32Array(m).fill(-1);
  const treeParent = new Int32Array(m).fill(-1);
  inTree[0] = 1;
  let current = 0;
  for (let added = 1; added < m; added++) {
    for (let v = 0; v < m; v++) {
      if (inTree[v]) continue;
      const w = shared(maximal[current], maximal[v]).length;
      if (w > bestW[v]) {
        bestW[v] = w;
        from[v] = current;
      }
    }
    let next = -1;
    for (let v = 0; v < m; v++) if (!inTree[v] && (next < 0 || bestW[v] > bestW[next])) next = v;
    inTree[next] = 1;
    treeParent[next] = from[next];
    current = next;
  }
  const order: number[] = [0];
  for (let h = 0; h < order.length; h++) for (let v = 0; v < m; v++) if (treeParent[v] === order[h]) order.push(v);
  const position = new Int32Array(m);
  order.forEach((c, i) => (position[c] = i));
  const cliques = order.map((c) => maximal[c]);
  const parent = order.map((c) => (treeParent[c] < 0 ? -1 : position[treeParent[c]]));
  return treeOf(cliques, parent, domain);
}

/** The tree of these cliques and parents (listed root first, parents first): its separators and size follow from them. */
export function treeOf(cliques: number[][], parent: number[], domain: readonly number[]): JunctionTree {
  const separators = cliques.map((c, i) => (parent[i] < 0 ? [] : c.filter((x) => cliques[parent[i]].includes(x))));
  const size = cliques.reduce((s, c) => s + tableSize(c, domain), 0);
  return { cliques, parent, separators, size };
}
