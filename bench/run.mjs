// `npm run bench`: throughput figures as JSON, all measured in this one run on this machine.
// Not a test: machines are noisy, so nothing here passes or fails; compare runs on the same machine.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = (p) => join(root, "dist", p);
const { getEngine } = await import(dist("shared/engines/registry.js"));
const { parseSchema } = await import(dist("shared/schema/parse-schema.js"));
const { readTable } = await import(dist("shared/schema/read-csv.js"));
const { SeededRng, SecureRng } = await import(dist("shared/random/rng.js"));

const examples = join(root, "examples", "heart-disease");
const schema = parseSchema(readFileSync(join(examples, "schema.json"), "utf8"), "schema.json");
const sites = ["cleveland", "hungary", "switzerland", "va"];
const work = mkdtempSync(join(tmpdir(), "fedsynth-bench-"));
const results = { machine: { node: process.version, cpus: (await import("node:os")).cpus().length } };

// CSV reading: the four sites' files concatenated 200 times (~184k rows).
const header = readFileSync(join(examples, "cleveland.csv"), "utf8").split("\n")[0];
const body = sites.map((s) => readFileSync(join(examples, `${s}.csv`), "utf8").split("\n").slice(1).filter(Boolean).join("\n")).join("\n");
const big = join(work, "big.csv");
writeFileSync(big, header + "\n" + Array.from({ length: 200 }, () => body).join("\n") + "\n");
let t = performance.now();
const { table } = await readTable(big, schema);
const readSeconds = (performance.now() - t) / 1000;
results.csv_read = { rows: table.rowCount, rows_per_second: Math.round(table.rowCount / readSeconds), mb: +(statSync(big).size / 1e6).toFixed(1) };

// Local update and sampling of the independent engine.
const engine = getEngine("independent");
const privacy = { epsilon: 1, delta: 1e-5, rounds: 1 };
const config = engine.configure(schema, privacy);
const ctx = { schema, privacy, config, round: 1, roundConfig: engine.planRound(engine.init(schema, config), { schema, privacy, config, round: 1 }) };
t = performance.now();
const update = engine.localUpdate(ctx, null, table, new SecureRng());
results.local_update = { rows: table.rowCount, seconds: +((performance.now() - t) / 1000).toFixed(3) };
const model = engine.aggregate(engine.init(schema, config), update, 1, ctx);
const n = 1_000_000;
t = performance.now();
let count = 0;
for (const _row of engine.sample(model, n, new SeededRng(1))) count++;
results.sampling = { rows: count, rows_per_second: Math.round(count / ((performance.now() - t) / 1000)) };

// Sampling 2M rows to CSV through the CLI: rows per second and the process's peak memory (flat if streaming).
const modelFile = join(work, "model.fsm");
const { encodeModelBundle } = await import(dist("shared/engines/model-file.js"));
writeFileSync(modelFile, encodeModelBundle({
  engine: "independent", schemaJson: readFileSync(join(examples, "schema.json"), "utf8"), engineConfig: config, privacy,
  studyId: "bench", studyName: "bench", round: 1, createdAt: new Date().toISOString(), body: engine.serialize(model),
}));
for (const rows of [200_000, 2_000_000]) {
  t = performance.now();
  const args = [dist("cli/main.js"), "sample", "--model", modelFile, "--rows", String(rows), "--out", join(work, "s.csv"), "--seed", "1"];
  const r = existsSync("/usr/bin/time")
    ? spawnSync("/usr/bin/time", ["-f", "%M", process.execPath, ...args], { encoding: "utf8" })
    : spawnSync(process.execPath, args, { encoding: "utf8" });
  const seconds = (performance.now() - t) / 1000;
  const peakKb = Number((r.stderr.trim().split("\n").pop() ?? "").trim());
  results[`sample_cli_${rows}`] = { seconds: +seconds.toFixed(2), rows_per_second: Math.round(rows / seconds), peak_rss_mb: Number.isFinite(peakKb) ? Math.round(peakKb / 1024) : null };
}
if (results.sample_cli_200000.peak_rss_mb && results.sample_cli_2000000.peak_rss_mb) {
  results.sample_cli_memory_ratio_10x_rows = +(results.sample_cli_2000000.peak_rss_mb / results.sample_cli_200000.peak_rss_mb).toFixed(2);
}

// The whole federation: `fedsynth simulate` on the four hospitals, real processes.
t = performance.now();
execFileSync(process.execPath, [dist("cli/main.js"), "simulate", "--quiet", "--schema", join(examples, "schema.json"),
  ...sites.flatMap((s) => ["--site", `${s}=${join(examples, `${s}.csv`)}`]), "--out", join(work, "sim.csv")], { stdio: "ignore" });
results.simulate_heart_disease_seconds = +((performance.now() - t) / 1000).toFixed(2);

/** A benchmark script run in its own process: its JSON, or the end of its error output. */
function childBench(script, args = []) {
  const r = spawnSync(process.execPath, [join(root, "bench", script), ...args], { encoding: "utf8", maxBuffer: 1 << 26 });
  return r.status === 0 ? JSON.parse(r.stdout) : { error: (r.stderr || "").trim().split("\n").slice(-5).join("\n") };
}

// The neural engine (bench/neural.mjs): training steps against bare matMuls, DP-SGD against non-private
// steps, sampling rate and memory, training memory.
results.neural = childBench("neural.mjs");

// The marginal engine (bench/marginal.mjs): fit time of a 20-column study over 10 sites, sampling rows
// per second, model size. FEDSYNTH_BENCH_QUICK=1 samples fewer rows.
results.marginal = childBench("marginal.mjs");

// Secure aggregation (bench/secagg.mjs): client masking time, coordinator unmask + aggregate time against
// summing the same plaintext vectors in that process, and bytes on the wire against the raw float32
// updates, for 10/50/100 sites × 100k/1M parameters (about 3 minutes on 2 cores). FEDSYNTH_BENCH_QUICK=1
// runs 10 sites × 100k only, as it shortens the neural section.
results.secure_aggregation = childBench("secagg.mjs", process.env.FEDSYNTH_BENCH_QUICK === "1" ? ["--quick"] : []);

// The privacy ledger (bench/ledger.mjs): build and verify a 10,000-entry ledger.
results.ledger = childBench("ledger.mjs");

console.log(JSON.stringify(results, null, 2));
