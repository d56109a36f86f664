/**
 * Federated vs central: the marginal engine on the heart-disease federation's four sites against the same
 * engine with all their training rows at one site, at the same ε, under secure aggregation (the central
 * study is a one-site study: threshold 1 of 1). Each run draws one 80/20 split per site (as
 * measure-neural.ts), synthesizes both ways from the same training rows and scores both against the pooled
 * training rows with the pooled holdout. Prints, per way, the mean of the column-shape and pair-trend
 * scores (and each, and TSTR AUC), and the paired difference federated − central with its standard error.
 *
 * Run (after compiling as measure-neural.ts says: measure-neural.ts imports this file, so the same build
 * compiles it):
 *   FEDSYNTH_ROOT="$PWD" node /tmp/fedsynth-measure/scripts/measure-marginal-central.js
 * (or MODE=central with measure-neural.js).
 * Environment: RUNS (8), EPSILON (1), DELTA (1e-5), ROUNDS (the engine's default), DATA (heart; or cohort, clinic: scripts/datasets.ts),
 * PLAIN=1 for plaintext studies instead (the central study then adds one site's noise, the federated four),
 * THRESHOLD (the federated study's threshold t: default ⌈2n/3⌉ — its sum then carries n/t times the variance
 * a one-site study's does —, or "all"), LOCAL=1 to add every site's local-only model (the same engine and ε on
 * that site's training rows alone, as many synthetic rows as the pool holds), scored against the same pooled
 * population: the federation must beat the best of them.
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseTable } from "../shared/schema/read-csv.js";
import type { OutputRow, Schema, Table } from "../shared/schema/schema.js";
import { SecureRng } from "../shared/random/rng.js";
import type { StudyPrivacy, TaskContext } from "../shared/engines/engine.js";
import { marginalEngine as engine } from "../shared/engines/marginal/engine.js";
import { evaluate, concatTables } from "../evaluation/index.js";
import { num } from "./holdout-split.js";
import { decodeSum, encodeContribution } from "../shared/federation/secure-contribution.js";
import { dataset } from "./datasets.js";

const here = fileURLToPath(new URL(".", import.meta.url));
const root = process.env.FEDSYNTH_ROOT ?? resolve(here, "..");

/** One study: every round's sum as the coordinator gets it (secure: the decoded sum of the sites' grid words). */
function synthesize(schema: Schema, privacy: StudyPrivacy, sites: Table[], rows: number): Table {
  const config = engine.configure(schema, privacy);
  let model = engine.init(schema, config);
  const noise = new SecureRng();
  for (let round = 1; round <= privacy.rounds; round++) {
    const roundConfig = engine.planRound(model, { schema, privacy, config, round });
    const ctx: TaskContext = { schema, privacy, config, round, roundConfig };
    let sum: Float64Array = new Float64Array(engine.updateLength(ctx));
    if (privacy.secureAggregation) {
      const grid = engine.secure!.grid(ctx);
      const words = new Uint32Array(sum.length);
      for (const table of sites) {
        const w = encodeContribution(engine.secure!.contribution(ctx, null, table), grid).words;
        for (let i = 0; i < words.length; i++) words[i] = (words[i] + w[i]) >>> 0;
      }
      sum = decodeSum(words, grid);
    } else {
      for (const table of sites) {
        const update = engine.localUpdate(ctx, null, table, noise);
        for (let i = 0; i < sum.length; i++) sum[i] += update[i];
      }
    }
    model = engine.aggregate(model, sum, sites.length, ctx);
  }
  const out: OutputRow[] = [...engine.sample(model, rows, new SecureRng())];
  const csv = [schema.columns.map((c) => c.name).join(","), ...out.map((r) => r.join(","))].join("\n") + "\n";
  return parseTable(csv, "synthetic.csv", schema).table;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const se = (xs: number[]) => {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length - 1) / Math.max(1, xs.length));
};
const f = (xs: number[]) => `${mean(xs).toFixed(4)}±${se(xs).toFixed(4)}`;

