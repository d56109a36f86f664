/**
 * The agent's own durable record: every charge it accepted (its copy of its ledger entries) and every
 * update it released, written in one transaction before the update leaves the site. A task that comes
 * again is answered from here, never recomputed, so a retry can never spend the budget twice.
 */
import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Mechanism } from "../shared/privacy/mechanism.js";
import { FedsynthError } from "../shared/errors.js";
import { canonicalize, type SignedCharge } from "../shared/ledger/index.js";

export interface LocalCharge {
  taskId: string;
  studyId: string;
  studyName: string;
  round: number;
  mechanisms: Mechanism[];
  delta: number;
  epsilonTask: number;
  epsilonStudyTotal: number;
  updateSha256: string;
  at: number;
}

export interface LocalStudy {
  studyId: string;
  name: string;
  epsilon: number;
  delta: number;
  rounds: number;
  state: "accepted" | "completed" | "failed" | "cancelled";
  message: string;
}

type Row = Record<string, any>;

export class LocalStore {
  private db: Database.Database;

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true });
    const path = join(dataDir, "site.sqlite");
    try {
      this.db = new Database(path);
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("synchronous = FULL");
    } catch (err) {
      throw new FedsynthError("failed-precondition", `cannot open the site store ${path}: ${(err as Error).message}`, {
        hint: "check that --data-dir is writable and that no other agent uses it",
      });
    }
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS studies (study_id TEXT PRIMARY KEY, name TEXT NOT NULL, epsilon REAL NOT NULL, delta REAL NOT NULL,
        rounds INTEGER NOT NULL, state TEXT NOT NULL, message TEXT NOT NULL DEFAULT '', accepted_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS charges (task_id TEXT PRIMARY KEY, study_id TEXT NOT NULL, study_name TEXT NOT NULL, round INTEGER NOT NULL,
        mechanisms_json TEXT NOT NULL, delta REAL NOT NULL, epsilon_task REAL NOT NULL, epsilon_study_total REAL NOT NULL,
        update_sha256 TEXT NOT NULL, at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS results (task_id TEXT PRIMARY KEY, update_blob BLOB NOT NULL, sha256 TEXT NOT NULL, acknowledged INTEGER NOT NULL DEFAULT 0);
      -- The site's own copy of its ledger entries: each charge statement exactly as signed, and the signature.
      CREATE TABLE IF NOT EXISTS signed_charges (task_id TEXT PRIMARY KEY, statement_json TEXT NOT NULL, signature TEXT NOT NULL);
    `);
  }

  close(): void {
    this.db.close();
  }

  getStudy(studyId: string): LocalStudy | undefined {
    const r = this.db.prepare("SELECT * FROM studies WHERE study_id = ?").get(studyId) as Row | undefined;
    return r && { studyId: r.study_id, name: r.name, epsilon: r.epsilon, delta: r.delta, rounds: r.rounds, state: r.state, message: r.message };
  }

  listStudies(): LocalStudy[] {
    return (this.db.prepare("SELECT * FROM studies ORDER BY accepted_at").all() as Row[]).map((r) => ({
      studyId: r.study_id, name: r.name, epsilon: r.epsilon, delta: r.delta, rounds: r.rounds, state: r.state, message: r.message,
    }));
  }

  acceptStudy(s: Omit<LocalStudy, "state" | "message">, now: number): void {
    this.db.prepare("INSERT OR IGNORE INTO studies (study_id, name, epsilon, delta, rounds, state, message, accepted_at) VALUES (?, ?, ?, ?, ?, 'accepted', '', ?)")
      .run(s.studyId, s.name, s.epsilon, s.delta, s.rounds, now);
  }

  closeStudy(studyId: string, state: LocalStudy["state"], message: string): void {
    this.db.prepare("UPDATE studies SET state = ?, message = ? WHERE study_id = ?").run(state, message, studyId);
  }

  /** Records the charge, its signed statement and the released update, atomically. */
  recordRelease(charge: LocalCharge, update: Uint8Array, signed?: SignedCharge): void {
    this.db.transaction(() => {
      if (signed) {
        this.db.prepare("INSERT INTO signed_charges (task_id, statement_json, signature) VALUES (?, ?, ?)").run(charge.taskId, canonicalize(signed.charge), signed.siteSignature);
      }
      this.db.prepare(`INSERT INTO charges (task_id, study_id, study_name, round, mechanisms_json, delta, epsilon_task, epsilon_study_total, update_sha256, at)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
        .run(charge.taskId, charge.studyId, charge.studyName, charge.round, JSON.stringify(charge.mechanisms), charge.delta,
          charge.epsilonTask, charge.epsilonStudyTotal, charge.updateSha256, charge.at);
      this.db.prepare("INSERT INTO results (task_id, update_blob, sha256) VALUES (?, ?, ?)").run(charge.taskId, Buffer.from(update), charge.updateSha256);
    })();
  }

  markAcknowledged(taskId: string): void {
    this.db.prepare("UPDATE results SET acknowledged = 1 WHERE task_id = ?").run(taskId);
  }

  getRelease(taskId: string): { charge: LocalCharge; update: Uint8Array; signature?: string } | undefined {
    const c = this.db.prepare("SELECT * FROM charges WHERE task_id = ?").get(taskId) as Row | undefined;
    const r = this.db.prepare("SELECT * FROM results WHERE task_id = ?").get(taskId) as Row | undefined;
    if (!c || !r) return undefined;
    const s = this.db.prepare("SELECT signature FROM signed_charges WHERE task_id = ?").get(taskId) as Row | undefined;
    return { charge: chargeFromRow(c), update: new Uint8Array(r.update_blob), ...(s ? { signature: s.signature } : {}) };
  }

  /** Every charge statement this site signed, oldest first: what it can hold the coordinator's ledger to. */
  signedCharges(): SignedCharge[] {
    const rows = this.db.prepare("SELECT s.* FROM signed_charges s JOIN charges c ON c.task_id = s.task_id ORDER BY c.at, c.round").all() as Row[];
    return rows.map((r) => ({ charge: JSON.parse(r.statement_json), siteSignature: r.signature }));
  }

  charges(filter: { studyId?: string } = {}): LocalCharge[] {
    const rows = filter.studyId
      ? this.db.prepare("SELECT * FROM charges WHERE study_id = ? ORDER BY at, round").all(filter.studyId)
      : this.db.prepare("SELECT * FROM charges ORDER BY at, round").all();
    return (rows as Row[]).map(chargeFromRow);
  }
}

function chargeFromRow(r: Row): LocalCharge {
  return {
    taskId: r.task_id, studyId: r.study_id, studyName: r.study_name, round: r.round, mechanisms: JSON.parse(r.mechanisms_json),
    delta: r.delta, epsilonTask: r.epsilon_task, epsilonStudyTotal: r.epsilon_study_total, updateSha256: r.update_sha256, at: r.at,
  };
}
