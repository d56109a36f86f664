/** `fedsynth sample`: synthetic rows from a pooled model file, streamed to CSV. */
import type { Command } from "commander";
import { resolve } from "node:path";
import { randomInt } from "node:crypto";
import { readModelFile } from "../model-file-read.js";
import { createCsvWriter } from "../../shared/schema/write-csv.js";
import { SeededRng } from "../../shared/random/rng.js";
import { parseCount } from "../options.js";
import { inSpan, shutdownTelemetry, startTelemetry } from "../../shared/telemetry/otel.js";
import { createLogger } from "../../shared/telemetry/log.js";

/** Writes `rows` synthetic rows from a model file to `out`; returns the seed used. */
export async function sampleModelFile(modelPath: string, rows: number, out: string, seed?: number): Promise<number> {
  const { bundle, engine, schema, model } = readModelFile(modelPath);
  await engine.prepare?.();
  const usedSeed = seed ?? randomInt(0, 2 ** 31);
  return inSpan("fedsynth.sampling", {
    attributes: { "fedsynth.study.id": bundle.studyId, "fedsynth.model.round": bundle.round, "fedsynth.engine": bundle.engine, "fedsynth.rows": rows },
  }, undefined, async () => {
    const writer = createCsvWriter(out, schema);
    for (const row of engine.sample(model, rows, new SeededRng(usedSeed))) {
      const pending = writer.write(row);
      if (pending) await pending;
    }
    await writer.close();
    return usedSeed;
  });
}

/** Runs a one-shot command with telemetry (when the OTEL_* variables ask for it), flushed at its end. */
export async function withCliTelemetry<T>(command: string, fn: () => Promise<T>): Promise<T> {
  await startTelemetry({ serviceName: "fedsynth", role: "cli", attributes: { "fedsynth.command": command } }, createLogger(command));
  try {
    return await fn();
  } finally {
    await shutdownTelemetry();
  }
}

export function registerSampleCommand(program: Command): void {
  program
    .command("sample")
    .description("sample synthetic rows from a pooled model file to CSV (streams: memory stays flat for any --rows)")
    .requiredOption("--model <model.fsm>", "a model file from `fedsynth model export` or a simulate --workdir")
    .requiredOption("--rows <n>", "number of rows", parseCount("--rows"))
    .requiredOption("--out <synthetic.csv>", "where to write the rows")
    .option("--seed <n>", "seed for reproducible sampling (default: random)", parseCount("--seed", 0))
    .action(async (opts: { model: string; rows: number; out: string; seed?: number }) => {
      const seed = await withCliTelemetry("sample", () => sampleModelFile(resolve(opts.model), opts.rows, resolve(opts.out), opts.seed));
      process.stdout.write(`wrote ${opts.rows} synthetic rows to ${resolve(opts.out)} (seed ${seed})\n`);
    });
}
