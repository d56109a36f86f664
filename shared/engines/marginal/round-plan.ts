/**
 * Round configs of the marginal engine: what each round measures, as the coordinator's planRound writes it
 * and as sites read it back (readRoundPlan checks it before a site computes anything from it).
 *
 *   round 1 (marginals only)  {}
 *   the all-pairs round       { pairsGroups: Grouping[] }         every pair's table over these groups, or
 *                             { pairsSigns: number[][] }          every pair's contrast Σ sign_a · sign_b
 *                             (with an outcome declared in the schema also outcomeSigns: number[][], each
 *                             column's coefficients −1, 0 or 1 in the contrasts of the outcome's pairs)
 *   a selected round          { groups: Grouping[], tables: [a, b][], weights: number[], columns: j[], columnWeights: number[] }
 *                             (pair tables over the groups, and columns' coarse 1-way cells; Σ of all weights² ≤ 1)
 *                             with settings.triples also { tripleGroups: Grouping[], triples: [a, b, c][], tripleWeights: number[] }
 *                             (3-way tables over coarser groups, their weights in the same Σ w² ≤ 1)
 *                             with settings.annealing "aim" also { budget: number }, the round's fraction
 *                             of the selected tables' share of the budget (anneal.ts); without it, 1/S
 * (round 1 of a study of ≤ 2 rounds carries the marginals and the all-pairs part: { pairsGroups }.)
 *
 * Selection itself (which tables, which weights, which groups) is in select.ts.
 */
import type { JsonObject } from "../engine.js";
import { outcomeIndex, type Schema } from "../../schema/schema.js";
import type { HistogramLayout } from "../independent/histogram.js";
import { checkGrouping, TRIPLE_GROUPS, type Grouping } from "./discretise.js";
import { invalid, roundParts, type MarginalConfig } from "./config.js";

export interface RoundPlan {
  pairsGroups?: Grouping[];
  /** Scalars instead of tables: per column, each cell's sign (±1); pair (a, b) is Σ_rows sign_a · sign_b. */
  pairsSigns?: number[][];
  /**
   * With a declared outcome: per column, the coefficients (−1, 0 or 1) of its cells in its contrast with
   * the outcome (and the outcome's own in all of them), instead of pairsSigns.
   */
  outcomeSigns?: number[][];
  /** All pairs a < b in lexicographic order (with pairsGroups). */
  pairs?: [number, number][];
  selectedGroups?: Grouping[];
  selected?: [number, number][];
  weights?: number[];
  /** Columns whose coarse 1-way cells the selected round measures again, with their weights. */
  columns?: number[];
  columnWeights?: number[];
  /** 3-way tables a < b < c over tripleGroups, with their weights. */
  tripleGroups?: Grouping[];
  triples?: [number, number, number][];
  tripleWeights?: number[];
  /** A selected round's fraction of the selected tables' share of the budget (budget.ts selectedFraction). */
  budget?: number;
}

/** All pairs i < j, in lexicographic order: the order of the all-pairs tables. */
export function pairList(columns: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < columns; i++) for (let j = i + 1; j < columns; j++) out.push([i, j]);
  return out;
}

/** Index of pair (a, b), a < b, in pairList order. */
export function pairIndex(columns: number, a: number, b: number): number {
  return a * columns - (a * (a + 1)) / 2 + (b - a - 1);
}


/**
 * A selected round's own budget (settings.annealing "aim"), all that its charge needs of its round config:
 * at most the whole selected share. What the study has left is each site's own check: its ledger's charges
 * in the study and this round's, composed, within the study's epsilon (site-agent/budget.ts taskCharge).
 */
