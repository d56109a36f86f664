// Neural engine throughput, as JSON on stdout (bench/run.mjs puts it under "neural"; `node bench/neural.mjs`
// runs it alone). Every ratio compares two things measured in this one run on this machine. Not a test.
//
// - train step: gradientSum (one DP-SGD gradient) vs bare plain matMuls of exactly the shapes it multiplies
//   (dp-sgd.ts lists them), each on fixed operands, timed in the same rounds as the steps (alternating, so
//   that load hits both alike): fraction = Σ bare matMul time / step time (= FLOP-rate ratio). The bare
//   products' right operands are the same tensor every call, so wasm packs them into its XNNPACK operator
//   once; a training step uploads its weights afresh (as trainLocal does: they change every step), and its
//   fresh weights and activations are packed every step, which the step pays;
// - DP step (clipNorm set) vs non-private step (clipNorm null) of the same net and batch;
// - sampleRows in-process rows/s; `fedsynth sample` peak RSS for 1M vs 10M rows (3M when 10M would be slow);
// - peak RSS of a site's local training (trainLocal, child process).
//
// Env: FEDSYNTH_BENCH_QUICK=1 for a short run (smaller samples), FEDSYNTH_BENCH_CLI_ROWS="1000000,10000000",
// FEDSYNTH_BENCH_CLOCK=cpu to time the step and matMul comparisons by the process's CPU time instead of
// wall time (on a loaded machine: time spent descheduled is left out; the two sides are timed alike).
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = (p) => join(root, "dist", p);
process.env.FEDSYNTH_LOG_LEVEL ??= "warn";
const { initTensorflow } = await import(dist("shared/tf/backend.js"));
const info = await initTensorflow();
const tf = await import("@tensorflow/tfjs-core");
const { parseSchema } = await import(dist("shared/schema/parse-schema.js"));
const { SeededRng, SecureRng } = await import(dist("shared/random/rng.js"));
const { encodeInputs } = await import(dist("shared/engines/neural/encoding.js"));
const { madeMasks, initParams, flattenParams } = await import(dist("shared/engines/neural/made.js"));
const { constantTensors, weightTensors, disposeTensors, trainLocal } = await import(dist("shared/engines/neural/train.js"));
const dpsgd = await import(dist("shared/engines/neural/dp-sgd.js"));
const { sampleRows } = await import(dist("shared/engines/neural/sample.js"));
const { neuralEngine, NEURAL_DEFAULTS, architecture } = await import(dist("shared/engines/neural/engine.js"));
const { encodeModelBundle } = await import(dist("shared/engines/model-file.js"));

const quick = process.env.FEDSYNTH_BENCH_QUICK === "1";
const heartJson = readFileSync(join(root, "examples", "heart-disease", "schema.json"), "utf8");
// A wider study: 16 columns, one-hot width ~250 (wide integer, continuous and many-valued categorical columns).
const wideJson = JSON.stringify({
  columns: [
    ...Array.from({ length: 5 }, (_, i) => ({ name: `lab${i}`, type: "numeric", min: 0, max: 1000, integer: true })),
    ...Array.from({ length: 3 }, (_, i) => ({ name: `vital${i}`, type: "numeric", min: 0, max: 250 })),
    ...Array.from({ length: 8 }, (_, i) => ({ name: `code${i}`, type: "categorical", values: Array.from({ length: 13 }, (_, v) => `c${v}`) })),
  ],
});
const schemas = { heart: parseSchema(heartJson, "heart"), wide: parseSchema(wideJson, "wide") };

// ---- child modes (peak memory is measured on a fresh process) ----------------------------------------------
const mode = process.argv[2];
if (mode === "--train-child") {
  const [name, hidden, rows, steps] = process.argv.slice(3);
  const { shape, masks, encoding, input, params } = modelFor(name, Number(hidden));
  const y = randomOneHot(encoding, Number(rows), new SeededRng(1));
  const x = inputsOf(encoding, input, y, Number(rows));
  const t0 = performance.now();
  trainLocal(shape, masks, encoding.blocks.length, params, y, Number(rows),
    { samplingRate: NEURAL_DEFAULTS.samplingRate, steps: Number(steps), clipNorm: 1, noiseMultiplier: 1, learningRate: NEURAL_DEFAULTS.learningRate, optimizer: NEURAL_DEFAULTS.optimizer },
    NEURAL_DEFAULTS.samplingRate * Number(rows), new SecureRng(), x);
  console.log(JSON.stringify({ seconds: (performance.now() - t0) / 1000 }));
  process.exit(0);
}
if (mode === "--idle-child") {
  console.log("{}");
  process.exit(0);
}

