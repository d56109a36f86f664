/** `fedsynth coordinator start`: the coordinator process. */
import type { Command } from "commander";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { openSqliteStore } from "../../coordinator/store/sqlite-store.js";
import { Coordinator } from "../../coordinator/coordinator.js";
import { startCoordinatorServer } from "../../coordinator/grpc/server.js";
import { createLogger } from "../../shared/telemetry/log.js";
import { lockDataDir } from "../../shared/util/dir-lock.js";

export function registerCoordinatorCommands(program: Command): void {
  const coordinator = program.command("coordinator").description("run the consortium's coordinator");
  coordinator
    .command("start")
    .description("start a coordinator: studies, rounds and the pooled models, stored under --data-dir")
    .requiredOption("--data-dir <dir>", "where the coordinator keeps its state (a SQLite store)")
    .option("--listen <host:port>", "address to serve gRPC on (port 0: any free port)", "127.0.0.1:7070")
    .option("--insecure", "serve plaintext gRPC (development only; required until TLS is configured)", false)
    .addHelpText("after", "\nPrints 'fedsynth coordinator listening on HOST:PORT' once it serves, and writes the address to DATA_DIR/coordinator.addr.")
    .action(async (opts: { dataDir: string; listen: string; insecure: boolean }) => {
      const log = createLogger("coordinator");
      const dataDir = resolve(opts.dataDir);
      mkdirSync(dataDir, { recursive: true });
      const lock = lockDataDir(dataDir, "coordinator");
      const store = openSqliteStore(dataDir);
      const core = new Coordinator({ store, log });
      const server = await startCoordinatorServer({ coordinator: core, listen: opts.listen, insecure: opts.insecure, log });
      core.start();
      if (opts.insecure) log.warn("serving PLAINTEXT gRPC (--insecure): use only on a trusted network for development");
      writeFileSync(join(dataDir, "coordinator.addr"), server.address + "\n");
      process.stdout.write(`fedsynth coordinator listening on ${server.address}\n`);
      log.info("coordinator started", { data_dir: dataDir, address: server.address });
      await new Promise<void>((resolveStop) => {
        const stop = async (signal: string) => {
          log.info("shutting down", { signal });
          core.stop();
          await server.shutdown();
          store.close();
          lock.release();
          resolveStop();
        };
        process.once("SIGINT", () => void stop("SIGINT"));
        process.once("SIGTERM", () => void stop("SIGTERM"));
      });
    });
}
