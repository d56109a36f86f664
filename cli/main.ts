#!/usr/bin/env node
/** The `fedsynth` command: one binary, one subcommand per job, each with --help. */
import { Command, CommanderError } from "commander";
import { FedsynthError } from "../shared/errors.js";
import { registerCoordinatorCommands, registerOperatorCommands } from "./commands/coordinator.js";
import { registerSiteCommands, registerSiteIdentityCommands, registerSiteListCommand } from "./commands/site.js";
import { registerStudyCommands } from "./commands/study.js";
import { registerModelCommands } from "./commands/model.js";
import { registerSampleCommand } from "./commands/sample.js";
import { registerSimulateCommand } from "./commands/simulate.js";
import { registerEvaluateCommand } from "./commands/evaluate.js";
import { registerDemoCommand } from "./commands/demo.js";
import { registerPrivacyCommands } from "./commands/privacy.js";
import { registerDoctorCommand } from "./commands/doctor.js";
import { VERSION } from "./version.js";
import { registerAuditCommands } from "./commands/audit.js";
import { registerHealthCommands } from "./commands/health.js";

// grpc-js sets the TLS server name to the dialled host even when it is an IP address, which Node flags
// with DEP0123 on every connection; the certificate's IP SAN is still checked, so the warning only adds noise.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const code = typeof rest[0] === "object" ? (rest[0] as { code?: string } | null)?.code : rest[1];
  if (code === "DEP0123") return;
  (emitWarning as (...args: unknown[]) => void)(warning, ...rest);
}) as typeof process.emitWarning;

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
registerOperatorCommands(program);
registerSiteCommands(program);
registerSiteListCommand(program);
registerSiteIdentityCommands(program);
registerStudyCommands(program);
registerModelCommands(program);
registerPrivacyCommands(program);
registerAuditCommands(program);
registerDoctorCommand(program);
registerHealthCommands(program);

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
