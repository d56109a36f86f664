/** `fedsynth site ...`: a hospital's site agent (enrol, start) and the operator's site commands (list, token, revoke). */
import type { Command } from "commander";
import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { coordinatorAddresses, SiteAgent } from "../../site-agent/agent.js";
import { validateSiteName } from "../../coordinator/study/study-request.js";
import { createLogger } from "../../shared/telemetry/log.js";
import { shutdownTelemetry, startTelemetry } from "../../shared/telemetry/otel.js";
import { addConnectionOptions, withOperator, type ConnectionOptions } from "../connection.js";
import { FedsynthError } from "../../shared/errors.js";
import { parsePositive, parseProbability, usage } from "../options.js";
import { MAX_TOKEN_TTL_MS } from "../../coordinator/sites.js";
import type * as grpc from "@grpc/grpc-js";
import { requireLoopbackForPlaintext } from "../../shared/transport/loopback.js";
import { channelCredentials } from "../../shared/crypto/pki/index.js";
import { hasTlsIdentity, loadTlsIdentity } from "../../site-agent/identity.js";
import { enrollSite } from "../../site-agent/enroll.js";
import { PROXY_OPTION, useProxy } from "../proxy.js";

export function registerSiteCommands(program: Command): void {
  const site = program.command("site").description("run a hospital's site agent");
  site
    .command("start")
    .description("start a site agent: it dials out to the coordinator (it never listens) and carries out the tasks its budget allows")
    .requiredOption("--coordinator <host:port>", "the coordinator's address; for replicas without one address in front of them, each of theirs separated by commas (the agent tries them in turn)")
    .requiredOption("--name <name>", "this site's name in the consortium")
    .requiredOption("--data <file.csv>", "this site's data (CSV with a header row); it never leaves the site")
    .requiredOption("--data-dir <dir>", "where the agent keeps its own ledger of charges and released updates")
    .requiredOption("--epsilon-cap <e>", "the most privacy budget (epsilon) this site spends over all studies", parsePositive("--epsilon-cap"))
    .option("--delta-cap <d>", "the most delta this site spends over all studies", parseProbability("--delta-cap"), 1e-5)
    .option("--insecure", "talk plaintext gRPC to a development coordinator on loopback (no enrolment needed)", false)
    .option("--reconnect-max-seconds <s>", "longest wait between reconnection attempts", parsePositive("--reconnect-max-seconds"), 10)
    .option(...PROXY_OPTION)
    .action(async (opts: {
      coordinator: string; name: string; data: string; dataDir: string; epsilonCap: number; deltaCap: number; insecure: boolean;
      reconnectMaxSeconds: number; proxy?: string;
    }) => {
      validateSiteName(opts.name, "--name");
      const dataFile = resolve(opts.data);
      if (!existsSync(dataFile) || !statSync(dataFile).isFile()) {
        throw new FedsynthError("not-found", `the data file ${dataFile} does not exist`, { hint: "point --data at this site's CSV file" });
      }
      const dataDir = resolve(opts.dataDir);
      const log = createLogger(`site ${opts.name}`);
      // OpenTelemetry only when this site's operator sets the OTEL_* variables (it exports to their collector).
      await startTelemetry({ serviceName: "fedsynth-site", role: "site", attributes: { "fedsynth.site.name": opts.name } }, log);
      useProxy(opts.proxy, log);
      let credentials: grpc.ChannelCredentials | undefined;
      if (opts.insecure) {
        for (const address of coordinatorAddresses(opts.coordinator)) requireLoopbackForPlaintext(address, "--coordinator");
        log.warn("talking PLAINTEXT gRPC to the coordinator (--insecure): development on this machine only");
      } else {
        if (!hasTlsIdentity(dataDir)) {
          throw new FedsynthError("failed-precondition", `site ${opts.name} has not enrolled: ${dataDir} holds no identity`, {
            hint: "enrol first with the token from the consortium operator: fedsynth site enroll --coordinator ... --name ... --token ... --ca-fingerprint ... --data-dir (the same directory)",
          });
        }
        const { tls, enrolment } = loadTlsIdentity(dataDir);
        if (enrolment.siteName !== opts.name) {
          throw new FedsynthError("invalid-argument", `--name ${opts.name} does not match the site this data directory enrolled as (${enrolment.siteName})`, {
            hint: `start it with --name ${enrolment.siteName}, or use another --data-dir for another site`,
          });
        }
        credentials = channelCredentials({ caPem: tls.caPem, certPem: tls.certPem, keyPem: tls.keyPem, pinnedFingerprint: tls.coordinatorFingerprint });
      }
      const agent = new SiteAgent({
        coordinator: opts.coordinator, siteName: opts.name, dataFile, dataDir, credentials,
        cap: { epsilon: opts.epsilonCap, delta: opts.deltaCap }, log, reconnectMaxMs: opts.reconnectMaxSeconds * 1000,
      });
      const stop = (signal: string) => {
        log.info("shutting down", { signal });
        void agent.close().then(() => shutdownTelemetry()).then(() => process.exit(0));
      };
      process.once("SIGINT", () => stop("SIGINT"));
      process.once("SIGTERM", () => stop("SIGTERM"));
      log.info("site agent started", { data: dataFile, epsilon_cap: opts.epsilonCap, delta_cap: opts.deltaCap });
      try {
        await agent.run();
      } catch (err) {
        await shutdownTelemetry(); // a signal's stop() flushes after agent.close() instead
        throw err;
      }
    });
}

