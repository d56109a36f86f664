/**
 * Fidelity and speed of the neural and marginal engines against the independent baseline, in process, on the bundled
 * heart-disease federation (4 sites, 80/20 split per run), on a larger generated cohort (scripts/
 * cohort.ts: 5 sites of 600–5,000 rows, 16 mixed columns, 80/20 split) and on the generated admissions
 * federation no default was chosen on (scripts/clinic.ts; scripts/datasets.ts has all three).
 *
 * Each run: configure → init → per round: planRound, every site's localUpdate (SecureRng noise), sum,
 * aggregate → sample as many rows as the sites hold → evaluate() against the pooled training rows with
 * the holdout (column shapes, pair trends, TSTR AUC, DCR ratio: median distance of synthetic rows to their
 * closest training row over the holdout's, ≥ 1 means no closer than new patients). Prints means ± standard
 * errors over runs and the seconds per run, and each variant's paired differences from its engine's first variant.
 *
 * Run:
 *   npx tsc -p scripts/measure-neural.tsconfig.json && echo '{"type":"module"}' > /tmp/fedsynth-measure/package.json \
 *     && ln -sfn "$PWD/node_modules" /tmp/fedsynth-measure/node_modules \
 *     && FEDSYNTH_ROOT="$PWD" node /tmp/fedsynth-measure/scripts/measure-neural.js
 * Environment: SECURE (1: under secure aggregation), RUNS (3), EPSILON (1), DELTA (1e-5), ROUNDS (1), DATA (heart,cohort; also clinic: scripts/clinic.ts, data no default was chosen on), ENGINES
 * (independent,neural; also: marginal), VARIANTS: a JSON array of neural setting overrides to compare, e.g.
 * '[{}, {"hidden": 32}]' (each is calibrated to the same budget by configureNeural); MARGINAL_VARIANTS: the same for
 * the marginal engine's settings (configureMarginal), e.g. '[{}, {"pairsShare": 0.3}]', where "outcome" sets the study's declared
 * outcome for that variant (null: none; the schemas declare the evaluation's target); MARGINAL_ROUNDS: rounds for
 * the marginal engine only (default: ROUNDS); NOISE_SEED: development A/B comparisons with common random numbers —
 * every variant of run r gets the same seeded noise (secure sums simulated as exact sums plus Gaussian noise of the
 * grid's variance); never for reported figures; COHORT_ROWS (rows per site of DATA=cohort, e.g. 60,90,120); DETAIL=1: each variant's worst pairs and per-column shape scores;
 * MODE=central: the marginal engine federated vs central instead (scripts/measure-marginal-central.ts).
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseTable } from "../shared/schema/read-csv.js";
import type { OutputRow, Schema, Table } from "../shared/schema/schema.js";
import { SecureRng, SeededRng, gaussian, type Rng } from "../shared/random/rng.js";
import type { Engine, JsonObject, StudyPrivacy, TaskContext } from "../shared/engines/engine.js";
import { independentEngine } from "../shared/engines/independent/engine.js";
import { configureNeural, neuralEngine, NEURAL_DEFAULTS } from "../shared/engines/neural/engine.js";
import { configureMarginal, marginalEngine } from "../shared/engines/marginal/engine.js";
import type { MarginalSettings } from "../shared/engines/marginal/config.js";
import { evaluate, concatTables } from "../evaluation/index.js";
import { num } from "./holdout-split.js";
import { decodeSum, encodeContribution } from "../shared/federation/secure-contribution.js";
import { dataset } from "./datasets.js";
import { measureCentral } from "./measure-marginal-central.js";

const here = fileURLToPath(new URL(".", import.meta.url));
const root = process.env.FEDSYNTH_ROOT ?? resolve(here, "..");

interface Variant {
  label: string;
  engine: Engine;
  /** Rounds for this variant (default: the study's ROUNDS). */
  rounds?: number;
  /** The study's declared outcome for this variant (null: none), instead of the data's schema's. */
  outcome?: string | null;
  configure(schema: Schema, privacy: StudyPrivacy): JsonObject;
}

const tripleTally = new Map<string, number>();

