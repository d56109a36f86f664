/** `fedsynth model export`: fetch a study's pooled model from the coordinator. */
import type { Command } from "commander";
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { addConnectionOptions, withOperator, type ConnectionOptions } from "../connection.js";
import { modelForSampling } from "../model-for-sampling.js";

export function registerModelCommands(program: Command): void {
  const model = program.command("model").description("pooled models");
  addConnectionOptions(model.command("export").description("write a study's latest pooled model to a file (for `fedsynth sample`)"))
    .requiredOption("--study <study-id>", "the study")
    .requiredOption("--out <model.fsm>", "where to write the model")
    .action(async (opts: ConnectionOptions & { study: string; out: string }) => {
      const exported = await withOperator(opts, (c) => c.exportModel(opts.study));
      const { round, engine } = exported;
      const bytes = modelForSampling(exported.bytes, `the model of study ${opts.study}`);
      writeFileSync(resolve(opts.out), bytes);
      process.stdout.write(`wrote the ${engine} model of study ${opts.study} after round ${round} to ${resolve(opts.out)} (${bytes.byteLength} bytes)\n`);
    });
}
