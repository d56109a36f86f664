/** `fedsynth coordinator init|start` and `fedsynth operator issue`: the coordinator process and its consortium PKI. */
import type { Command } from "commander";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { isPostgresUrl, openPostgresStore, openSqliteStore } from "../../coordinator/store/sql-store.js";
import { redact } from "../../coordinator/store/postgres-driver.js";
import { DEFAULT_LEASE_SECONDS, ReplicaLease } from "../../coordinator/replica.js";
import { Coordinator, DEFAULT_SECURE_PHASE_TIMEOUT_SECONDS } from "../../coordinator/coordinator.js";
import { coordinatorHealth, startCoordinatorServer } from "../../coordinator/grpc/server.js";
import { checkHealthListen, startHealthServer } from "../../coordinator/grpc/health-server.js";
import { createLogger } from "../../shared/telemetry/log.js";
import { shutdownTelemetry, startTelemetry } from "../../shared/telemetry/otel.js";
import { lockDataDir } from "../../shared/util/dir-lock.js";
import { requireLoopbackForPlaintext } from "../../shared/transport/loopback.js";
import { FedsynthError } from "../../shared/errors.js";
import { certificateIssuer, hasConsortium, initConsortium, loadConsortium, writeOperatorCredentials } from "../../coordinator/consortium.js";
import { collect, parsePositive } from "../options.js";

