/**
 * `fedsynth health coordinator|site`: one process's health, for container health checks, service managers
 * and people. Exit 0 when healthy; 1 when not, saying what is wrong (2: the command line itself is wrong).
 */
import type { Command } from "commander";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { FedsynthError } from "../../shared/errors.js";
import { channelCredentials } from "../../shared/crypto/pki/index.js";
import { parsePositive, usage } from "../options.js";
import { isAlive } from "../../shared/util/dir-lock.js";

export function registerHealthCommands(program: Command): void {
  const health = program
    .command("health")
    .description("check a coordinator or a site agent: exit 0 when healthy, 1 (saying what is wrong) when not — for container health checks and probes");

  health
    .command("coordinator")
    .description("ask a coordinator's grpc.health.v1 service for its status: over TLS trusting the consortium CA (no client certificate is needed), or in plaintext on its --health-listen port")
    .requiredOption("--address <host:port>", "the coordinator's --listen address (with --ca), or its --health-listen address (with --insecure)")
    .option("--ca <ca.pem>", "the consortium CA certificate to trust: DATA_DIR/pki/ca.pem on the coordinator's host, or ca.pem in operator credentials")
    .option("--insecure", "plaintext: for the coordinator's --health-listen port (it serves nothing but health)", false)
    .option("--tls-server-name <name>", "the name to check the coordinator's certificate against, when --address is not one of its names (a pod IP, say)")
    .option("--service <name>", "the service to ask about (default: the coordinator as a whole, \"\")", "")
    .option("--timeout <seconds>", "how long to wait for an answer", parsePositive("--timeout"), 5)
    .addHelpText("after", "\nPrints 'coordinator at ADDRESS: SERVING' and exits 0, or says why not and exits 1.")
    .action(async (opts: { address: string; ca?: string; insecure: boolean; tlsServerName?: string; service: string; timeout: number }) => {
      const status = await checkCoordinator(opts);
      if (status !== "SERVING") {
        throw new FedsynthError("unavailable", `coordinator at ${opts.address}: ${status}${opts.service ? ` for service ${opts.service}` : ""}`, {
          hint: "it is shutting down or not ready yet; see its log",
        });
      }
      process.stdout.write(`coordinator at ${opts.address}: SERVING${opts.service ? ` (${opts.service})` : ""}\n`);
    });

  health
    .command("site")
    .description("check a site agent on its own host, from its data directory: exit 0 only if the agent is running and has updated DATA_DIR/status.json within --max-age")
    .requiredOption("--data-dir <dir>", "the agent's data directory (the one given to site start)")
    .option("--max-age <seconds>", "how long ago status.json may have been updated", parsePositive("--max-age"), 120)
    .option("--require-connected", "also fail while the agent is not connected to the coordinator (by default an agent that is retrying is healthy)", false)
    .addHelpText("after", "\nPrints 'site NAME: running ...' and exits 0, or says what is wrong and exits 1. Run it where the agent runs (it checks the agent's process).")
    .action((opts: { dataDir: string; maxAge: number; requireConnected: boolean }) => {
      process.stdout.write(checkSite({ dataDir: resolve(opts.dataDir), maxAgeSeconds: opts.maxAge, requireConnected: opts.requireConnected }) + "\n");
    });
}

