// Marginal engine throughput, as JSON on stdout (`node bench/marginal.mjs` after the build). Not a test:
// nothing passes or fails; compare runs on the same machine.
//
// - fit: a whole plaintext study (the engine's default rounds) of 20 columns (8 integer, 4 continuous, 2 stepped,
//   6 categorical; correlated through a latent factor) over 10 sites of 2,000 rows: every site's updates and the
//   coordinator's aggregations, round planning and model fit, in seconds (and the sites' and coordinator's shares);
// - sampling: rows/s of `sample` over 1,000,000 rows (bench/marginal-sample.mjs: consumed, not stored,
//   SeededRng; by the clock, and per second of the process's CPU time, steadier on a machine shared with other
//   work; the median of three passes, each beside it), in a fresh process that read the model's bytes (what
//   `fedsynth sample` does with a model file), and in the process that fitted the model, which is slower:
//   the sampler's draws are closures over its buffers, which V8 compiles as constants only while the process
//   has made one sampler, and the selection makes one per selected round (model-sampler.ts; measured on one
//   model, paired: 0.81–1.1M rows/s in a process with one sampler, 0.56–0.79M after a second was made);
// - model: the size in bytes of the model file `fedsynth model export` writes (serializeForSampling), of the
//   model the coordinator releases (serialize: the sums alone) and of the file's fit section; and the seconds
//   from the file's bytes to the first sampled row (deserialize, then the sampler: what `fedsynth sample`
//   waits before writing).
// Env: FEDSYNTH_BENCH_QUICK=1 for a short run (200,000 sampled rows).
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { samplingPasses } from "./marginal-sample.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = (p) => join(root, "dist", p);
const { marginalEngine: engine } = await import(dist("shared/engines/marginal/engine.js"));
const { parseSchema } = await import(dist("shared/schema/parse-schema.js"));
const { SeededRng, SecureRng, gaussian } = await import(dist("shared/random/rng.js"));
const { encodeFit } = await import(dist("shared/engines/marginal/fitted-bytes.js"));

const columns = [
  ...Array.from({ length: 8 }, (_, k) => ({ name: `int${k}`, type: "numeric", min: 0, max: 200, integer: true })),
  ...Array.from({ length: 4 }, (_, k) => ({ name: `real${k}`, type: "numeric", min: -5, max: 5, integer: false })),
  ...Array.from({ length: 2 }, (_, k) => ({ name: `step${k}`, type: "numeric", min: 0, max: 10, integer: false, step: 0.1 })),
  ...Array.from({ length: 6 }, (_, k) => ({ name: `cat${k}`, type: "categorical", values: ["a", "b", "c", "d"].slice(0, 2 + (k % 3)) })),
];
const schemaJson = JSON.stringify({ columns, missing: ["", "NA"] });
const schema = parseSchema(schemaJson, "bench schema");
const SITES = 10;
const ROWS = 2000;

function siteTable(s) {
  const rng = new SeededRng(100 + s);
  const cols = schema.columns.map(() => []);
  for (let i = 0; i < ROWS; i++) {
    const z = gaussian(rng) + 0.2 * s;
    schema.columns.forEach((c, j) => {
      if (rng.next() < 0.03) return cols[j].push(null);
      const x = 0.7 * z + 0.7 * gaussian(rng);
      if (c.type === "categorical") cols[j].push(Math.min(c.values.length - 1, Math.max(0, Math.floor((x + 1.5) * c.values.length / 3))));
      else if (c.integer) cols[j].push(Math.min(c.max, Math.max(c.min, Math.round(100 + 30 * x))));
      else if (c.step) cols[j].push(Math.min(c.max, Math.max(c.min, Math.round((5 + 2 * x) * 10) / 10)));
      else cols[j].push(Math.min(c.max, Math.max(c.min, x * 1.5)));
    });
  }
  return { schema, rowCount: ROWS, columns: cols };
}

const tables = Array.from({ length: SITES }, (_, s) => siteTable(s));
const privacy = { epsilon: 1, delta: 1e-5, rounds: engine.defaultRounds() };
let siteSeconds = 0;
let coordinatorSeconds = 0;
const t0 = performance.now();
let t = performance.now();
const config = engine.configure(schema, privacy);
let model = engine.init(schema, config);
coordinatorSeconds += (performance.now() - t) / 1000;
for (let round = 1; round <= privacy.rounds; round++) {
  t = performance.now();
  const roundConfig = engine.planRound(model, { schema, privacy, config, round });
  const ctx = { schema, privacy, config, round, roundConfig };
  const sum = new Float64Array(engine.updateLength(ctx));
  coordinatorSeconds += (performance.now() - t) / 1000;
  const noise = new SecureRng();
  for (const table of tables) {
    t = performance.now();
    const update = engine.localUpdate(ctx, null, table, noise);
    siteSeconds += (performance.now() - t) / 1000;
    for (let i = 0; i < sum.length; i++) sum[i] += update[i];
  }
  t = performance.now();
  model = engine.aggregate(model, sum, SITES, ctx);
  coordinatorSeconds += (performance.now() - t) / 1000;
}
// The model is fitted when first used (the coordinator's last step before sampling).
t = performance.now();
void model.sampler;
coordinatorSeconds += (performance.now() - t) / 1000;
const fitSeconds = (performance.now() - t0) / 1000;

const sampleRows = process.env.FEDSYNTH_BENCH_QUICK === "1" ? 200_000 : 1_000_000;
// In the process that fitted (which has made other samplers), then in a fresh one from the bytes.
const afterFit = samplingPasses(engine, model, sampleRows, SeededRng);

const bytes = engine.serializeForSampling(model);
t = performance.now();
for (const _ of engine.sample(engine.deserialize(bytes, schema, config), 1, new SeededRng(9)));
const readSeconds = (performance.now() - t) / 1000;
const dir = mkdtempSync(join(tmpdir(), "fedsynth-bench-"));
const file = join(dir, "model.json");
writeFileSync(file, JSON.stringify({ schemaJson, config, bytes: Buffer.from(bytes).toString("base64") }));
const child = spawnSync(process.execPath, [join(root, "bench", "marginal-sample.mjs"), file, String(sampleRows)], { encoding: "utf8" });
rmSync(dir, { recursive: true, force: true });
if (child.status !== 0) throw new Error(`bench/marginal-sample.mjs failed: ${child.stderr}`);
const fromFile = JSON.parse(child.stdout);

console.log(JSON.stringify({
  machine: { node: process.version },
  study: { columns: schema.columns.length, sites: SITES, rows_per_site: ROWS, rounds: privacy.rounds, model_pairs: model.fitted.pairs.length, cliques: model.fitted.fit.tree.cliques.length, model_cells: model.fitted.fit.tree.size },
  fit: { seconds: +fitSeconds.toFixed(3), site_seconds_total: +siteSeconds.toFixed(3), coordinator_seconds: +coordinatorSeconds.toFixed(3) },
  sampling: fromFile,
  sampling_in_fitting_process: afterFit,
  model: { bytes: bytes.length, released_bytes: engine.serialize(model).length, fit_bytes: encodeFit(model.fitted).length, read_to_first_row_seconds: +readSeconds.toFixed(3) },
}, null, 2));
