/**
 * A throwaway PostgreSQL server for tests: initdb into a temporary directory, started on a free loopback
 * port, trust authentication, stopped (and its directory removed) by stop(). PostgreSQL refuses to run
 * as root, so as root it runs as the `postgres` system user that Debian's package creates.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.js";

export interface TestPostgres {
  url: string;
  /** A URL for another database on the same server (created on demand). */
  database(name: string): string;
  stop(): void;
}

const BIN_DIRS = ["/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin", "/usr/local/bin", "/usr/bin"];

function binary(name: string): string | undefined {
  for (const dir of BIN_DIRS) if (existsSync(join(dir, name))) return join(dir, name);
  return undefined;
}

/**
 * Why PostgreSQL cannot run here, or undefined when it can. Under CI (which installs it) a missing
 * server is an error, not a reason to skip.
 */
export function postgresUnavailable(): string | undefined {
  let why: string | undefined;
  if (!binary("initdb") || !binary("pg_ctl")) why = "PostgreSQL's initdb/pg_ctl are not installed (Debian: apt-get install postgresql)";
  else if (process.getuid?.() === 0 && spawnSync("id", ["-u", "postgres"]).status !== 0) why = "running as root with no 'postgres' user to run the server as";
  if (why && process.env.CI) throw new Error(`CI must run the PostgreSQL tests, but ${why}; .ci/run installs it`);
  return why;
}

export async function startPostgres(): Promise<TestPostgres> {
  const why = postgresUnavailable();
  if (why) throw new Error(why);
  const dir = mkdtempSync(join(tmpdir(), "fedsynth-pg-"));
  chmodSync(dir, 0o777);
  const data = join(dir, "data");
  const asRoot = process.getuid?.() === 0;
  const run = (bin: string, args: string[]) => {
    const cmd = binary(bin)!;
    if (asRoot) execFileSync("runuser", ["-u", "postgres", "--", cmd, ...args], { stdio: "pipe", cwd: dir });
    else execFileSync(cmd, args, { stdio: "pipe", cwd: dir });
  };
  run("initdb", ["-D", data, "--auth=trust", "--username=fedsynth", "--no-sync", "-E", "UTF8"]);
  const port = await freePort();
  run("pg_ctl", ["-D", data, "-l", join(dir, "server.log"), "-w", "-t", "60", "start",
    "-o", `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${dir} -c fsync=off -c max_connections=50`]);
  const base = `postgres://fedsynth@127.0.0.1:${port}`;
  const created = new Set<string>(["postgres"]);
  const psql = binary("psql");
  return {
    url: `${base}/postgres`,
    database(name: string): string {
      if (!created.has(name)) {
        if (!psql) throw new Error("psql is not installed");
        execFileSync(psql, ["-h", "127.0.0.1", "-p", String(port), "-U", "fedsynth", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", `CREATE DATABASE "${name}"`], { stdio: "pipe" });
        created.add(name);
      }
      return `${base}/${name}`;
    },
    stop() {
      try {
        run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