/** The default network (direct connections, input encodings) with `hidden` units per hidden layer. */
function modelFor(name, hidden) {
  const config = { ...NEURAL_DEFAULTS, hidden };
  const { encoding, input, directOutput, shape } = architecture(schemas[name], config);
  const masks = madeMasks(encoding, hidden, { input, direct: shape.direct, ...(directOutput.kind !== "onehot" ? { directOutput } : {}) });
  return { shape, encoding, input, masks, params: flattenParams(initParams(shape, new SeededRng(7))) };
}

/** The input features of one-hot rows (undefined for one-hot inputs). */
function inputsOf(encoding, input, y, n) {
  if (input.kind === "onehot") return undefined;
  const cells = encoding.blocks.map((b) => Array.from({ length: n }, (_, i) => {
    for (let c = 0; c < b.size; c++) if (y[i * encoding.width + b.offset + c] === 1) return c;
    return b.size - 1;
  }));
  // A table whose cells are the block indices: encodeInputs reads categorical values as indices; numeric
  // columns are given their bin's lower edge (or null for the missing cell).
  const columns = encoding.blocks.map((b, j) => cells[j].map((c) => (c === b.size - 1 ? null : b.bins ? b.bins.lo[c] : c)));
  return encodeInputs(encoding, input, { schema: undefined, rowCount: n, columns });
}

/** n random rows, one-hot per block (row-major n × width). */
function randomOneHot(encoding, n, rng) {
  const x = new Float32Array(n * encoding.width);
  for (let i = 0; i < n; i++) for (const b of encoding.blocks) x[i * encoding.width + b.offset + Math.floor(rng.next() * b.size)] = 1;
  return x;
}

const clock = process.env.FEDSYNTH_BENCH_CLOCK === "cpu"
  ? () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; }
  : () => performance.now();
/**
 * Best milliseconds per call of each fn: warm-up, then `samples` rounds of ~sampleMs per fn, the fns
 * alternating round by round so that machine noise hits them alike.
 */
function bestMsOf(fns, { samples = quick ? 3 : 15, sampleMs = quick ? 30 : 40, warmup = 3 } = {}) {
  // Calls per sample, from the mean time of the calls in ≥ 5 ms (a single call may hit a GC pause or a
  // preemption, which would leave samples of one call each).
  const per = fns.map((fn) => {
    for (let i = 0; i < warmup; i++) fn();
    const t0 = performance.now();
    let n = 0;
    do {
      fn();
      n++;
    } while (performance.now() - t0 < 5);
    return Math.max(1, Math.round((sampleMs * n) / (performance.now() - t0)));
  });
  const best = fns.map(() => Infinity);
  for (let s = 0; s < samples; s++) {
    fns.forEach((fn, f) => {
      const t0 = clock();
      for (let i = 0; i < per[f]; i++) fn();
      best[f] = Math.min(best[f], (clock() - t0) / per[f]);
    });
  }
  return best;
}
const bestMs = (fn, opts) => bestMsOf([fn], opts)[0];

const round = (v, d = 3) => (Number.isFinite(v) ? +v.toFixed(d) : null);
const results = { backend: { name: info.backend, tf: info.tfBackend, threads: info.threads, simd: info.simd ?? null }, clock: process.env.FEDSYNTH_BENCH_CLOCK === "cpu" ? "cpu" : "wall" };