async function synthesize(v: Variant, schema: Schema, privacy: StudyPrivacy, sites: Table[], rows: number, seed?: number): Promise<Table> {
  const engine = v.engine;
  await engine.prepare?.();
  const config = v.configure(schema, privacy);
  let model = engine.init(schema, config);
  const noise: Rng = seed === undefined ? new SecureRng() : new SeededRng(seed);
  for (let round = 1; round <= privacy.rounds; round++) {
    const roundConfig = engine.planRound(model, { schema, privacy, config, round });
    // The marginal engine's 3-way tables (settings.triples), tallied per variant for the report.
    const triples = (roundConfig as { triples?: unknown[] }).triples;
    if (Array.isArray(triples)) tripleTally.set(v.label, (tripleTally.get(v.label) ?? 0) + triples.length);
    const ctx: TaskContext = { schema, privacy, config, round, roundConfig };
    let sum: Float64Array = new Float64Array(engine.updateLength(ctx));
    if (engine.secure?.enabled(config) && seed !== undefined) {
      // NOISE_SEED (development A/B comparisons only): the decoded sum simulated as the exact sum plus
      // Gaussian noise of the grid's variance (√sites·σ·γ/w per coordinate), from a seeded source.
      const grid = engine.secure.grid(ctx);
      for (const table of sites) {
        const x = engine.secure.contribution(ctx, engine.needsModel(ctx) ? model : null, table);
        for (let i = 0; i < sum.length; i++) sum[i] += x[i] + (grid.sigma * grid.gamma * gaussian(noise)) / grid.weights[i];
      }
    } else if (engine.secure?.enabled(config)) {
      // What the coordinator of a secure study gets: the decoded sum of the sites' grid words.
      const grid = engine.secure.grid(ctx);
      const words = new Uint32Array(sum.length);
      for (const table of sites) {
        const w = encodeContribution(engine.secure.contribution(ctx, engine.needsModel(ctx) ? model : null, table), grid).words;
        for (let i = 0; i < words.length; i++) words[i] = (words[i] + w[i]) >>> 0;
      }
      sum = decodeSum(words, grid);
    } else {
      for (const table of sites) {
        const update = engine.localUpdate(ctx, engine.needsModel(ctx) ? model : null, table, noise);
        for (let i = 0; i < sum.length; i++) sum[i] += update[i];
      }
    }
    model = engine.aggregate(model, sum, sites.length, ctx);
  }
  const out: OutputRow[] = [...engine.sample(model, rows, seed === undefined ? new SecureRng() : new SeededRng(seed + 1))];
  const csv = [schema.columns.map((c) => c.name).join(","), ...out.map((r) => r.join(","))].join("\n") + "\n";
  return parseTable(csv, "synthetic.csv", schema).table;
}

