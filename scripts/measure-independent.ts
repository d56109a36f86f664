/**
 * Fidelity of the independent engine on the bundled heart-disease federation, in process.
 *
 * For each run: every site's CSV is read through the schema and split 80/20 (SeededRng(run)); the
 * federated flow runs in memory (configure → init → per round: planRound, each site's localUpdate with
 * SecureRng noise, element-wise sum, aggregate); 920 rows are sampled and scored with evaluate().
 * Prints the mean over runs of the column-shape and pair-trend scores, per-column shapes, and the
 * holdout baseline.
 *
 * Run (Node 20 has no TypeScript loader, so compile it into a scratch directory first; the scratch copy
 * needs to be an ES module package that sees the repository's node_modules):
 *   npx tsc -p scripts/measure-independent.tsconfig.json && echo '{"type":"module"}' > /tmp/fedsynth-measure/package.json \
 *     && ln -sfn "$PWD/node_modules" /tmp/fedsynth-measure/node_modules \
 *     && FEDSYNTH_ROOT="$PWD" node /tmp/fedsynth-measure/scripts/measure-independent.js
 * Options (environment): RUNS (default 5), EPSILON (1), DELTA (1e-5), ROUNDS (1); ALPHAS, a comma-separated
 * list of fine noise multipliers α to compare (default: the engine's own); SEEDED=1 draws the noise from
 * SeededRng instead of SecureRng, so that every α sees the same noise stream (a paired comparison; for
 * experiments only — real noise must never be seeded).
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadSchema } from "../shared/schema/parse-schema.js";
import { readTable, parseTable } from "../shared/schema/read-csv.js";
import type { OutputRow, Schema, Table } from "../shared/schema/schema.js";
import { SecureRng, SeededRng, type Rng } from "../shared/random/rng.js";
import type { JsonObject, StudyPrivacy, TaskContext } from "../shared/engines/engine.js";
import * as independent from "../shared/engines/independent/engine.js";
import { evaluate, concatTables } from "../evaluation/index.js";
import { num, split } from "./holdout-split.js";

const engine = independent.independentEngine;
const SITES = ["cleveland", "hungary", "switzerland", "va"];
const here = fileURLToPath(new URL(".", import.meta.url));
// Works both from the source tree and from the compiled copy (whose layout mirrors the repository).
const root = process.env.FEDSYNTH_ROOT ?? resolve(here, "..");
const examples = resolve(root, "examples/heart-disease");


function configure(schema: Schema, privacy: StudyPrivacy, alpha: number | undefined): JsonObject {
  // configureIndependent exists from the two-level engine on; older engines measure with their defaults.
  const withAlpha = (independent as unknown as { configureIndependent?: (s: Schema, p: StudyPrivacy, a?: number) => JsonObject }).configureIndependent;
  if (alpha !== undefined) {
    if (!withAlpha) throw new Error("this engine has no fine noise multiplier");
    return { ...withAlpha(schema, privacy, alpha) };
  }
  return engine.configure(schema, privacy);
}

function run(schema: Schema, privacy: StudyPrivacy, sites: Table[], rows: number, alpha: number | undefined, noise: Rng, sampling: Rng): Table {
  const config = configure(schema, privacy, alpha);
  let model = engine.init(schema, config);
  for (let round = 1; round <= privacy.rounds; round++) {
    const roundConfig = engine.planRound(model, { schema, privacy, config, round });
    const ctx: TaskContext = { schema, privacy, config, round, roundConfig };
    const sum = new Float64Array(engine.updateLength(ctx));
    for (const table of sites) {
      const update = engine.localUpdate(ctx, engine.needsModel(ctx) ? model : null, table, noise);
      for (let i = 0; i < sum.length; i++) sum[i] += update[i];
    }
    model = engine.aggregate(model, sum, sites.length, ctx);
  }
  const out: OutputRow[] = [...engine.sample(model, rows, sampling)];
  const csv = [schema.columns.map((c) => c.name).join(","), ...out.map((r) => r.join(","))].join("\n") + "\n";
  return parseTable(csv, "synthetic.csv", schema).table;
}

async function main(): Promise<void> {
  const schema = await loadSchema(resolve(examples, "schema.json"));
  const tables = await Promise.all(SITES.map(async (s) => (await readTable(resolve(examples, `${s}.csv`), schema)).table));
  const runs = num("RUNS", 5);
  const privacy: StudyPrivacy = { epsilon: num("EPSILON", 1), delta: num("DELTA", 1e-5), rounds: num("ROUNDS", 1) };
  const totalRows = tables.reduce((n, t) => n + t.rowCount, 0);
  const names = schema.columns.map((c) => c.name);
  const numeric = schema.columns.filter((c) => c.type === "numeric").map((c) => c.name);
  const alphas: (number | undefined)[] = process.env.ALPHAS ? process.env.ALPHAS.split(",").map(Number) : [undefined];
  const seeded = process.env.SEEDED === "1";
  interface Acc { shapes: number[]; pairs: number[]; perColumn: Map<string, number> }
  const accs: Acc[] = alphas.map(() => ({ shapes: [], pairs: [], perColumn: new Map() }));
  const base = { shapes: 0, pairs: 0, perColumn: new Map<string, number>() };
  for (let r = 0; r < runs; r++) {
    const rng = new SeededRng(1000 + r);
    const parts = tables.map((t) => split(t, rng));
    const train = parts.map((p) => p.train);
    const real = concatTables(train);
    const holdout = concatTables(parts.map((p) => p.holdout));
    alphas.forEach((alpha, a) => {
      const noise = seeded ? new SeededRng(5000 + r) : new SecureRng();
      const sampling = seeded ? new SeededRng(9000 + r) : new SecureRng();
      const synthetic = run(schema, privacy, train, totalRows, alpha, noise, sampling);
      const report = evaluate({ schema, real, synthetic, holdout });
      const acc = accs[a];
      acc.shapes.push(report.columnShapes.score);
      acc.pairs.push(report.pairTrends.score);
      for (const n of names) acc.perColumn.set(n, (acc.perColumn.get(n) ?? 0) + report.columnShapes.columns[n].score / runs);
      const baseline = report.holdoutBaseline;
      if (a === 0 && baseline && "columnShapes" in baseline) {
        base.shapes += baseline.columnShapes.score / runs;
        base.pairs += baseline.pairTrends.score / runs;
        for (const n of names) base.perColumn.set(n, (base.perColumn.get(n) ?? 0) + baseline.columnShapes.columns[n].score / runs);
      }
    });
  }
  const f = (v: number) => v.toFixed(4);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const se = (xs: number[]) => {
    const m = mean(xs);
    return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length - 1) / xs.length);
  };
  console.log(`independent engine, ε=${privacy.epsilon}, δ=${privacy.delta}, rounds=${privacy.rounds}, ${runs} runs, ${seeded ? "seeded" : "secure"} noise`);
  console.log(`holdout baseline: columnShapes ${f(base.shapes)}  pairTrends ${f(base.pairs)}  numeric: ${numeric.map((n) => `${n} ${f(base.perColumn.get(n)!)}`).join("  ")}`);
  alphas.forEach((alpha, a) => {
    const acc = accs[a];
    const diff = a === 0 ? "" : `  (Δ shapes vs first: ${f(mean(acc.shapes) - mean(accs[0].shapes))} ± ${f(se(acc.shapes.map((v, i) => v - accs[0].shapes[i])))})`;
    console.log(`alpha=${alpha ?? "default"}: columnShapes ${f(mean(acc.shapes))} ± ${f(se(acc.shapes))}  pairTrends ${f(mean(acc.pairs))} ± ${f(se(acc.pairs))}${diff}`);
    console.log(`  numeric: ${numeric.map((n) => `${n} ${f(acc.perColumn.get(n)!)}`).join("  ")}`);
    console.log(`  categorical: ${names.filter((n) => !numeric.includes(n)).map((n) => `${n} ${f(acc.perColumn.get(n)!)}`).join("  ")}`);
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