export function readRoundBudget(roundConfig: JsonObject, config: MarginalConfig, round: number): number | undefined {
  const b = (roundConfig as Record<string, unknown> | null)?.budget;
  if (b === undefined || !roundParts(config, round).selected) return undefined;
  if (config.settings.annealing === "equal") throw invalid(`The marginal engine's round config is invalid: round ${round} sets a budget in a study that splits it equally`, "Use the round config the coordinator's planRound produced for this study.");
  if (typeof b !== "number" || !Number.isFinite(b) || !(b > 0) || b > 1) throw invalid(`The marginal engine's round config is invalid: round ${round}'s budget must be a fraction in (0, 1], got ${JSON.stringify(b)}`, "Use the round config the coordinator's planRound produced for this study.");
  return b;
}

/** The round config read back and checked against the study: groupings within their caps, tables within bounds, Σ w² ≤ 1. */
export function readRoundPlan(roundConfig: JsonObject, schema: Schema, layout: HistogramLayout, config: MarginalConfig, round: number): RoundPlan {
  const bad = (why: string) => invalid(`The marginal engine's round config is invalid: ${why}`, "Use the round config the coordinator's planRound produced for this study.");
  const parts = roundParts(config, round);
  const k = layout.columns;
  const rc = (roundConfig ?? {}) as Record<string, unknown>;
  const scalars = config.settings.pairsKind === "scalars";
  const allowed = new Set([...(parts.pairs ? (scalars ? ["pairsSigns", ...(outcomeIndex(schema) >= 0 ? ["outcomeSigns"] : [])] : ["pairsGroups"]) : []), ...(parts.selected ? ["groups", "tables", "weights", "columns", "columnWeights"] : []),
    ...(parts.selected && config.settings.triples !== "off" ? ["tripleGroups", "triples", "tripleWeights"] : []), ...(parts.selected && config.settings.annealing !== "equal" ? ["budget"] : [])]);
  for (const key of Object.keys(rc)) if (!allowed.has(key)) throw bad(`round ${round} has no field '${key}'`);
  const groupings = (raw: unknown, most: number, what: string): Grouping[] => {
    if (!Array.isArray(raw) || raw.length !== k) throw bad(`expected the ${what} of ${k} columns`);
    return schema.columns.map((c, j) => checkGrouping(raw[j], c, layout.sizes[j], most));
  };
  const plan: RoundPlan = {};
  if (parts.pairs && scalars) {
    const signs = rc.pairsSigns;
    if (!Array.isArray(signs) || signs.length !== k) throw bad(`expected the signs of ${k} columns`);
    plan.pairsSigns = signs.map((s, j) => {
      if (!Array.isArray(s) || s.length !== layout.sizes[j] || !s.every((v) => v === 1 || v === -1)) throw bad(`column ${j + 1}'s signs must be ${layout.sizes[j]} values of 1 or -1`);
      return s as number[];
    });
    if (rc.outcomeSigns !== undefined) {
      const os = rc.outcomeSigns;
      if (!Array.isArray(os) || os.length !== k) throw bad(`expected the outcome signs of ${k} columns`);
      plan.outcomeSigns = os.map((s, j) => {
        if (!Array.isArray(s) || s.length !== layout.sizes[j] || !s.every((v) => v === 1 || v === -1 || v === 0)) throw bad(`column ${j + 1}'s outcome signs must be ${layout.sizes[j]} values of 1, 0 or -1`);
        return s as number[];
      });
    }
    plan.pairs = pairList(k);
  } else if (parts.pairs) {
    plan.pairsGroups = groupings(rc.pairsGroups, config.settings.pairsGroups, "pair groups");
    plan.pairs = pairList(k);
  }
  if (parts.selected) {
    plan.selectedGroups = groupings(rc.groups, Infinity, "groups");
    const tables = rc.tables ?? [];
    const weights = rc.weights ?? [];
    const columns = rc.columns ?? [];
    const columnWeights = rc.columnWeights ?? [];
    const triples = rc.triples ?? [];
    const tripleWeights = rc.tripleWeights ?? [];
    if (!Array.isArray(tables) || !Array.isArray(columns) || !Array.isArray(triples)) throw bad("tables, columns and triples must be lists");
    const count = tables.length + columns.length + triples.length;
    if (count < 1 || count > config.maxTables) throw bad(`expected 1 to ${config.maxTables} tables and columns`);
    if (!Array.isArray(tripleWeights) || tripleWeights.length !== triples.length) throw bad("expected one weight per 3-way table");
    if (!Array.isArray(weights) || weights.length !== tables.length) throw bad("expected one weight per table");
    if (!Array.isArray(columnWeights) || columnWeights.length !== columns.length) throw bad("expected one weight per column");
    const seen = new Set<number>();
    plan.selected = tables.map((t) => {
      if (!Array.isArray(t) || t.length !== 2 || !t.every((v) => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) < k)) throw bad("a table is not a pair of column indices");
      const [a, b] = t as [number, number];
      if (!(a < b)) throw bad(`table [${a}, ${b}] must list its lower column first`);
      const id = pairIndex(k, a, b);
      if (seen.has(id)) throw bad(`table [${a}, ${b}] is listed twice`);
      seen.add(id);
      return [a, b];
    });
    const seenColumns = new Set<number>();
    plan.columns = columns.map((j) => {
      if (!Number.isSafeInteger(j) || (j as number) < 0 || (j as number) >= k) throw bad("a column is not a column index");
      if (seenColumns.has(j as number)) throw bad(`column ${j as number} is listed twice`);
      seenColumns.add(j as number);
      return j as number;
    });
    let sq = 0;
    const weight = (w: unknown) => {
      if (typeof w !== "number" || !Number.isFinite(w) || !(w > 0) || w > 1) throw bad("table weights must be numbers in (0, 1]");
      sq += w * w;
      return w;
    };
    plan.weights = weights.map(weight);
    plan.columnWeights = columnWeights.map(weight);
    if (triples.length > 0 || rc.tripleGroups !== undefined) {
      plan.tripleGroups = groupings(rc.tripleGroups, TRIPLE_GROUPS, "3-way groups");
      const seenTriples = new Set<string>();
      plan.triples = triples.map((t) => {
        if (!Array.isArray(t) || t.length !== 3 || !t.every((v) => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) < k)) throw bad("a 3-way table is not three column indices");
        const [a, b, c] = t as [number, number, number];
        if (!(a < b && b < c)) throw bad(`3-way table [${a}, ${b}, ${c}] must list its columns in ascending order`);
        if (seenTriples.has(`${a},${b},${c}`)) throw bad(`3-way table [${a}, ${b}, ${c}] is listed twice`);
        seenTriples.add(`${a},${b},${c}`);
        return [a, b, c];
      });
      plan.tripleWeights = tripleWeights.map(weight);
    }
    if (!(sq <= 1)) throw bad(`the table weights' squares sum to ${sq}, more than 1`);
    const budget = readRoundBudget(roundConfig, config, round);
    if (budget !== undefined) plan.budget = budget;
  }
  return plan;
}

export function roundPlanJson(plan: RoundPlan): JsonObject {
  const out: JsonObject = {};
  if (plan.pairsGroups) out.pairsGroups = plan.pairsGroups.map((g) => [...g]);
  if (plan.pairsSigns) out.pairsSigns = plan.pairsSigns.map((g) => [...g]);
  if (plan.outcomeSigns) out.outcomeSigns = plan.outcomeSigns.map((g) => [...g]);
  if (plan.selected) {
    out.groups = plan.selectedGroups!.map((g) => [...g]);
    out.tables = plan.selected.map((t) => [...t]);
    out.weights = [...plan.weights!];
    out.columns = [...(plan.columns ?? [])];
    out.columnWeights = [...(plan.columnWeights ?? [])];
    if (plan.triples?.length) {
      out.tripleGroups = plan.tripleGroups!.map((g) => [...g]);
      out.triples = plan.triples.map((t) => [...t]);
      out.tripleWeights = [...plan.tripleWeights!];
    }
    if (plan.budget !== undefined) out.budget = plan.budget;
  }
  return out;
}
