/** better-sqlite3 behind SqlDriver: one file, WAL journal, full synchronous commits, cached statements. */
import Database from "better-sqlite3";
import { FedsynthError } from "../../shared/errors.js";
import type { Row, SqlDriver, SqlValue } from "./sql-driver.js";

export class SqliteDriver implements SqlDriver {
  readonly dialect = "sqlite" as const;
  readonly nowMs = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();

  constructor(readonly location: string) {
    try {
      this.db = new Database(location);
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("synchronous = FULL");
      this.db.pragma("foreign_keys = ON");
      this.db.pragma("busy_timeout = 5000");
    } catch (err) {
      throw new FedsynthError("failed-precondition", `cannot open the coordinator store ${location}: ${(err as Error).message}`, {
        hint: "check that the data directory is writable and not used by another coordinator",
        cause: err,
      });
    }
  }

  run(sql: string, params: SqlValue[] = []): { changes: number } {
    return { changes: this.statement(sql).run(...params.map(bind)).changes };
  }

  get(sql: string, params: SqlValue[] = []): Row | undefined {
    return this.statement(sql).get(...params.map(bind)) as Row | undefined;
  }

  all(sql: string, params: SqlValue[] = []): Row[] {
    return this.statement(sql).all(...params.map(bind)) as Row[];
  }

  exec(sql: string): void {
    this.db.exec(sql);
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  get inTransaction(): boolean {
    return this.db.inTransaction;
  }

  close(): void {
    this.db.close();
  }

  private statement(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }
}

/** better-sqlite3 binds Buffers, not plain Uint8Arrays, as blobs. */
function bind(v: SqlValue): unknown {
  return v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v;
}
