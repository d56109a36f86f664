/**
 * PostgreSQL behind SqlDriver, for coordinators that share one database (replicas with a lease). The
 * store interface is synchronous, and node-postgres is not: a worker thread holds the connection and the
 * coordinator's thread waits on each statement (synckit). A statement's round trip on a LAN is well under
 * a millisecond, and the coordinator writes a few rows per site per round, so the wait costs little and
 * keeps every state change and its ledger entry in one transaction, exactly as with SQLite.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createSyncFn } from "synckit";
import { FedsynthError } from "../../shared/errors.js";
import { numberedPlaceholders, type Row, type SqlDriver, type SqlValue } from "./sql-driver.js";
import type { WorkerReply, WorkerRequest } from "./postgres-worker.js";

export class PostgresDriver implements SqlDriver {
  readonly dialect = "postgres" as const;
  readonly nowMs = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";
  readonly location: string;
  private readonly call: (req: WorkerRequest) => WorkerReply;
  private depth = 0;

  constructor(url: string, opts: { applicationName?: string } = {}) {
    this.location = redact(url);
    this.call = createSyncFn(workerPath(), { timeout: 60_000 }) as (req: WorkerRequest) => WorkerReply;
    const r = this.call({ op: "connect", url, applicationName: opts.applicationName ?? "fedsynth-coordinator" });
    if (!r.ok) {
      throw new FedsynthError("unavailable", `cannot connect to the PostgreSQL store ${this.location}: ${r.message}`, {
        hint: "check the URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE), that the server runs and accepts this user, and that the database exists",
      });
    }
  }

  run(sql: string, params: SqlValue[] = []): { changes: number } {
    return { changes: this.query(sql, params).rowCount };
  }

  get(sql: string, params: SqlValue[] = []): Row | undefined {
    return this.query(sql, params).rows[0];
  }

  all(sql: string, params: SqlValue[] = []): Row[] {
    return this.query(sql, params).rows;
  }

  exec(sql: string): void {
    this.check(this.call({ op: "exec", sql }), sql);
  }

  get inTransaction(): boolean {
    return this.depth > 0;
  }

  transaction<T>(fn: () => T): T {
    const savepoint = `sp${this.depth}`;
    this.exec(this.depth === 0 ? "BEGIN" : `SAVEPOINT ${savepoint}`);
    this.depth++;
    try {
      const out = fn();
      this.depth--;
      this.exec(this.depth === 0 ? "COMMIT" : `RELEASE SAVEPOINT ${savepoint}`);
      return out;
    } catch (err) {
      this.depth--;
      try {
        this.exec(this.depth === 0 ? "ROLLBACK" : `ROLLBACK TO SAVEPOINT ${savepoint}`);
      } catch {
        // The connection is gone: the server has rolled back already. The first error is the one to report.
      }
      throw err;
    }
  }

  close(): void {
    this.call({ op: "close" });
  }

  private query(sql: string, params: SqlValue[]): { rows: Row[]; rowCount: number } {
    const r = this.check(this.call({ op: "query", sql: numberedPlaceholders(sql), params }), sql);
    return { rows: r.rows as Row[], rowCount: r.rowCount };
  }

  private check(r: WorkerReply, sql: string): Extract<WorkerReply, { ok: true }> {
    if (r.ok) return r;
    const statement = sql.replace(/\s+/g, " ").trim().slice(0, 80);
    throw new FedsynthError(r.code === "40001" || r.code === "40P01" ? "unavailable" : "internal",
      `the PostgreSQL store ${this.location} failed on "${statement}": ${r.message}`, {
        hint: "check the database server's log; the coordinator's state is as of its last committed transaction",
      });
  }
}

/** The compiled worker beside this module, or (when tests run the TypeScript sources) the one in dist/. */
function workerPath(): string {
  const sibling = fileURLToPath(new URL("./postgres-worker.js", import.meta.url));
  if (existsSync(sibling)) return sibling;
  const built = fileURLToPath(new URL("../../dist/coordinator/store/postgres-worker.js", import.meta.url));
  if (existsSync(built)) return built;
  throw new FedsynthError("internal", `the PostgreSQL worker is missing (looked for ${sibling} and ${built})`, { hint: "run npm run build" });
}

/** postgres://user:secret@host/db → postgres://user:***@host/db */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(an unparseable URL)";
  }
}