export async function measureCentral(): Promise<void> {
  const runs = num("RUNS", 8);
  const d = await dataset(process.env.DATA ?? "heart", root);
  const secure = process.env.PLAIN !== "1";
  const rounds = process.env.ROUNDS ? num("ROUNDS", 3) : engine.defaultRounds!(secure);
  const base = { epsilon: num("EPSILON", 1), delta: num("DELTA", 1e-5), rounds };
  const local = process.env.LOCAL === "1";
  const acc = new Map<string, { score: number[]; shapes: number[]; pairs: number[]; auc: number[] }>();
  const diff: number[] = [];
  const bestLocalGap: number[] = [];
  // THRESHOLD: the federated study's secure-aggregation threshold (default ⌈2n/3⌉, at least 2; "all" for n).
  const threshold = (n: number) => (process.env.THRESHOLD === "all" ? n : process.env.THRESHOLD ? num("THRESHOLD", 2) : Math.max(2, Math.ceil((2 * n) / 3)));
  const oneSite = secure ? { secureAggregation: { threshold: 1, sites: 1 } } : {};
  console.log(`marginal engine, ${process.env.DATA ?? "heart"}, ε=${base.epsilon}, δ=${base.delta}, ${rounds} rounds, ${secure ? `secure aggregation (federated threshold ${process.env.THRESHOLD ?? "⌈2n/3⌉"})` : "plaintext"}, ${runs} runs`);
  for (let r = 0; r < runs; r++) {
    const { train, holdout } = d.sites(r);
    const real = concatTables(train);
    const ways: [string, Table][] = [
      // The default threshold of a study of n sites, ⌈2n/3⌉ (at least 2), as measure-neural.ts uses.
      ["federated", synthesize(d.schema, { ...base, ...(secure ? { secureAggregation: { threshold: threshold(train.length), sites: train.length } } : {}) }, train, real.rowCount)],
      ["central", synthesize(d.schema, { ...base, ...oneSite }, [real], real.rowCount)],
      ...(local ? train.map((t, s): [string, Table] => [`local site ${s + 1}`, synthesize(d.schema, { ...base, ...oneSite }, [t], real.rowCount)]) : []),
    ];
    const scores = new Map<string, number>();
    for (const [way, synthetic] of ways) {
      const report = evaluate({ schema: d.schema, real, synthetic, holdout, target: d.target });
      const score = (report.columnShapes.score + report.pairTrends.score) / 2;
      scores.set(way, score);
      const a = acc.get(way) ?? { score: [], shapes: [], pairs: [], auc: [] };
      acc.set(way, a);
      a.score.push(score);
      a.shapes.push(report.columnShapes.score);
      a.pairs.push(report.pairTrends.score);
      const ml = report.mlUtility;
      if (ml && "auc" in ml) a.auc.push(ml.auc.synthetic);
    }
    diff.push(scores.get("federated")! - scores.get("central")!);
    if (local) bestLocalGap.push(scores.get("federated")! - Math.max(...train.map((_, s) => scores.get(`local site ${s + 1}`)!)));
  }
  for (const [way, a] of acc) {
    console.log(`  ${way.padEnd(12)} mean(shapes, pairs) ${f(a.score)}   shapes ${f(a.shapes)}  pairs ${f(a.pairs)}  AUC ${f(a.auc)}`);
  }
  console.log(`  federated − central: ${mean(diff).toFixed(4)} ± ${se(diff).toFixed(4)} (standard error over ${runs} paired runs)`);
  if (local) console.log(`  federated − best local-only site (per run): ${mean(bestLocalGap).toFixed(4)} ± ${se(bestLocalGap).toFixed(4)}; worst run ${Math.min(...bestLocalGap).toFixed(4)}`);
}

// Run when this file is the program (not when measure-neural.ts imports it).
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  measureCentral().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