/** One grpc.health.v1 Check; resolves with the status it answered, throws when there is no answer. */
async function checkCoordinator(opts: { address: string; ca?: string; insecure: boolean; tlsServerName?: string; service: string; timeout: number }): Promise<string> {
  if (opts.insecure === (opts.ca !== undefined)) {
    throw usage(opts.insecure ? "--ca and --insecure exclude each other" : "say how to reach the coordinator: --ca CA.pem (its TLS port) or --insecure (its plaintext --health-listen port)",
      "the coordinator's --listen port is TLS: pass --ca DATA_DIR/pki/ca.pem; its --health-listen port is plaintext: pass --insecure");
  }
  if (opts.insecure && opts.tlsServerName !== undefined) throw usage("--tls-server-name needs TLS (--ca), not --insecure");
  let credentials: grpc.ChannelCredentials;
  if (opts.ca !== undefined) {
    const caPath = resolve(opts.ca);
    if (!existsSync(caPath) || !statSync(caPath).isFile()) {
      throw new FedsynthError("not-found", `the CA certificate ${caPath} does not exist`, {
        hint: "on the coordinator's host it is DATA_DIR/pki/ca.pem (written by fedsynth coordinator init); an operator has it as ca.pem in their credentials",
      });
    }
    credentials = channelCredentials({ caPem: readFileSync(caPath, "utf8") });
  } else {
    credentials = grpc.credentials.createInsecure();
  }
  const channelOptions: grpc.ChannelOptions = opts.tlsServerName ? { "grpc.ssl_target_name_override": opts.tlsServerName, "grpc.default_authority": opts.tlsServerName } : {};
  const Health = grpc.makeClientConstructor(healthService as unknown as grpc.ServiceDefinition, "grpc.health.v1.Health");
  const client = new Health(opts.address, credentials, channelOptions) as unknown as grpc.Client & {
    Check(req: { service: string }, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
  };
  try {
    return await new Promise<string>((resolvePromise, reject) => {
      client.Check({ service: opts.service }, { deadline: Date.now() + opts.timeout * 1000 }, (err, res) => {
        if (err) reject(describeCallError(err, opts));
        else resolvePromise(String(res?.status ?? "UNKNOWN"));
      });
    });
  } finally {
    client.close();
  }
}

function describeCallError(err: grpc.ServiceError, opts: { address: string; insecure: boolean; timeout: number; service: string }): FedsynthError {
  const where = `coordinator at ${opts.address}`;
  switch (err.code) {
    case grpc.status.NOT_FOUND:
      return new FedsynthError("unavailable", `${where} does not know the service ${JSON.stringify(opts.service)}`, {
        hint: "leave --service out to ask about the coordinator as a whole",
      });
    case grpc.status.DEADLINE_EXCEEDED:
      return new FedsynthError("unavailable", `${where} did not answer within ${opts.timeout} s`, { hint: "is the address right, and is the coordinator overloaded or hung? see its log" });
    case grpc.status.UNIMPLEMENTED:
      return new FedsynthError("unavailable", `${where} does not serve grpc.health.v1`, { hint: "is --address a fedsynth coordinator?" });
    default: {
      // grpc-js details end in an empty "Resolution note:" and may carry OpenSSL's multi-line error text.
      const detail = (err.details || err.message).replace(/\s*Resolution note:\s*$/, "").replace(/\s+/g, " ").trim();
      const plaintextPeer = /wrong version number|packet length too long|http request/i.test(detail);
      const tls = /certificate|ssl|tls|handshake|self.signed|altname|pinned/i.test(detail);
      return new FedsynthError("unavailable", `cannot reach the ${where}: ${detail}`, {
        hint: plaintextPeer
          ? "it answered in plaintext: a --health-listen port takes --insecure, not --ca"
          : tls
          ? "the TLS handshake failed: --ca must be the consortium's CA, and --address (or --tls-server-name) one of the names in the coordinator's certificate"
          : opts.insecure
            ? "--insecure only works on the coordinator's plaintext --health-listen port; its --listen port needs --ca"
            : "is the coordinator running, and is --address its --listen address?",
      });
    }
  }
}

interface AgentStatus {
  site?: string;
  coordinator?: string;
  connected?: boolean;
  lastError?: string;
  updatedAt?: string;
}

/** The site check, on the files the agent writes: DATA_DIR/status.json and the data directory's LOCK (its pid). */
export function checkSite(opts: { dataDir: string; maxAgeSeconds: number; requireConnected: boolean; now?: number }): string {
  const { dataDir } = opts;
  const unhealthy = (message: string, hint?: string) => new FedsynthError("unavailable", message, { hint });
  if (!existsSync(dataDir) || !statSync(dataDir).isDirectory()) {
    throw new FedsynthError("not-found", `the agent's data directory ${dataDir} does not exist`, { hint: "pass the --data-dir that fedsynth site start was given" });
  }
  const statusPath = join(dataDir, "status.json");
  if (!existsSync(statusPath)) {
    throw new FedsynthError("not-found", `no site agent status in ${dataDir}: status.json is missing`, {
      hint: "the agent writes it as soon as it starts: it has never run with this --data-dir (or is still enrolling, or this is not its data directory)",
    });
  }
  let status: AgentStatus;
  try {
    status = JSON.parse(readFileSync(statusPath, "utf8")) as AgentStatus;
  } catch (err) {
    throw unhealthy(`${statusPath} is not valid JSON: ${(err as Error).message}`, "the agent rewrites it whole on every change; if this persists, restart the agent");
  }
  const name = `site ${status.site ?? "(unnamed)"}`;
  const lastError = status.lastError ? `; its last error: ${status.lastError}` : "";

  const lockPath = join(dataDir, "LOCK");
  const pidText = existsSync(lockPath) ? readFileSync(lockPath, "utf8").trim() : undefined;
  if (pidText === undefined) {
    throw unhealthy(`${name} is not running: ${lockPath} is missing (a running agent holds it)${lastError}`, "start it with fedsynth site start ... --data-dir (this directory), or see why it stopped in its log");
  }
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || !isAlive(pid)) {
    throw unhealthy(`${name} is not running: the process ${JSON.stringify(pidText)} named in ${lockPath} is gone (it crashed or was killed)${lastError}`,
      "restart it, and look in its log for why it stopped");
  }

  const updated = Date.parse(status.updatedAt ?? "");
  if (!Number.isFinite(updated)) throw unhealthy(`${statusPath} has no valid updatedAt`, "is this file from a fedsynth site agent?");
  const ageSeconds = Math.max(0, Math.round(((opts.now ?? Date.now()) - updated) / 1000));
  if (ageSeconds > opts.maxAgeSeconds) {
    throw unhealthy(`${name} (pid ${pid}) has not updated ${statusPath} for ${ageSeconds} s, more than --max-age ${opts.maxAgeSeconds} s: it may be hung`,
      "see its log; restart it if it does not recover");
  }
  const coordinator = status.coordinator ?? "the coordinator";
  if (!status.connected && opts.requireConnected) {
    throw unhealthy(`${name} (pid ${pid}) is running but not connected to ${coordinator}${lastError}`, "it keeps retrying by itself; check the network path to the coordinator and the coordinator itself");
  }
  const connection = status.connected ? `connected to ${coordinator}` : `not connected to ${coordinator}, retrying${lastError}`;
  return `${name}: running (pid ${pid}), ${connection}, status updated ${ageSeconds} s ago`;
}