// ---- training steps ------------------------------------------------------------------------------------------
// The default network (hidden = NEURAL_DEFAULTS.hidden, with its direct connections and encodings), and
// the same with hidden layers added. Batches 123 and 303 are what the engine trains on with the bundled
// heart data (a full-batch step per round at each site; the sites have 123–303 rows).
const configs = [
  { schema: "heart", hidden: NEURAL_DEFAULTS.hidden, batch: 64 },
  { schema: "heart", hidden: NEURAL_DEFAULTS.hidden, batch: 256 },
  { schema: "heart", hidden: NEURAL_DEFAULTS.hidden, batch: 1024 },
  { schema: "heart", hidden: 64, batch: 256 },
  { schema: "wide", hidden: NEURAL_DEFAULTS.hidden, batch: 256 },
  { schema: "wide", hidden: NEURAL_DEFAULTS.hidden, batch: 1024 },
  { schema: "wide", hidden: 128, batch: 256 },
  { schema: "heart", hidden: NEURAL_DEFAULTS.hidden, batch: 123 },
  { schema: "heart", hidden: NEURAL_DEFAULTS.hidden, batch: 303 },
  { schema: "wide", hidden: NEURAL_DEFAULTS.hidden, batch: 123 },
  { schema: "wide", hidden: NEURAL_DEFAULTS.hidden, batch: 303 },
];
/** A bare plain matMul of one shape, on fixed operands (timed like the steps, in the same rounds). */
function bareMatMul({ m, k, n }) {
  const a = tf.randomUniform([m, k], -1, 1, "float32", 1);
  const b = tf.randomUniform([k, n], -1, 1, "float32", 2);
  return { run: () => { const r = tf.matMul(a, b); r.dataSync(); r.dispose(); }, dispose: () => tf.dispose([a, b]) };
}
// Warm-up: the first steps of the process run several times slower (V8 compiling the dispatch code, the
// wasm heap growing); without this they land on whichever config comes first.
{
  const c = configs[0];
  const { shape, masks, encoding, input, params } = modelFor(c.schema, c.hidden);
  const net = { ...constantTensors(shape, masks, encoding.blocks.length), ...weightTensors(shape, params, masks) };
  const yArray = randomOneHot(encoding, c.batch, new SeededRng(2));
  const y = tf.tensor2d(yArray, [c.batch, shape.width]);
  const xArray = inputsOf(encoding, input, yArray, c.batch);
  const x = xArray ? tf.tensor2d(xArray, [c.batch, input.width]) : y;
  for (const t0 = performance.now(); performance.now() - t0 < 500;) {
    dpsgd.gradientSum(net, y, 1, x);
    dpsgd.gradientSum(net, y, null, x);
  }
  if (x !== y) x.dispose();
  y.dispose();
  disposeTensors(net);
}
results.shapes = [];
for (const c of configs) {
  const { shape, masks, encoding, input, params } = modelFor(c.schema, c.hidden);
  const columns = encoding.blocks.length;
  const constants = constantTensors(shape, masks, columns);
  const net = { ...constants, ...weightTensors(shape, params, masks) };
  const yArray = randomOneHot(encoding, c.batch, new SeededRng(2));
  const y = tf.tensor2d(yArray, [c.batch, shape.width]);
  const xArray = inputsOf(encoding, input, yArray, c.batch);
  const x = xArray ? tf.tensor2d(xArray, [c.batch, input.width]) : y;
  // A step as trainLocal takes it: the weights uploaded afresh (they change every step, so wasm packs
  // them into its matMul operators again), then the gradient.
  const step = (clipNorm) => () => {
    const weights = weightTensors(shape, params, masks);
    dpsgd.gradientSum({ ...constants, ...weights }, y, clipNorm, x);
    disposeTensors(weights);
  };
  const matmuls = dpsgd.gradientMatMuls(shape, columns, c.batch, true);
  const flops = matmuls.reduce((s, { m, k, n }) => s + 2 * m * k * n, 0);
  // The steps and every bare matMul alternate round by round, so that the ratio compares them under the
  // same machine load; bare is the sum of each shape's best time.
  const bareFns = matmuls.map(bareMatMul);
  const [dpMs, plainMs, ...bareTimes] = bestMsOf([step(1), step(null), ...bareFns.map((f) => f.run)]);
  bareFns.forEach((f) => f.dispose());
  const bare = bareTimes.reduce((s, t) => s + t, 0);
  const tensorsBefore = tf.memory().numTensors;
  dpsgd.gradientSum(net, y, 1, x);
  const leaked = tf.memory().numTensors - tensorsBefore;
  results.shapes.push({
    schema: c.schema, width: shape.width, input_width: input.width, hidden: shape.hidden, direct: !!shape.direct, columns, batch: c.batch,
    matmuls: matmuls.length, step_mflop: round(flops / 1e6, 2),
    matmul_gflops: round(flops / (bare * 1e6), 2),
    train_step_gflops: round(flops / (dpMs * 1e6), 2),
    train_fraction_of_matmul: round(bare / dpMs),
    dp_step_ms: round(dpMs), nonprivate_step_ms: round(plainMs), dp_over_nonprivate: round(dpMs / plainMs),
    ...(leaked ? { leaked_tensors: leaked } : {}),
  });
  if (x !== y) x.dispose();
  y.dispose();
  disposeTensors(net);
}
results.worst = {
  train_fraction_of_matmul: Math.min(...results.shapes.map((s) => s.train_fraction_of_matmul)),
  dp_over_nonprivate: Math.max(...results.shapes.map((s) => s.dp_over_nonprivate)),
};