async function main(): Promise<void> {
  const runs = num("RUNS", 3);
  const privacy: StudyPrivacy = { epsilon: num("EPSILON", 1), delta: num("DELTA", 1e-5), rounds: num("ROUNDS", 1) };
  const dataNames = (process.env.DATA ?? "heart,cohort").split(",");
  const engineNames = (process.env.ENGINES ?? "independent,neural").split(",");
  const overrides: Partial<typeof NEURAL_DEFAULTS>[] = process.env.VARIANTS ? JSON.parse(process.env.VARIANTS) : [{}];
  const variants: Variant[] = [];
  if (engineNames.includes("independent")) variants.push({ label: "independent", engine: independentEngine as Engine, configure: (s, p) => independentEngine.configure(s, p) });
  if (engineNames.includes("marginal")) {
    const marginalVariants: (Partial<MarginalSettings> & { outcome?: string | null })[] = process.env.MARGINAL_VARIANTS ? JSON.parse(process.env.MARGINAL_VARIANTS) : [{}];
    const marginalRounds = process.env.MARGINAL_ROUNDS ? num("MARGINAL_ROUNDS", 3) : undefined;
    for (const { outcome, ...o } of marginalVariants) {
      variants.push({
        label: `marginal ${JSON.stringify({ ...o, ...(outcome !== undefined ? { outcome } : {}) })}${marginalRounds ? ` R=${marginalRounds}` : ""}`, engine: marginalEngine as Engine, rounds: marginalRounds, outcome,
        configure: (s, p) => JSON.parse(JSON.stringify(configureMarginal(s, p, o))) as JsonObject,
      });
    }
  }
  if (engineNames.includes("neural")) {
    for (const o of overrides) variants.push({ label: `neural ${JSON.stringify(o)}`, engine: neuralEngine as Engine, configure: (s, p) => configureNeural(s, p, o) });
  }
  console.log(`ε=${privacy.epsilon}, δ=${privacy.delta}, rounds=${privacy.rounds}, ${runs} runs`);
  for (const dataName of dataNames) {
    tripleTally.clear();
    const data = await dataset(dataName, root);
    const acc = variants.map(() => ({ shapes: [] as number[], pairs: [] as number[], auc: [] as number[], dcr: [] as number[], seconds: [] as number[], pairScores: new Map<string, number[]>(), columnScores: new Map<string, number[]>() }));
    const base = { shapes: [] as number[], pairs: [] as number[], auc: [] as number[] };
    for (let r = 0; r < runs; r++) {
      const { train, holdout } = data.sites(r);
      // SECURE=1: every variant runs under secure aggregation with the default threshold ⌈2n/3⌉.
      if (process.env.SECURE === "1") privacy.secureAggregation = { threshold: Math.max(2, Math.ceil((2 * train.length) / 3)), sites: train.length };
      const real = concatTables(train);
      for (let v = 0; v < variants.length; v++) {
        const t0 = performance.now();
        const rounds = variants[v].rounds ?? privacy.rounds;
        const seed = process.env.NOISE_SEED ? num("NOISE_SEED", 0) * 1000 + r : undefined;
        // A variant's own outcome declaration (MARGINAL_VARIANTS' "outcome"): the same columns, read the same way.
        const outcome = variants[v].outcome;
        const schema: Schema = outcome === undefined ? data.schema : outcome === null ? { columns: data.schema.columns, missing: data.schema.missing } : { ...data.schema, outcome };
        const synthetic = await synthesize(variants[v], schema, { ...privacy, rounds }, train, real.rowCount, seed);
        const seconds = (performance.now() - t0) / 1000;
        const report = evaluate({ schema: data.schema, real, synthetic, holdout, target: data.target });
        acc[v].shapes.push(report.columnShapes.score);
        for (const p of report.pairTrends.pairs) {
          const key = `${p.columns.join("-")}${p.metric === "correlation" ? "(r)" : ""}`;
          acc[v].pairScores.set(key, [...(acc[v].pairScores.get(key) ?? []), p.score]);
        }
        for (const [name, c] of Object.entries(report.columnShapes.columns)) acc[v].columnScores.set(name, [...(acc[v].columnScores.get(name) ?? []), c.score]);
        acc[v].pairs.push(report.pairTrends.score);
        acc[v].seconds.push(seconds);
        const ml = report.mlUtility;
        if (ml && "auc" in ml) {
          acc[v].auc.push(ml.auc.synthetic);
          if (v === 0) base.auc.push(ml.auc.real);
        }
        const pv = report.privacy;
        if (pv && "dcr" in pv) acc[v].dcr.push(pv.dcr.ratio);
        const hb = report.holdoutBaseline;
        if (v === 0 && hb && "columnShapes" in hb) {
          base.shapes.push(hb.columnShapes.score);
          base.pairs.push(hb.pairTrends.score);
        }
      }
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    const se = (xs: number[]) => {
      const m = mean(xs);
      return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length - 1) / Math.max(1, xs.length));
    };
    const f = (xs: number[]) => `${mean(xs).toFixed(3)}±${se(xs).toFixed(3)}`;
    console.log(`\n[${data.name}] holdout baseline: shapes ${f(base.shapes)} pairs ${f(base.pairs)}; real-data AUC ${f(base.auc)}`);
    variants.forEach((v, i) => {
      const a = acc[i];
      console.log(`  ${v.label.padEnd(40)} shapes ${f(a.shapes)}  pairs ${f(a.pairs)}  AUC ${f(a.auc)}  DCR ratio ${f(a.dcr)}  ${mean(a.seconds).toFixed(1)}s`);
      if (v.engine === (marginalEngine as Engine)) console.log(`    3-way tables selected: ${tripleTally.get(v.label) ?? 0} over ${a.pairs.length} runs`);
      // Paired differences from the first variant of the same engine (with NOISE_SEED: common noise, so far tighter than the means' errors).
      const first = variants.findIndex((u) => u.engine === v.engine);
      if (first !== i) {
        const d = (k: "shapes" | "pairs" | "auc" | "dcr") => f(a[k].map((x, r) => x - acc[first][k][r]));
        console.log(`    vs ${variants[first].label}: shapes ${d("shapes")}  pairs ${d("pairs")}  AUC ${d("auc")}  DCR ratio ${d("dcr")}`);
      }
      // DETAIL=1: the worst pairs and each column's shape score (development aid).
      if (process.env.DETAIL === "1") {
        const pairs = [...a.pairScores].map(([k, xs]) => [k, mean(xs)] as const).sort((x, y) => x[1] - y[1]);
        console.log(`    worst pairs: ${pairs.slice(0, 20).map(([k, m]) => `${k} ${m.toFixed(3)}`).join("  ")}`);
        console.log(`    columns: ${[...a.columnScores].map(([k, xs]) => `${k} ${mean(xs).toFixed(3)}`).join("  ")}`);
      }
    });
  }
}

(process.env.MODE === "central" ? measureCentral() : main()).catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
