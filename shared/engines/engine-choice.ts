/**
 * Which engine a study gets when its operator names none, from what is public before any site spends
 * anything: the schema and the cohort size the operator declares (hospitals publish their cohort sizes in
 * the study protocol; the coordinator never asks a site for its row count, which would be a statistic of
 * its data). The reason is kept with the study and shown in its status, so a consortium lead can see why.
 *
 * The rule follows what scripts/measure-neural.ts measured at ε = 1 per site under secure aggregation
 * (16 runs; column-pair trends / train-on-synthetic AUC):
 *   heart, 4 sites, ~740 training rows:   independent 0.834 / 0.47, marginal 0.826 / 0.56, neural 0.835 / 0.65
 *   cohort, 5 sites, ~10,000 rows:        independent 0.913 / 0.45, marginal 0.937 / 0.71, neural 0.921 / 0.78
 * So: from a few thousand rows the marginal engine keeps column pairs best; below that no engine keeps
 * them better than the independent one (the pooled noise swamps the pair statistics), which stays the
 * default there as the simplest and most robust; a neural model is for cohorts and schemas too large for
 * marginal tables; a single column has no dependencies to learn.
 */
import type { Schema } from "../schema/schema.js";
import { coarseLayout } from "./marginal/discretise.js";
import { FedsynthError } from "../errors.js";

export interface EngineChoice {
  engine: string;
  /** One sentence for the study's status: why this engine. */
  reason: string;
}

/** From this many rows in all (declared), the marginal engine's pair tables rise above the pooled noise. */
export const MID_COHORT_ROWS = 5_000;
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
    reason: `a mid-sized study (${columns} columns, ${coarseLayout(schema).coarseTotal} marginal cells, ${size}): marginal-based synthesis keeps column pairs most faithfully at budgets near epsilon = 1`,
  };
  if (rows !== undefined && rows >= LARGE_COHORT_ROWS) {
    return [{ engine: "neural", reason: `a large cohort (${size}, at least ${LARGE_COHORT_ROWS.toLocaleString("en")}): a neural model's capacity pays for its noisier training` }, marginal, independent];
  }
  if (columns > WIDE_SCHEMA_COLUMNS) {
    return [{ engine: "neural", reason: `a wide schema (${columns} columns, more than ${WIDE_SCHEMA_COLUMNS}): too many column pairs to measure well at this budget` }, marginal, independent];
  }
  if (rows !== undefined && rows >= MID_COHORT_ROWS) return [marginal, independent];
  return [{
    engine: "independent",
    reason: `a small study (${columns} columns, ${size}; under ${MID_COHORT_ROWS.toLocaleString("en")} rows the pooled noise swamps pair statistics, so no engine keeps column pairs better at epsilon near 1): each column's histogram, learnt on its own`,
  }, marginal];
}
