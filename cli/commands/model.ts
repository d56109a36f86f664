/** `fedsynth model export`: fetch a study's pooled model from the coordinator; `model verify`: check a model file (cli/model-verify.ts). */
import type { Command } from "commander";
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { addConnectionOptions, withOperator, type ConnectionOptions } from "../connection.js";
import { modelForSampling } from "../model-for-sampling.js";
import { describeModelVerdict, verifyModelFile } from "../model-verify.js";

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
  model
    .command("verify")
    .description("check a model file: it reads whole, what its export added for sampling is what the released sums imply, and (with --ledger) the ledger released it; exit 0 only if all hold")
    .requiredOption("--model <model.fsm>", "the model file")
    .option("--ledger <ledger.jsonl>", "the study's ledger (`fedsynth audit export`): verified, then searched for this model's release")
    .option("--ca <ca.pem>", "with --ledger: the consortium CA, as for `fedsynth audit verify`")
    .option("--json", "print the verdict as JSON", false)
    .action(async (opts: { model: string; ledger?: string; ca?: string; json: boolean }) => {
      const caPem = opts.ca ? readFileSync(resolve(opts.ca), "utf8") : undefined;
      const verdict = await verifyModelFile(resolve(opts.model), opts.ledger ? { path: resolve(opts.ledger), caPem } : undefined);
      process.stdout.write(opts.json ? JSON.stringify(verdict, null, 2) + "\n" : describeModelVerdict(verdict).join("\n") + "\n");
      if (!verdict.ok) process.exitCode = 1;
    });
}
