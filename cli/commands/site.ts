/** `fedsynth site start`: a hospital's site agent. */
import type { Command } from "commander";
import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { SiteAgent } from "../../site-agent/agent.js";
import { validateSiteName } from "../../coordinator/study/study-request.js";
import { createLogger } from "../../shared/telemetry/log.js";
import { FedsynthError } from "../../shared/errors.js";
import { parsePositive, parseProbability } from "../options.js";
import { withClient } from "./study.js";

export function registerSiteCommands(program: Command): void {
  const site = program.command("site").description("run a hospital's site agent");
  site
    .command("start")
    .description("start a site agent: it dials out to the coordinator (it never listens) and carries out the tasks its budget allows")
    .requiredOption("--coordinator <host:port>", "the coordinator's address")
    .requiredOption("--name <name>", "this site's name in the consortium")
    .requiredOption("--data <file.csv>", "this site's data (CSV with a header row); it never leaves the site")
    .requiredOption("--data-dir <dir>", "where the agent keeps its own ledger of charges and released updates")
    .requiredOption("--epsilon-cap <e>", "the most privacy budget (epsilon) this site spends over all studies", parsePositive("--epsilon-cap"))
    .option("--delta-cap <d>", "the most delta this site spends over all studies", parseProbability("--delta-cap"), 1e-5)
    .option("--insecure", "talk plaintext gRPC to the coordinator (development only)", false)
    .option("--reconnect-max-seconds <s>", "longest wait between reconnection attempts", parsePositive("--reconnect-max-seconds"), 10)
    .action(async (opts: {
      coordinator: string; name: string; data: string; dataDir: string; epsilonCap: number; deltaCap: number; insecure: boolean;
      reconnectMaxSeconds: number;
    }) => {
      validateSiteName(opts.name, "--name");
      const dataFile = resolve(opts.data);
      if (!existsSync(dataFile) || !statSync(dataFile).isFile()) {
        throw new FedsynthError("not-found", `the data file ${dataFile} does not exist`, { hint: "point --data at this site's CSV file" });
      }
      if (!opts.insecure) {
        throw new FedsynthError("invalid-argument", "no TLS credentials are configured for this agent", {
          hint: "this version talks plaintext gRPC only: pass --insecure (development on a trusted network)",
        });
      }
      const log = createLogger(`site ${opts.name}`);
      log.warn("talking PLAINTEXT gRPC to the coordinator (--insecure)");
      const agent = new SiteAgent({
        coordinator: opts.coordinator, siteName: opts.name, dataFile, dataDir: resolve(opts.dataDir),
        cap: { epsilon: opts.epsilonCap, delta: opts.deltaCap }, log, reconnectMaxMs: opts.reconnectMaxSeconds * 1000,
      });
      const stop = (signal: string) => {
        log.info("shutting down", { signal });
        void agent.close().then(() => process.exit(0));
      };
      process.once("SIGINT", () => stop("SIGINT"));
      process.once("SIGTERM", () => stop("SIGTERM"));
      log.info("site agent started", { data: dataFile, epsilon_cap: opts.epsilonCap, delta_cap: opts.deltaCap });
      await agent.run();
    });
}

export function registerSiteListCommand(program: Command): void {
  const site = program.commands.find((c) => c.name() === "site")!;
  site
    .command("list")
    .description("list the sites the coordinator knows, whether they are connected, and their last contact")
    .requiredOption("--coordinator <host:port>", "the coordinator's address")
    .option("--json", "print JSON", false)
    .action(async (opts: { coordinator: string; json: boolean }) => {
      const sites = await withClient(opts.coordinator, (c) => c.listSites());
      if (opts.json) {
        process.stdout.write(JSON.stringify(sites, null, 2) + "\n");
        return;
      }
      if (sites.length === 0) process.stdout.write("no sites have enrolled yet\n");
      for (const s of sites) {
        process.stdout.write(`${s.name.padEnd(16)} ${s.connected ? "connected   " : "disconnected"}  last contact ${s.lastContact?.toISOString() ?? "never"}  agent ${s.agentVersion}\n`);
      }
    });
}
