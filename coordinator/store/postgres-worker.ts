/**
 * The worker thread behind PostgresDriver: it owns one connection (node-postgres) and answers one request
 * at a time, while the coordinator's thread waits for it (synckit). Errors come back as values, so the
 * driver can name the statement and the database that failed.
 */
import { runAsWorker } from "synckit";
import pg from "pg";

// BIGINT columns hold epoch milliseconds and sequence numbers: far below 2^53.
pg.types.setTypeParser(20, (v: string) => Number(v));

export type WorkerRequest =
  | { op: "connect"; url: string; applicationName: string }
  | { op: "query"; sql: string; params: unknown[] }
  | { op: "exec"; sql: string }
  | { op: "close" };

export type WorkerReply =
  | { ok: true; rows: Record<string, unknown>[]; rowCount: number }
  | { ok: false; message: string; code?: string };

let client: pg.Client | undefined;
let broken: string | undefined;

runAsWorker(async (req: WorkerRequest): Promise<WorkerReply> => {
  try {
    switch (req.op) {
      case "connect": {
        client = new pg.Client({
          connectionString: req.url, application_name: req.applicationName,
          connectionTimeoutMillis: 10_000, statement_timeout: 30_000, keepAlive: true,
        });
        // A dropped connection surfaces as an error on the next query; without this handler it would crash the worker.
        client.on("error", (err) => { broken = err.message; });
        await client.connect();
        return { ok: true, rows: [], rowCount: 0 };
      }
      case "query": {
        const c = ready();
        const r = await c.query(req.sql, req.params.map(bind));
        return { ok: true, rows: r.rows.map(plainRow), rowCount: r.rowCount ?? 0 };
      }
      case "exec": {
        await ready().query(req.sql);
        return { ok: true, rows: [], rowCount: 0 };
      }
      case "close":
        await client?.end().catch(() => undefined);
        client = undefined;
        return { ok: true, rows: [], rowCount: 0 };
    }
  } catch (err) {
    const e = err as Error & { code?: string };
    return { ok: false, message: e.message, ...(e.code ? { code: e.code } : {}) };
  }
});

function ready(): pg.Client {
  if (!client) throw new Error("not connected");
  if (broken) throw new Error(`the connection to PostgreSQL was lost: ${broken}`);
  return client;
}

function bind(v: unknown): unknown {
  return v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v;
}

/** Buffers cross to the coordinator's thread as plain Uint8Arrays. */
function plainRow(row: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(row)) if (Buffer.isBuffer(v)) row[k] = new Uint8Array(v);
  return row;
}
