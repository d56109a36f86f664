/**
 * The marginal engine's public study settings: what each round releases (from the schema, the number of
 * rounds and the settings), and the noise calibrated for it (budget.ts), checked whenever a site or the
 * coordinator reads them back from JSON.
 *
 * Rounds (R = the study's rounds; k = columns; P = k(k−1)/2 pairs):
 *   round 1            every column's 1-way marginal and fine per-value histogram (always);
 *   the pairs round    every pair's 2-way table over a few groups per column ("all pairs", low precision):
 *                      round 1 itself when R ≤ 2 (groups from the schema), round 2 when R ≥ 3 and the
 *                      settings ask for it (groups of equal pooled mass, from round 1's marginals); with
 *                      an outcome declared in the schema (public), its pairs measured outcomeWeight
 *                      times more precisely than the others (pairWeights), in the same share of the budget;
 *   later rounds       the 2-way tables (and the columns' 1-way marginals, measured again) the coordinator
 *                      selects from the pooled sums so far (select.ts), each with its own public weight; the
 *                      selected rounds share their budget equally (settings.annealing "aim": as each one's
 *                      round config says, anneal.ts). With settings.triples, 3-way tables over
 *                      coarser groups too (select-triples.ts), counted like any other table.
 * A one-column schema has no pairs: one round of marginals only.
 */
import type { JsonObject } from "../engine.js";
import { outcomeIndex, type Schema } from "../../schema/schema.js";
import { FedsynthError } from "../../errors.js";
import { checkSchema } from "../study-checks.js";

export { checkSchema };
import { coarseLayout, maxGroups, TRIPLE_GROUPS } from "./discretise.js";
import type { GridPlan, MarginalBudget } from "./budget.js";

/** 2: the AIM-style engine (all pairs, then selected tables, junction-tree model). 1 was the tree engine. */
export const CONFIG_VERSION = 2;

