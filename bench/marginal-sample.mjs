// The marginal engine's sampling rate, in passes of `rows` rows (consumed, not stored), SeededRng: by the
// clock and per second of the process's CPU time; the median of three passes, each pass beside it.
// bench/marginal.mjs imports samplingPasses for the process that fitted the model, and runs this file on
// the model's bytes for a fresh process that reads them, as `fedsynth sample` does a model file:
//   node bench/marginal-sample.mjs MODEL.json ROWS   (MODEL.json: { schemaJson, config, bytes (base64) })
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** Three timed passes after a warm-up, and their medians. */
export function samplingPasses(engine, model, rows, SeededRng) {
  for (const _ of engine.sample(model, 20_000, new SeededRng(1)));
  const passes = [];
  let n = 0;
  for (let pass = 0; pass < 3; pass++) {
    const t = performance.now();
    const cpu0 = process.cpuUsage();
    n = 0;
    for (const row of engine.sample(model, rows, new SeededRng(2 + pass))) n += row.length > 0 ? 1 : 0;
    const seconds = (performance.now() - t) / 1000;
    const cpu = process.cpuUsage(cpu0);
    passes.push({ rows_per_second: Math.round(n / seconds), rows_per_cpu_second: Math.round(n / ((cpu.user + cpu.system) / 1e6)) });
  }
  const median = (key) => passes.map((p) => p[key]).sort((a, b) => a - b)[1];
  return { rows: n, rows_per_second: median("rows_per_second"), rows_per_cpu_second: median("rows_per_cpu_second"), passes };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const dist = (p) => join(root, "dist", p);
  const { marginalEngine: engine } = await import(dist("shared/engines/marginal/engine.js"));
  const { parseSchema } = await import(dist("shared/schema/parse-schema.js"));
  const { SeededRng } = await import(dist("shared/random/rng.js"));
  const saved = JSON.parse(readFileSync(process.argv[2], "utf8"));
  const schema = parseSchema(saved.schemaJson, "bench schema");
  const model = engine.deserialize(new Uint8Array(Buffer.from(saved.bytes, "base64")), schema, saved.config);
  console.log(JSON.stringify(samplingPasses(engine, model, Number(process.argv[3]), SeededRng)));
}
