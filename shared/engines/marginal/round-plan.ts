/**
 * Round 2's public plan, from round 1's released sums only (post-processing): the maximum spanning tree
 * over the pooled noisy scores, and each column's groups of about equal pooled mass. Sites check it with
 * `readTreePlan` before they compute anything from it.
 */
import type { JsonObject } from "../engine.js";
import type { Schema } from "../../schema/schema.js";
import type { HistogramLayout } from "../independent/histogram.js";
import { checkGrouping, massGrouping, type Grouping } from "./discretise.js";
import { fitTree } from "./estimate.js";
import { maximumSpanningTree } from "./scores.js";
import { invalid } from "./config.js";

export interface TreePlan {
  edges: [number, number][];
  groups: Grouping[];
}

/** The plan from round 1's pooled coarse cells and scores. */
/**
 * `cellSd`: the noise standard deviation of one pooled 2-way cell (public: the config's σ and round 1's
 * number of contributors). Each column gets about √(N / (CELL_SIGNAL · cellSd)) groups besides missing
 * (N: the pooled noisy row count), within [2, its cap], so that an average cell of a table of two such
 * columns holds CELL_SIGNAL times its noise: small cohorts get coarse tables, large ones fine tables.
 */
export const CELL_SIGNAL = 3;

export function planTree(schema: Schema, layout: HistogramLayout, coarse: Float64Array, scores: Float64Array, cellSd: number): TreePlan {
  const independent = fitTree({ layout, marginals: coarse, marginalVariance: 1, edges: [], groups: [], tables: new Float64Array(0), tableVariance: 1 });
  const target = Math.max(2, Math.floor(Math.sqrt(Math.max(0, independent.rows) / (CELL_SIGNAL * cellSd))));
  const groups = schema.columns.map((c, j) => massGrouping(c, layout.sizes[j], independent.p[j], target));
  const edges = maximumSpanningTree(layout.columns, scores);
  return { edges, groups };
}

export function treePlanJson(plan: TreePlan): JsonObject {
  return { edges: plan.edges.map((e) => [...e]), groups: plan.groups.map((g) => [...g]) };
}

/** The round config read back and checked: a spanning tree listed parent before child, and valid groupings. */
export function readTreePlan(roundConfig: JsonObject, schema: Schema, layout: HistogramLayout): TreePlan {
  const bad = (why: string) => invalid(`The marginal engine's round config is invalid: ${why}`, "Use the round config the coordinator's planRound produced for this study.");
  const edges = roundConfig?.edges;
  const groups = roundConfig?.groups;
  const k = layout.columns;
  if (!Array.isArray(edges) || edges.length !== k - 1) throw bad(`expected ${k - 1} edges`);
  if (!Array.isArray(groups) || groups.length !== k) throw bad(`expected the groups of ${k} columns`);
  const seen = new Uint8Array(k);
  seen[0] = 1;
  const out: [number, number][] = edges.map((e) => {
    if (!Array.isArray(e) || e.length !== 2 || !e.every((v) => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) < k)) throw bad("an edge is not a pair of column indices");
    const [a, b] = e as [number, number];
    if (!seen[a] || seen[b]) throw bad(`edge [${a}, ${b}] does not extend the tree from column 0`);
    seen[b] = 1;
    return [a, b];
  });
  return { edges: out, groups: schema.columns.map((c, j) => checkGrouping(groups[j], c, layout.sizes[j])) };
}