export function registerSiteListCommand(program: Command): void {
  const site = program.commands.find((c) => c.name() === "site")!;
  addConnectionOptions(site.command("list").description("list the sites the coordinator knows, whether they are connected, and their last contact"))
    .option("--json", "print JSON", false)
    .action(async (opts: ConnectionOptions & { json: boolean }) => {
      const sites = await withOperator(opts, (c) => c.listSites());
      if (opts.json) {
        process.stdout.write(JSON.stringify(sites, null, 2) + "\n");
        return;
      }
      if (sites.length === 0) process.stdout.write("no sites have enrolled yet\n");
      for (const s of sites) {
        const state = s.revoked ? `REVOKED (${s.revokedReason})` : s.connected ? "connected   " : "disconnected";
        process.stdout.write(`${s.name.padEnd(16)} ${state}  last contact ${s.lastContact?.toISOString() ?? "never"}  agent ${s.agentVersion}${s.certificateFingerprint ? `  certificate ${s.certificateFingerprint.slice(0, 23)}…` : ""}\n`);
      }
    });
}

export function registerSiteIdentityCommands(program: Command): void {
  const site = program.commands.find((c) => c.name() === "site")!;
  site
    .command("enroll")
    .description("enrol this site: make its keys here, trade the operator's one-time token for its certificate, pin the coordinator")
    .requiredOption("--coordinator <host:port>", "the coordinator's address")
    .requiredOption("--name <name>", "this site's name (the one the token was issued for)")
    .requiredOption("--token <token>", "the one-time enrolment token from the consortium operator")
    .requiredOption("--ca-fingerprint <sha256>", "the consortium CA's fingerprint, as the operator gave it with the token")
    .requiredOption("--data-dir <dir>", "the agent's data directory (its keys go to DIR/identity, readable by its owner only)")
    .option(...PROXY_OPTION)
    .action(async (opts: { coordinator: string; name: string; token: string; caFingerprint: string; dataDir: string; proxy?: string }) => {
      validateSiteName(opts.name, "--name");
      const log = createLogger(`site ${opts.name}`);
      useProxy(opts.proxy, log);
      const dataDir = resolve(opts.dataDir);
      const enrolment = await enrollSite({ coordinator: opts.coordinator, siteName: opts.name, token: opts.token, caFingerprint: opts.caFingerprint, dataDir, log });
      process.stdout.write(`site ${opts.name} enrolled with ${opts.coordinator}; its identity is in ${dataDir}/identity\n` +
        `coordinator certificate pinned: ${enrolment.coordinatorFingerprint}\n` +
        `start the agent with: fedsynth site start --coordinator ${opts.coordinator} --name ${opts.name} --data-dir ${dataDir} --data FILE.csv --epsilon-cap E\n`);
    });

  addConnectionOptions(site.command("token").description("issue a one-time enrolment token for a site (operator)"))
    .requiredOption("--site <name>", "the site the token is for")
    .option("--ttl-hours <h>", "how long the token stays valid", parsePositive("--ttl-hours"), 24)
    .option("--json", "print JSON", false)
    .action(async (opts: ConnectionOptions & { site: string; ttlHours: number; json: boolean }) => {
      validateSiteName(opts.site, "--site");
      const ttlSeconds = tokenTtlSeconds(opts.ttlHours);
      const issued = await withOperator(opts, (c) => c.issueEnrollmentToken(opts.site, ttlSeconds));
      if (opts.json) {
        process.stdout.write(JSON.stringify({ site: opts.site, token: issued.token, expiresAt: issued.expiresAt.toISOString(), caFingerprint: issued.caFingerprint }) + "\n");
        return;
      }
      process.stdout.write(`enrolment token for site ${opts.site} (one use, valid until ${issued.expiresAt.toISOString()}):\n  ${issued.token}\n` +
        `consortium CA fingerprint:\n  ${issued.caFingerprint}\n` +
        `send both to the site's IT team over a channel you trust; on the site's host they run:\n` +
        `  fedsynth site enroll --coordinator ${opts.coordinator} --name ${opts.site} --token ${issued.token} --ca-fingerprint ${issued.caFingerprint} --data-dir DIR\n`);
    });

  addConnectionOptions(site.command("revoke").description("revoke a site's certificate: its next call is refused and its session closed (operator)"))
    .argument("<site>")
    .option("--reason <text>", "why (recorded and shown in site list)", "revoked by the operator")
    .action(async (name: string, opts: ConnectionOptions & { reason: string }) => {
      const site = await withOperator(opts, (c) => c.revokeSite(name, opts.reason));
      process.stdout.write(`site ${site.name} revoked: ${site.revokedReason}\n`);
    });
}

/**
 * --ttl-hours as the whole seconds the wire carries, a fraction of a second rounded up. A lifetime under a
 * second is refused rather than sent as 0, which the coordinator reads as "not set" (its 24-hour default).
 */
export function tokenTtlSeconds(hours: number): number {
  // Whole milliseconds first, so that float noise (0.1 h is 360.00000000000006 s) does not add a second.
  const ms = Math.round(hours * 3600 * 1000);
  const range = `pass --ttl-hours between 0.0003 (about a second) and ${MAX_TOKEN_TTL_MS / 3_600_000} (30 days)`;
  if (ms < 1000) throw usage(`--ttl-hours ${hours} is ${ms / 1000} s, and a token must stay valid for at least 1 second`, range);
  if (ms > MAX_TOKEN_TTL_MS) throw usage(`--ttl-hours ${hours} is longer than the 30 days a token may stay valid`, range);
  return Math.ceil(ms / 1000);
}