// ---- a site's local training (trainLocal: Poisson sampling, steps, noise, Adam), peak memory --------------
const haveTime = existsSync("/usr/bin/time");
function peakRss(args) {
  const t0 = performance.now();
  const r = haveTime
    ? spawnSync("/usr/bin/time", ["-f", "%M", process.execPath, ...args], { encoding: "utf8", env: { ...process.env, FEDSYNTH_LOG_LEVEL: "warn" } })
    : spawnSync(process.execPath, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${args.join(" ")} failed: ${r.stderr}`);
  const seconds = (performance.now() - t0) / 1000;
  const kb = Number((r.stderr.trim().split("\n").pop() ?? "").trim());
  return { seconds, stdout: r.stdout, peak_rss_mb: haveTime && Number.isFinite(kb) ? Math.round(kb / 1024) : null };
}
const self = fileURLToPath(import.meta.url);
results.process_baseline_peak_rss_mb = peakRss([self, "--idle-child"]).peak_rss_mb;
results.training = [];
for (const [name, hidden, rows, steps] of [["heart", NEURAL_DEFAULTS.hidden, 1000, Math.max(10, NEURAL_DEFAULTS.stepsPerRound)], ["wide", NEURAL_DEFAULTS.hidden, 5000, 10], ["wide", 128, 5000, 10]]) {
  const r = peakRss([self, "--train-child", name, String(hidden), String(rows), String(steps)]);
  const inner = JSON.parse(r.stdout.trim().split("\n").pop());
  results.training.push({
    schema: name, hidden, rows, steps, expected_batch: NEURAL_DEFAULTS.samplingRate * rows,
    ms_per_step: round((inner.seconds * 1000) / steps, 1), peak_rss_mb: r.peak_rss_mb,
  });
}

// ---- sampling -------------------------------------------------------------------------------------------------
const privacy = { epsilon: 1, delta: 1e-5, rounds: 1 };
results.sampling = [];
for (const [name, hidden] of [["heart", NEURAL_DEFAULTS.hidden], ["wide", NEURAL_DEFAULTS.hidden], ["wide", 128]]) {
  const { shape, masks, encoding, input, params } = modelFor(name, hidden);
  const rows = quick ? 50_000 : 200_000;
  // warm-up: the first chunk compiles and allocates
  for (const _ of sampleRows(shape, masks, encoding, params, 10_000, new SeededRng(1), input));
  const t0 = performance.now();
  let count = 0;
  for (const _ of sampleRows(shape, masks, encoding, params, rows, new SeededRng(1), input)) count++;
  results.sampling.push({ schema: name, width: shape.width, hidden, rows: count, rows_per_second: Math.round(count / ((performance.now() - t0) / 1000)) });
}
results.sampling_rows_per_second = results.sampling[0].rows_per_second;

// `fedsynth sample` of the heart model to CSV: peak RSS for 1M vs 10M rows (flat when streaming).
const work = mkdtempSync(join(tmpdir(), "fedsynth-bench-neural-"));
try {
  const config = neuralEngine.configure(schemas.heart, privacy);
  const model = neuralEngine.init(schemas.heart, config);
  const modelFile = join(work, "neural.fsm");
  writeFileSync(modelFile, encodeModelBundle({
    engine: "neural", schemaJson: heartJson, engineConfig: config, privacy,
    studyId: "bench", studyName: "bench", round: 1, createdAt: new Date().toISOString(), body: neuralEngine.serialize(model),
  }));
  const run = (rows) => {
    const r = peakRss([dist("cli/main.js"), "sample", "--model", modelFile, "--rows", String(rows), "--out", join(work, "s.csv"), "--seed", "1"]);
    return { rows, seconds: round(r.seconds, 2), rows_per_second: Math.round(rows / r.seconds), peak_rss_mb: r.peak_rss_mb };
  };
  let sizes = (process.env.FEDSYNTH_BENCH_CLI_ROWS ?? "").split(",").filter(Boolean).map(Number);
  if (!sizes.length) sizes = quick ? [100_000, 300_000] : [1_000_000];
  const cli = [run(sizes[0])];
  if (sizes.length < 2) {
    // 10M rows when that takes under ~2.5 minutes at the measured CLI rate, else 3M.
    const big = cli[0].rows_per_second * 150 >= 10_000_000 ? 10_000_000 : 3_000_000;
    sizes.push(big);
    if (big < 10_000_000) results.sample_cli_note = `10M rows would take ~${Math.round(10_000_000 / cli[0].rows_per_second)} s here; flatness measured with ${sizes[0]} vs ${big} rows`;
  }
  cli.push(run(sizes[1]));
  results.sample_cli = cli;
  if (cli[0].peak_rss_mb && cli[1].peak_rss_mb) results.sample_cli_memory_ratio = round(cli[1].peak_rss_mb / cli[0].peak_rss_mb, 2);
} finally {
  rmSync(work, { recursive: true, force: true });
}

console.log(JSON.stringify(results, null, 2));
