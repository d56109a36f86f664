/**
 * Which engine a study gets when its operator names none, from what is public before any site spends
 * anything: the schema and the cohort size the operator declares (hospitals publish their cohort sizes in
 * the study protocol; the coordinator never asks a site for its row count, which would be a statistic of
 * its data). The reason is kept with the study and shown in its status, so a consortium lead can see why.
 *
 * The rule follows what scripts/measure-neural.ts measured at ε = 1 per site under secure aggregation
 * (shapes / column-pair trends / train-on-synthetic AUC; the marginal engine as of its AIM / Private-PGM
 * rewrite):
 *   generated cohort, 4 sites, ~220 training rows:  independent 0.839 / 0.712 / 0.49, marginal 0.827 / 0.724 / 0.50 (6 runs)
 *   generated cohort, 4 sites, ~720 training rows:  independent 0.929 / 0.843 / 0.56, marginal 0.936 / 0.870 / 0.63 (6 runs)
 *   heart, 4 sites, ~590 training rows (12 runs):   independent 0.943 / 0.834 / 0.49, marginal 0.936 / 0.850 / 0.67, neural 0.935 / 0.848 / 0.69
 *   generated cohort, 5 sites, ~9,600 training rows (4 runs): independent 0.989 / 0.913 / 0.38, marginal 0.987 / 0.959 / 0.80, neural 0.987 / 0.923 / 0.78
 * So the marginal engine keeps column pairs best from a few hundred rows up (on heart level with the neural
 * one, which needs TensorFlow.js and more time); below about 500 rows it ties
 * with the independent one (what it gains on pairs it loses on column shapes), which stays the default
 * there as the simplest and most robust; a neural model is for cohorts and schemas too large for marginal
 * tables; a single column has no dependencies to learn. A study that declares no size is taken to be the
 * small-to-mid-sized study the marginal engine is built for.
 */
import type { Schema } from "../schema/schema.js";
import { coarseLayout } from "./marginal/discretise.js";
import { FedsynthError } from "../errors.js";

export interface EngineChoice {
  engine: string;
  /** One sentence for the study's status: why this engine. */
  reason: string;
}

/** From this many rows in all (declared), the marginal engine's pair measurements rise above the pooled noise. */
export const SMALL_COHORT_ROWS = 500;
/** From this many rows in all (declared), the neural engine's capacity pays for its noisier training. */
export const LARGE_COHORT_ROWS = 200_000;
/** Above this many columns, the pairs a marginal engine would need to score grow past what a small budget measures. */
export const WIDE_SCHEMA_COLUMNS = 40;

/**
 * The engine for a study that names none. `refuses(engine)` says why an engine cannot run this study (its
 * own configure's refusal), or undefined; the first preference that accepts wins, and the reason says
 * which were passed over and why.
 */
export function chooseEngine(
  schema: Schema, cohort: { sites: number; expectedRows?: number }, refuses: (engine: string) => string | undefined = () => undefined,
): EngineChoice {
  const passedOver: string[] = [];
  for (const c of preferences(schema, cohort)) {
    const why = refuses(c.engine);
    if (why === undefined) return { engine: c.engine, reason: passedOver.length ? `${c.reason} (${passedOver.join("; ")})` : c.reason };
    passedOver.push(`not ${c.engine}: ${why}`);
  }
  throw new FedsynthError("invalid-argument", `no engine can run this study: ${passedOver.join("; ")}`, { hint: "name an engine with --engine to see its own error, or simplify the schema" });
}

/** The engines in the order this study should try them, each with why it would be the one. */
function preferences(schema: Schema, cohort: { sites: number; expectedRows?: number }): EngineChoice[] {
  const columns = schema.columns.length;
  const independent = { engine: "independent", reason: "every column's histogram, learnt on its own: the engine that runs any schema" };
  if (columns === 1) {
    return [{ engine: "independent", reason: "one column: there are no dependencies to learn, so the column's histogram is the whole model" }];
  }
  const rows = cohort.expectedRows && cohort.expectedRows > 0 ? cohort.expectedRows : undefined;
  const size = rows !== undefined ? `${rows.toLocaleString("en")} rows declared` : "no cohort size declared";
  const marginal = {
    engine: "marginal",
    reason: `a small-to-mid-sized study (${columns} columns, ${coarseLayout(schema).coarseTotal} marginal cells, ${size}): marginal-based synthesis keeps column pairs most faithfully at budgets near epsilon = 1`,
  };
  if (rows !== undefined && rows >= LARGE_COHORT_ROWS) {
    return [{ engine: "neural", reason: `a large cohort (${size}, at least ${LARGE_COHORT_ROWS.toLocaleString("en")}): a neural model's capacity pays for its noisier training` }, marginal, independent];
  }
  if (columns > WIDE_SCHEMA_COLUMNS) {
    return [{ engine: "neural", reason: `a wide schema (${columns} columns, more than ${WIDE_SCHEMA_COLUMNS}): too many column pairs to measure well at this budget` }, marginal, independent];
  }
  if (rows === undefined || rows >= SMALL_COHORT_ROWS) return [marginal, independent];
  return [{
    engine: "independent",
    reason: `a very small study (${columns} columns, ${size}; under ${SMALL_COHORT_ROWS.toLocaleString("en")} rows the pooled noise swamps most pair statistics, so modelling pairs gains nothing at epsilon near 1): each column's histogram, learnt on its own`,
  }, marginal];
}