export interface MarginalSettings {
  /** Share of the budget (of μ² or ρ) for the 1-way marginals. */
  marginalShare: number;
  /** Share for the all-pairs tables; the rest goes to the selected tables (all of it to the pairs with one round). */
  pairsShare: number;
  /** Most non-missing groups per column in the all-pairs tables. */
  pairsGroups: number;
  /** Whether a study of ≥ 2 rounds measures all pairs in round 2 (groups from round 1) rather than round 1. */
  pairsAfterMarginals: boolean;
  /** What the all-pairs round measures of each pair: its table over groups, or one ±1 contrast (scalars). */
  pairsKind: "tables" | "scalars";
  /**
   * 3-way tables in the selected rounds: never ("off"), when their expected gain beats the pair tables'
   * (select-triples.ts), or the best admissible triple in every selected round ("always": for tests and
   * experiments). A config without the field reads as "off" (what it was configured with). Off by
   * default: measured at ε = 1 and 4, secure, "auto" helped the heart data a little (pair trends +0.002,
   * TSTR AUC +0.01, one triple a run) but cost the cohort 0.001–0.002 of pair trends and AUC, where a
   * round's 2k tables are all taken and each triple displaces a finer pair table (select-triples.ts).
   */
  triples: "off" | "auto" | "always";
  /**
   * How much more precisely the all-pairs round measures each pair with the schema's declared outcome than
   * any other pair: the ratio of their weights (pairWeights), within the round's unchanged share of the
   * budget; no effect without an outcome. A config without the field reads as 2 (it was written for a
   * schema that could declare no outcome). Measured at ε = 1, secure, common noise (40 heart runs, 12
   * cohort runs), with outcomeSigns (select.ts): the declaration raised heart's TSTR AUC from 0.667 to
   * 0.703 (+0.036 ± 0.008) and pair trends by 0.004 ± 0.001, of which weight 1 gives 0.687; 1.5 gave
   * 0.008 less AUC than 2, and 3 0.004 more at 0.003 less pair trends. The cohort neither gained nor lost
   * (pairs 0.000, AUC −0.000 ± 0.002); the cohort at 100–300 rows a site gained 0.024 ± 0.020 of AUC and
   * lost 0.002 ± 0.001 of pair trends.
   */
  outcomeWeight: number;
  /**
   * The declared outcome's own coefficients in its contrasts with every other column (select.ts
   * outcomeThirds): "median", its cells split at their pooled median (−1, +1), or "thirds", its present
   * cells in thirds of pooled mass (−1, 0, +1; missing 0), so that the contrast grades the outcome rather
   * than only splitting it in two — for a many-valued outcome (heart's num, 0–4) the middle values are no
   * longer lumped with the top ones. The same sensitivity (every coefficient product is −1, 0 or 1). A
   * config without the field reads as "median" (what it was configured with). Measured at ε = 1, secure,
   * 3 rounds: heart, common noise (40 runs), TSTR AUC 0.703 ± 0.005 → 0.714 ± 0.005 (paired +0.011 ±
   * 0.006), pair trends 0.853 → 0.852 (−0.000 ± 0.001), shapes −0.001 ± 0.001; heart, independent noise
   * (24 runs) 0.711 ± 0.009 → 0.722 ± 0.007 against the neural engine's 0.700 ± 0.008, pair trends 0.851 →
   * 0.854; the cohort's binary outcome (4 runs) AUC 0.792 ± 0.003 → 0.791 ± 0.003 (neural 0.779), pair
   * trends 0.958 both — a two-valued outcome's thirds are its median split but for the missing cell.
   */
  outcomeSplit: "median" | "thirds";
  /**
   * How the selected rounds split their share of the budget: "equal", fixed when the study is configured,
   * or "aim", chosen by the coordinator round by round (anneal.ts) and carried in each selected round's
   * config, the last selected round taking exactly what the study has left. A config without the field
   * reads as "equal" (what it was configured with). Equal by default: it only matters with more than one
   * selected round (≥ 4 rounds), and measured at ε = 1, secure, common noise, "aim" was not better — 4
   * rounds: heart (16 runs) TSTR AUC +0.013 ± 0.006, pair trends −0.001 ± 0.002, the cohort (6 runs) AUC
   * −0.002 ± 0.002, pairs −0.002 ± 0.000, the clinic data no setting was tuned on (scripts/clinic.ts, 16
   * runs) AUC −0.004 ± 0.003, pairs −0.003 ± 0.000; 5 rounds: heart AUC −0.012 ± 0.008, pairs −0.001 ± 0.001, the
   * cohort AUC +0.002 ± 0.001, pairs −0.004 ± 0.001; a front-loaded schedule (1/2, 1/4, 1/4) at 5 rounds,
   * heart AUC −0.011 ± 0.007. Nor did more rounds beat the default three (heart, the same 16 runs, equal
   * split: AUC / pair trends 0.697 / 0.852 at 3 rounds, 0.685 / 0.852 at 4, 0.700 / 0.849 at 5).
   */
  annealing: "equal" | "aim";
}

/**
 * Defaults, measured at ε = 1 on the heart-disease federation and the generated cohort (8 runs each, secure
 * and plaintext): shares 0.5 / 0.25 / 0.25 beat 0.6 / 0.15, 0.55 / 0.2, 0.45 / 0.3 and 0.4 / 0.35 on the
 * heart data's TSTR AUC at equal pair trends, and scalars beat 3-group tables for the all-pairs round on
 * both (heart pair trends 0.841 vs 0.834, AUC 0.63 vs 0.58, same split): a contrast spends its whole
 * sensitivity on the one direction a pair's dependence mostly takes, a table mostly on margins already known.
 */
export const MARGINAL_DEFAULTS: MarginalSettings = { marginalShare: 0.5, pairsShare: 0.25, pairsGroups: 3, pairsAfterMarginals: true, pairsKind: "scalars", triples: "off", outcomeWeight: 2, outcomeSplit: "thirds", annealing: "equal" };

