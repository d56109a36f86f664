#!/usr/bin/env node
/** The `fedsynth` command: one binary, one subcommand per job, each with --help. */
import { Command, CommanderError } from "commander";
import { FedsynthError } from "../shared/errors.js";
import { registerCoordinatorCommands } from "./commands/coordinator.js";
import { registerSiteCommands, registerSiteListCommand } from "./commands/site.js";
import { registerStudyCommands } from "./commands/study.js";
import { registerModelCommands } from "./commands/model.js";
import { registerSampleCommand } from "./commands/sample.js";
import { registerSimulateCommand } from "./commands/simulate.js";
import { registerEvaluateCommand } from "./commands/evaluate.js";
import { registerDemoCommand } from "./commands/demo.js";
import { registerPrivacyCommands } from "./commands/privacy.js";
import { registerDoctorCommand } from "./commands/doctor.js";
import { VERSION } from "./version.js";

const program = new Command()
  .name("fedsynth")
  .description("Federated synthesis of tabular patient data with differential privacy: hospitals keep their rows, the consortium gets a pooled synthetic cohort.")
  .version(VERSION)
  .showHelpAfterError("(run with --help for usage)")
  .exitOverride();

registerSimulateCommand(program);
registerDemoCommand(program);
registerEvaluateCommand(program);
registerSampleCommand(program);
registerCoordinatorCommands(program);
registerSiteCommands(program);
registerSiteListCommand(program);
registerStudyCommands(program);
registerModelCommands(program);
registerPrivacyCommands(program);
registerDoctorCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  const e = FedsynthError.from(err);
  process.stderr.write(`fedsynth: error: ${e.describe()}\n`);
  if (e.code === "internal" && e.stack && process.env.FEDSYNTH_DEBUG) process.stderr.write(e.stack + "\n");
  process.exit(e.code === "invalid-argument" ? 2 : 1);
}