export function registerCoordinatorCommands(program: Command): void {
  const coordinator = program.command("coordinator").description("run the consortium's coordinator");
  coordinator
    .command("init")
    .description("create the consortium CA, the coordinator's certificate and the first operator's credentials under --data-dir")
    .requiredOption("--data-dir <dir>", "the coordinator's data directory (the PKI goes to DIR/pki, the operator's credentials to DIR/operator)")
    .option("--name <name>", "the consortium's name, written into the CA certificate", "fedsynth consortium")
    .option("--hostname <name>", "a DNS name sites reach the coordinator by (repeat; localhost and this host's name are always included)", collect, [])
    .option("--ip <address>", "an IP address sites reach the coordinator by (repeat; 127.0.0.1 and ::1 are always included)", collect, [])
    .action(async (opts: { dataDir: string; name: string; hostname: string[]; ip: string[] }) => {
      const dataDir = resolve(opts.dataDir);
      mkdirSync(dataDir, { recursive: true });
      const made = await initConsortium(dataDir, { name: opts.name, hostnames: opts.hostname, ips: opts.ip });
      process.stdout.write(
        `consortium CA created in ${join(dataDir, "pki")} (keep ca-key.pem secret and backed up)\n` +
        `CA fingerprint: ${made.caFingerprint}\n` +
        `coordinator certificate for: ${made.names.join(", ")}\n` +
        `operator credentials: ${made.operatorDir} (use --credentials ${made.operatorDir} with study, site and model commands)\n` +
        `next: fedsynth coordinator start --data-dir ${dataDir} --listen HOST:PORT\n`);
    });
  coordinator
    .command("start")
    .description("start a coordinator: studies, rounds and the pooled models, stored under --data-dir (or in a shared PostgreSQL database)")
    .requiredOption("--data-dir <dir>", "where the coordinator keeps its PKI and, unless --store says otherwise, its state (a SQLite store)")
    .option("--listen <host:port>", "address to serve gRPC on (port 0: any free port)", "127.0.0.1:7070")
    .option("--insecure", "serve plaintext gRPC without identities (development on loopback only)", false)
    .option("--secure-phase-timeout <seconds>", "how long a secure-aggregation phase waits for a connected site that has not answered", parsePositive("--secure-phase-timeout"), DEFAULT_SECURE_PHASE_TIMEOUT_SECONDS)
    .option("--store <url>", "postgres://USER:PASSWORD@HOST:PORT/DATABASE to keep the state in PostgreSQL, shared by several replicas of which one drives at a time (default: SQLite under --data-dir; also FEDSYNTH_STORE)")
    .option("--replica <name>", "this replica's name in the lease and the logs (with a PostgreSQL store; default: the host name)")
    .option("--health-listen <host:port>", "also serve grpc.health.v1 alone, in plaintext, on this address (for probes that cannot speak TLS, such as Kubernetes' grpc probes); it mirrors the main port's status")
    .option("--lease-seconds <seconds>", "how long the driving replica's lease lasts unrenewed: a standby takes over this long after the driver dies", parsePositive("--lease-seconds"), DEFAULT_LEASE_SECONDS)
    .addHelpText("after", `
Prints 'fedsynth coordinator listening on HOST:PORT' once it serves, and writes the address to DATA_DIR/coordinator.addr.

With a PostgreSQL --store, start the same command on several hosts (each with a copy of DATA_DIR/pki): one
takes the lease and serves; the others wait as standbys and start serving when the lease holder stops or
dies. Put the replicas behind one address (a Kubernetes Service, a TCP load balancer) that the sites dial.`)
    .action(async (opts: { dataDir: string; listen: string; insecure: boolean; securePhaseTimeout: number; store?: string; replica?: string; leaseSeconds: number; healthListen?: string }) => {
      const log = createLogger("coordinator");
      // OpenTelemetry only when the OTEL_* variables ask for it; before the Coordinator makes its instruments.
      await startTelemetry({ serviceName: "fedsynth-coordinator", role: "coordinator", attributes: opts.replica ? { "fedsynth.replica": opts.replica } : {} }, log);
      if (opts.healthListen !== undefined) checkHealthListen(opts.healthListen);
      const dataDir = resolve(opts.dataDir);
      mkdirSync(dataDir, { recursive: true });
      if (opts.insecure) requireLoopbackForPlaintext(opts.listen, "--listen");
      else if (!hasConsortium(dataDir)) {
        throw new FedsynthError("failed-precondition", `${dataDir} has no consortium CA`, {
          hint: `create it once with: fedsynth coordinator init --data-dir ${dataDir} --hostname NAME-SITES-DIAL; for development on this machine only, pass --insecure`,
        });
      }
      const storeUrl = opts.store ?? (process.env.FEDSYNTH_STORE || undefined);
      if (storeUrl !== undefined && !isPostgresUrl(storeUrl)) {
        throw new FedsynthError("invalid-argument", `--store ${redact(storeUrl)} is not a postgres:// URL`, {
          hint: "give postgres://USER:PASSWORD@HOST:PORT/DATABASE, or leave --store out for the embedded SQLite store under --data-dir",
        });
      }
      const lock = lockDataDir(dataDir, "coordinator");
      const consortium = opts.insecure ? undefined : loadConsortium(dataDir);
      const store = isPostgresUrl(storeUrl) ? openPostgresStore(storeUrl, { applicationName: `fedsynth-coordinator ${opts.replica ?? ""}`.trim() }) : openSqliteStore(dataDir);
      let running: { stop: () => Promise<void> } | undefined;
      const stopped = new Promise<void>((resolveStop) => {
        const stop = async (signal: string) => {
          log.info("shutting down", { signal });
          await running?.stop();
          lease?.release();
          await shutdownTelemetry(); // flushes spans and metrics while the store can still be read
          store.close();
          lock.release();
          resolveStop();
        };
        process.once("SIGINT", () => void stop("SIGINT"));
        process.once("SIGTERM", () => void stop("SIGTERM"));
      });

      // The health-only port answers from the start: a standby is alive (LIVENESS_SERVICE) but not serving ("").
      const healthStatus = coordinatorHealth();
      const health = opts.healthListen === undefined ? undefined : await startHealthServer({ listen: opts.healthListen, health: healthStatus });
      if (health) process.stdout.write(`fedsynth coordinator health (plaintext, grpc.health.v1 only) on ${health.address}\n`);

      // With a shared database, wait for the lease before touching anything a driver owns (the ledger, rounds).
      const lease = isPostgresUrl(storeUrl) ? new ReplicaLease({ store, log, replica: opts.replica, leaseSeconds: opts.leaseSeconds }) : undefined;
      if (lease) {
        running = { stop: async () => health?.shutdown() };
        log.info("PostgreSQL store; waiting to drive", { store: redact(storeUrl!), holder: lease.holder });
        const held = await Promise.race([lease.acquire().catch(() => undefined), stopped.then(() => undefined)]);
        if (!held) return;
        const lost = (why: string) => {
          log.error("this replica lost the lease; stopping at once so that only the lease holder drives", { why });
          setImmediate(() => process.exit(1));
        };
        store.fenceWith(held, lost);
        lease.keepRenewing(lost);
      }

      const core = new Coordinator({ store, log, issuer: consortium && certificateIssuer(consortium), securePhaseTimeoutSeconds: opts.securePhaseTimeout });
      const server = await startCoordinatorServer({
        coordinator: core, listen: opts.listen, log, health: healthStatus,
        tls: consortium && { caPem: consortium.ca.certPem, certPem: consortium.serverCertPem, keyPem: consortium.serverKeyPem },
      });
      core.start();
      running = {
        stop: async () => {
          core.stop();
          await server.shutdown(); // NOT_SERVING on both ports from here on
          await health?.shutdown();
        },
      };
      if (opts.insecure) log.warn("serving PLAINTEXT gRPC with no identities (--insecure): development on this machine only");
      writeFileSync(join(dataDir, "coordinator.addr"), server.address + "\n");
      process.stdout.write(`fedsynth coordinator listening on ${server.address}\n`);
      log.info("coordinator started", { data_dir: dataDir, address: server.address, store: store.path });
      await stopped;
    });
}

export function registerOperatorCommands(program: Command): void {
  const operator = program.command("operator").description("credentials for consortium operators and auditors");
  operator
    .command("issue")
    .description("issue credentials for another operator or an auditor, signed by the consortium CA in --data-dir")
    .requiredOption("--data-dir <dir>", "the coordinator's data directory (it holds the CA)")
    .requiredOption("--name <name>", "who the credentials are for")
    .option("--role <role>", "operator (may change studies and sites) or auditor (read-only)", "operator")
    .requiredOption("--out <dir>", "where to write ca.pem, cert.pem and key.pem (hand the directory to that person)")
    .action(async (opts: { dataDir: string; name: string; role: string; out: string }) => {
      if (opts.role !== "operator" && opts.role !== "auditor") {
        throw new FedsynthError("invalid-argument", `--role must be operator or auditor, got ${JSON.stringify(opts.role)}`);
      }
      const consortium = loadConsortium(resolve(opts.dataDir));
      const fingerprint = await writeOperatorCredentials(consortium.ca, { name: opts.name, role: opts.role }, resolve(opts.out));
      process.stdout.write(`${opts.role} credentials for ${opts.name} written to ${resolve(opts.out)} (certificate ${fingerprint})\n`);
    });
}