export interface BudgetShape {
  columns: number;
  /** Round 1's histogram cells: every column's coarse cells, then the fine (per grid value) cells. */
  cells: number;
  coarseCells: number;
  /** Columns with a fine level (the independent engine's layout); their fine cells get α times the noise. */
  fineColumns: number;
  /** Pairs of columns, P. */
  pairs: number;
  /**
   * Σ u_p² over the pairs' weights in the all-pairs round (pairWeights: 1 for a pair with the declared
   * outcome, 1/outcomeWeight for any other; P when all are 1): the round's L2 sensitivity squared.
   */
  pairsSquares: number;
  /** The round that measures all pairs (0: none), and the number of rounds of selected tables. */
  pairsRound: number;
  selectedRounds: number;
  /** Most cells of the all-pairs tables, and of one selected round's tables (the secure rounds' padded lengths). */
  pairsCells: number;
  selectedCells: number;
  /** Most tables (pair and 3-way tables and 1-way columns together) one selected round measures. */
  maxTables: number;
}

export interface MarginalConfig extends BudgetShape, MarginalBudget {
  version: number;
  rounds: number;
  settings: MarginalSettings;
}

export function invalid(message: string, hint?: string): FedsynthError {
  return new FedsynthError("invalid-argument", message, { hint });
}

/** The marginal engine's limit on rounds, for checkPrivacy (study-checks.ts). */
export const MARGINAL_ROUNDS = { max: 20, hint: "The marginal engine uses 3 rounds by default: marginals, all pairs, then the selected tables." };

/** Capacity (cells) of a pair's table at most `cap` non-missing groups per column. */
function pairCapacity(schema: Schema, sizes: number[], a: number, b: number, cap = Infinity): number {
  const g = (j: number) => Math.min(maxGroups(schema.columns[j], sizes[j]) - 1, cap) + 1;
  return g(a) * g(b);
}

/**
 * The `most` largest capacities (cells) of 3-way tables: a column's groups are 2 … TRIPLE_GROUPS + 1, so
 * the triples are counted by their columns' group counts rather than listed (C(k, 3) of them).
 */
function tripleCapacities(schema: Schema, sizes: number[], most: number): number[] {
  const count = new Map<number, number>();
  schema.columns.forEach((c, j) => {
    const g = Math.min(maxGroups(c, sizes[j]) - 1, TRIPLE_GROUPS) + 1;
    count.set(g, (count.get(g) ?? 0) + 1);
  });
  const values = [...count.keys()].sort((x, y) => y - x);
  const choose = (n: number, m: number) => (m === 1 ? n : m === 2 ? (n * (n - 1)) / 2 : (n * (n - 1) * (n - 2)) / 6);
  const out: number[] = [];
  for (let x = 0; x < values.length; x++) {
    for (let y = x; y < values.length; y++) {
      for (let z = y; z < values.length; z++) {
        const picks = new Map<number, number>();
        for (const v of [values[x], values[y], values[z]]) picks.set(v, (picks.get(v) ?? 0) + 1);
        let n = 1;
        for (const [v, m] of picks) n *= count.get(v)! >= m ? choose(count.get(v)!, m) : 0;
        for (let i = 0; i < Math.min(n, most); i++) out.push(values[x] * values[y] * values[z]);
      }
    }
  }
  return out;
}

/**
 * Each pair's weight u_p in the all-pairs round (pairList order), from the schema and the settings alone:
 * pair p's measurement is released as u_p times itself, so its noise is σ_p / u_p. Pairs with the declared
 * outcome weigh 1, the others 1/outcomeWeight (all 1 without an outcome). Public: what the noise of each
 * measurement is follows from the schema and the config, and the round's charge is that of its Σ u_p².
 */
export function pairWeights(schema: Schema, settings: MarginalSettings): number[] {
  const k = schema.columns.length;
  const outcome = outcomeIndex(schema);
  const other = outcome >= 0 ? 1 / settings.outcomeWeight : 1;
  const out: number[] = [];
  for (let a = 0; a < k; a++) for (let b = a + 1; b < k; b++) out.push(a === outcome || b === outcome ? 1 : other);
  return out;
}

/** The release shape of a study, from the schema, the number of rounds and the settings alone. */
export function budgetShape(schema: Schema, rounds: number, settings: MarginalSettings = MARGINAL_DEFAULTS): BudgetShape {
  const layout = coarseLayout(schema);
  const k = layout.columns;
  const pairs = (k * (k - 1)) / 2;
  const pairsRound = k < 2 ? 0 : rounds >= 2 && settings.pairsAfterMarginals ? 2 : 1;
  const selectedRounds = pairsRound === 0 ? 0 : rounds - pairsRound;
  let pairsCells = 0;
  // A selected round measures pair tables and (re-measures) columns' coarse 1-way cells.
  const capacities: number[] = layout.sizes.slice();
  for (let a = 0; a < k; a++) {
    for (let b = a + 1; b < k; b++) {
      pairsCells += pairCapacity(schema, layout.sizes, a, b, settings.pairsGroups);
      capacities.push(pairCapacity(schema, layout.sizes, a, b));
    }
  }
  const maxTables = Math.min(pairs, 2 * k);
  // A selected round may measure 3-way tables of at most TRIPLE_GROUPS groups per column, within the same count of tables.
  if (settings.triples !== "off") capacities.push(...tripleCapacities(schema, layout.sizes, maxTables));
  capacities.sort((x, y) => y - x);
  const selectedCells = selectedRounds > 0 ? capacities.slice(0, maxTables).reduce((s, x) => s + x, 0) : 0;
  return {
    columns: k, cells: layout.total, coarseCells: layout.coarseTotal, fineColumns: layout.fine.length,
    pairs, pairsSquares: pairsRound > 0 ? pairWeights(schema, settings).reduce((s, u) => s + u * u, 0) : 0, pairsRound, selectedRounds, pairsCells: pairsRound > 0 ? pairsCells : 0, selectedCells, maxTables: selectedRounds > 0 ? maxTables : 0,
  };
}

/** What round `round` releases. */
export function roundParts(config: BudgetShape, round: number): { marginals: boolean; pairs: boolean; selected: boolean } {
  return { marginals: round === 1, pairs: round === config.pairsRound, selected: config.pairsRound > 0 && round > config.pairsRound };
}

const positive = (v: unknown) => typeof v === "number" && Number.isFinite(v) && v > 0;
const nonNegative = (v: unknown) => typeof v === "number" && Number.isFinite(v) && v >= 0;

export function checkSettings(s: unknown): MarginalSettings {
  const t = s as Partial<MarginalSettings> | null;
  const share = (v: unknown) => typeof v === "number" && Number.isFinite(v) && v > 0 && v < 1;
  if (!t || !share(t.marginalShare) || !share(t.pairsShare) || (t.marginalShare as number) + (t.pairsShare as number) > 1) {
    throw invalid("The marginal engine's settings need shares marginalShare and pairsShare in (0, 1) with a sum of at most 1", "Use the config returned by configure().");
  }
  if (!Number.isSafeInteger(t.pairsGroups) || (t.pairsGroups as number) < 1 || (t.pairsGroups as number) > 8) throw invalid("The marginal engine's pairsGroups must be a whole number from 1 to 8");
  if (typeof t.pairsAfterMarginals !== "boolean") throw invalid("The marginal engine's pairsAfterMarginals must be true or false");
  if (t.pairsKind !== "tables" && t.pairsKind !== "scalars") throw invalid("The marginal engine's pairsKind must be \"tables\" or \"scalars\"");
  const triples = t.triples ?? "off";
  if (triples !== "off" && triples !== "auto" && triples !== "always") throw invalid("The marginal engine's triples must be \"off\", \"auto\" or \"always\"");
  const outcomeWeight = t.outcomeWeight ?? MARGINAL_DEFAULTS.outcomeWeight;
  if (typeof outcomeWeight !== "number" || !Number.isFinite(outcomeWeight) || outcomeWeight < 1 || outcomeWeight > 100) throw invalid("The marginal engine's outcomeWeight must be a number from 1 to 100");
  const outcomeSplit = t.outcomeSplit ?? "median";
  if (outcomeSplit !== "median" && outcomeSplit !== "thirds") throw invalid("The marginal engine's outcomeSplit must be \"median\" or \"thirds\"");
  const annealing = t.annealing ?? "equal";
  if (annealing !== "equal" && annealing !== "aim") throw invalid("The marginal engine's annealing must be \"equal\" or \"aim\"");
  return { marginalShare: t.marginalShare!, pairsShare: t.pairsShare!, pairsGroups: t.pairsGroups!, pairsAfterMarginals: t.pairsAfterMarginals, pairsKind: t.pairsKind, triples, outcomeWeight, outcomeSplit, annealing };
}

function readGrid(raw: unknown, what: string): GridPlan {
  const g = raw as Partial<GridPlan> | null;
  for (const f of ["gamma", "gridSigma", "gridL2Sensitivity", "dimension", "coordinateBound"] as const) {
    if (!positive(g?.[f])) throw invalid(`The marginal engine's ${what} grid has no valid ${f} (${JSON.stringify(g?.[f])})`, "Use the config returned by configure().");
  }
  return g as GridPlan;
}

export function readConfig(config: JsonObject, schema: Schema): MarginalConfig {
  checkSchema(schema);
  const c = config as unknown as Partial<MarginalConfig> | null;
  if (c?.version !== CONFIG_VERSION) {
    throw invalid(
      `The marginal engine's config has version ${JSON.stringify(c?.version)}, this build reads version ${CONFIG_VERSION}`,
      c?.version === 1
        ? "Version 1 configs belong to the earlier tree-based marginal engine, whose releases this build does not read: configure the study again (a new study, with its own budget)."
        : "Use the config returned by configure().",
    );
  }
  if (!Number.isSafeInteger(c.rounds) || (c.rounds as number) < 1) throw invalid("The marginal engine's config has no valid rounds", "Use the config returned by configure().");
  const settings = checkSettings(c.settings);
  const shape = budgetShape(schema, c.rounds as number, settings);
  // A config written before pair weights existed has all weights 1.
  const written = { ...c, pairsSquares: c.pairsSquares ?? c.pairs };
  for (const k of Object.keys(shape) as (keyof BudgetShape)[]) {
    if (written[k] !== shape[k]) throw invalid(`The marginal engine's config does not match the schema (${k}: ${JSON.stringify(c[k])}, the schema gives ${shape[k]})`, "Configure the engine with the study's schema.");
  }
  if (!positive(c.sigmaMarginals)) throw invalid("The marginal engine's config has no valid marginal noise", "Use the config returned by configure().");
  for (const k of ["sigmaPairs", "sigmaSelected"] as const) {
    if (!nonNegative(c[k])) throw invalid(`The marginal engine's config has no valid ${k}`, "Use the config returned by configure().");
  }
  if (shape.pairsRound > 0 && !positive(c.sigmaPairs)) throw invalid("The marginal engine's config has no noise for its pair tables", "Use the config returned by configure().");
  if (shape.selectedRounds > 0 && !positive(c.sigmaSelected)) throw invalid("The marginal engine's config has no noise for its selected tables", "Use the config returned by configure().");
  if (c.secure !== undefined) {
    const s = c.secure;
    if (!positive(s?.threshold) || !positive(s?.sites) || !positive(s?.maxSiteRows) || !Array.isArray(s?.grids) || s.grids.length !== c.rounds) {
      throw invalid("The marginal engine's secure-aggregation config is incomplete", "Use the config returned by configure().");
    }
    s.grids.forEach((g, r) => readGrid(g, `round ${r + 1}'s`));
  }
  // The checked settings (a config written before a setting existed reads with its default).
  return { ...(written as MarginalConfig), settings };
}
