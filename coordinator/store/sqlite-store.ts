/**
 * SQLite behind the CoordinatorStore interface: one file under the data directory, WAL journal, full
 * synchronous commits (an acknowledged submission survives a power cut), versioned migrations.
 */
import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { FedsynthError } from "../../shared/errors.js";
import { MIGRATIONS } from "./migrations.js";
import type { CoordinatorStore, StudyPatch } from "./store.js";
import type {
  EnrollmentTokenRecord, LedgerKind, LedgerRecord, ModelRecord, ParticipantState, RoundRecord, RoundState, SiteIdentity, SiteRecord, StudyRecord,
  StudyState, SubmissionRecord, TaskRecord, TaskState,
} from "./records.js";
import { randomUUID } from "node:crypto";

type Row = Record<string, any>;

export function openSqliteStore(dataDir: string): SqliteStore {
  mkdirSync(dataDir, { recursive: true });
  return new SqliteStore(join(dataDir, "coordinator.sqlite"));
}

export class SqliteStore implements CoordinatorStore {
  private db: Database.Database;

  constructor(readonly path: string) {
    try {
      this.db = new Database(path);
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("synchronous = FULL");
      this.db.pragma("foreign_keys = ON");
      this.db.pragma("busy_timeout = 5000");
    } catch (err) {
      throw new FedsynthError("failed-precondition", `cannot open the coordinator store ${path}: ${(err as Error).message}`, {
        hint: "check that the data directory is writable and not used by another coordinator",
        cause: err,
      });
    }
    this.migrate();
  }

  private migrate(): void {
    this.db.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at INTEGER NOT NULL)");
    const current = (this.db.prepare("SELECT MAX(version) AS v FROM schema_migrations").get() as Row).v ?? 0;
    const latest = MIGRATIONS[MIGRATIONS.length - 1].version;
    if (current > latest) {
      throw new FedsynthError("failed-precondition", `the store ${this.path} is at schema version ${current}, newer than this coordinator knows (${latest})`, {
        hint: "upgrade fedsynth, or point --data-dir at a store written by this version",
      });
    }
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      this.db.transaction(() => {
        this.db.exec(m.sql);
        this.db.prepare("INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)").run(m.version, m.description, Date.now());
      })();
    }
  }

  schemaVersion(): number {
    return (this.db.prepare("SELECT MAX(version) AS v FROM schema_migrations").get() as Row).v ?? 0;
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  close(): void {
    this.db.close();
  }

  upsertSite(name: string, agentVersion: string, now: number): SiteRecord {
    const existing = this.getSite(name);
    if (existing) {
      this.db.prepare("UPDATE sites SET agent_version = ?, last_contact_at = ? WHERE name = ?").run(agentVersion, now, name);
      return { ...existing, agentVersion, lastContactAt: now };
    }
    const site: SiteRecord = {
      siteId: `site-${randomUUID().slice(0, 8)}`, name, enrolledAt: now, lastContactAt: now, agentVersion,
      certSerial: null, certFingerprint: null, signingPublicKey: null, revokedAt: null, revokedReason: "",
    };
    this.db.prepare("INSERT INTO sites (site_id, name, enrolled_at, last_contact_at, agent_version) VALUES (?, ?, ?, ?, ?)")
      .run(site.siteId, site.name, site.enrolledAt, site.lastContactAt, site.agentVersion);
    return site;
  }

  setSiteIdentity(name: string, identity: SiteIdentity, agentVersion: string, now: number): SiteRecord {
    this.upsertSite(name, agentVersion, now);
    this.db.prepare(`UPDATE sites SET cert_serial = ?, cert_fingerprint = ?, signing_public_key = ?, revoked_at = NULL, revoked_reason = '',
        enrolled_at = ? WHERE name = ?`)
      .run(identity.certSerial, identity.certFingerprint, identity.signingPublicKey, now, name);
    return this.getSite(name)!;
  }

  revokeSite(name: string, reason: string, now: number): void {
    this.db.prepare("UPDATE sites SET revoked_at = ?, revoked_reason = ? WHERE name = ?").run(now, reason, name);
  }

  insertEnrollmentToken(t: EnrollmentTokenRecord): void {
    this.db.prepare("INSERT INTO enrollment_tokens (token_hash, site_name, issued_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?)")
      .run(t.tokenHash, t.siteName, t.issuedAt, t.expiresAt, t.usedAt);
  }

  getEnrollmentToken(tokenHash: string): EnrollmentTokenRecord | undefined {
    const r = this.db.prepare("SELECT * FROM enrollment_tokens WHERE token_hash = ?").get(tokenHash) as Row | undefined;
    return r && { tokenHash: r.token_hash, siteName: r.site_name, issuedAt: r.issued_at, expiresAt: r.expires_at, usedAt: r.used_at };
  }

  markEnrollmentTokenUsed(tokenHash: string, now: number): void {
    this.db.prepare("UPDATE enrollment_tokens SET used_at = ? WHERE token_hash = ?").run(now, tokenHash);
  }

  touchSite(name: string, now: number): void {
    this.db.prepare("UPDATE sites SET last_contact_at = ? WHERE name = ?").run(now, name);
  }

  getSite(name: string): SiteRecord | undefined {
    const row = this.db.prepare("SELECT * FROM sites WHERE name = ?").get(name) as Row | undefined;
    return row && siteFromRow(row);
  }

  listSites(): SiteRecord[] {
    return (this.db.prepare("SELECT * FROM sites ORDER BY name").all() as Row[]).map(siteFromRow);
  }

  appendChainEntry(seq: number, entryJson: string): void {
    this.db.prepare("INSERT INTO ledger_chain (seq, entry_json) VALUES (?, ?)").run(seq, entryJson);
  }

  listChainEntries(): string[] {
    return (this.db.prepare("SELECT entry_json FROM ledger_chain ORDER BY seq").all() as Row[]).map((r) => r.entry_json);
  }

  lastChainSeq(): number {
    const row = this.db.prepare("SELECT MAX(seq) AS seq FROM ledger_chain").get() as Row;
    return row.seq ?? -1;
  }

  getSecret(name: string): Uint8Array | undefined {
    const row = this.db.prepare("SELECT value FROM secrets WHERE name = ?").get(name) as Row | undefined;
    return row && new Uint8Array(row.value);
  }

  putSecret(name: string, value: Uint8Array): void {
    this.db.prepare("INSERT INTO secrets (name, value) VALUES (?, ?)").run(name, Buffer.from(value));
  }

  insertStudy(s: StudyRecord): void {
    this.db.prepare(`INSERT INTO studies (study_id, name, schema_json, engine, epsilon, delta, rounds, min_sites,
        round_deadline_seconds, engine_config_json, secure_threshold, state, status_message, completed_rounds, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(s.studyId, s.name, s.schemaJson, s.engine, s.epsilon, s.delta, s.rounds, s.minSites, s.roundDeadlineSeconds,
        JSON.stringify(s.engineConfig), s.secureThreshold, s.state, s.statusMessage, s.completedRounds, s.createdAt, s.updatedAt);
    const insert = this.db.prepare("INSERT INTO study_sites (study_id, site_name, position, state, message) VALUES (?, ?, ?, ?, ?)");
    s.participants.forEach((p, i) => insert.run(s.studyId, p.siteName, i, p.state, p.message));
  }

  getStudy(studyId: string): StudyRecord | undefined {
    const row = this.db.prepare("SELECT * FROM studies WHERE study_id = ?").get(studyId) as Row | undefined;
    return row && this.studyFromRow(row);
  }

  listStudies(): StudyRecord[] {
    return (this.db.prepare("SELECT * FROM studies ORDER BY created_at, study_id").all() as Row[]).map((r) => this.studyFromRow(r));
  }

  updateStudy(studyId: string, patch: StudyPatch, now: number): void {
    const s = this.getStudy(studyId);
    if (!s) throw new FedsynthError("not-found", `no study ${studyId}`);
    this.db.prepare("UPDATE studies SET state = ?, status_message = ?, completed_rounds = ?, invitation_deadline_at = ?, updated_at = ? WHERE study_id = ?")
      .run(patch.state ?? s.state, patch.statusMessage ?? s.statusMessage, patch.completedRounds ?? s.completedRounds,
        patch.invitationDeadlineAt ?? s.invitationDeadlineAt, now, studyId);
  }

  setParticipant(studyId: string, siteName: string, state: ParticipantState, message: string): void {
    this.db.prepare("UPDATE study_sites SET state = ?, message = ? WHERE study_id = ? AND site_name = ?").run(state, message, studyId, siteName);
  }

  private studyFromRow(r: Row): StudyRecord {
    const participants = (this.db.prepare("SELECT * FROM study_sites WHERE study_id = ? ORDER BY position").all(r.study_id) as Row[])
      .map((p) => ({ siteName: p.site_name, state: p.state as ParticipantState, message: p.message }));
    return {
      studyId: r.study_id, name: r.name, schemaJson: r.schema_json, engine: r.engine, epsilon: r.epsilon, delta: r.delta,
      rounds: r.rounds, minSites: r.min_sites, roundDeadlineSeconds: r.round_deadline_seconds,
      engineConfig: JSON.parse(r.engine_config_json), secureThreshold: r.secure_threshold ?? 0, state: r.state, statusMessage: r.status_message,
      completedRounds: r.completed_rounds, invitationDeadlineAt: r.invitation_deadline_at, createdAt: r.created_at, updatedAt: r.updated_at, participants,
    };
  }

  insertRound(r: RoundRecord): void {
    this.db.prepare(`INSERT INTO rounds (study_id, round, state, round_config_json, mechanisms_json, update_length, model_id,
        started_at, deadline_at, finished_at, session_nonce) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(r.studyId, r.round, r.state, JSON.stringify(r.roundConfig), JSON.stringify(r.mechanisms), r.updateLength, r.modelId,
        r.startedAt, r.deadlineAt, r.finishedAt, r.sessionNonce ? Buffer.from(r.sessionNonce).toString("base64") : null);
  }

  getRound(studyId: string, round: number): RoundRecord | undefined {
    const row = this.db.prepare("SELECT * FROM rounds WHERE study_id = ? AND round = ?").get(studyId, round) as Row | undefined;
    return row && roundFromRow(row);
  }

  listRounds(studyId: string): RoundRecord[] {
    return (this.db.prepare("SELECT * FROM rounds WHERE study_id = ? ORDER BY round").all(studyId) as Row[]).map(roundFromRow);
  }

  listRoundsInState(state: RoundState): RoundRecord[] {
    return (this.db.prepare("SELECT * FROM rounds WHERE state = ? ORDER BY started_at").all(state) as Row[]).map(roundFromRow);
  }

  finishRound(studyId: string, round: number, state: RoundState, now: number): void {
    this.db.prepare("UPDATE rounds SET state = ?, finished_at = ? WHERE study_id = ? AND round = ?").run(state, now, studyId, round);
  }

  setRoundSession(studyId: string, round: number, sessionNonce: Uint8Array): void {
    this.db.prepare("UPDATE rounds SET session_nonce = ? WHERE study_id = ? AND round = ?").run(Buffer.from(sessionNonce).toString("base64"), studyId, round);
  }

  extendRoundDeadline(studyId: string, round: number, deadlineAt: number): void {
    this.db.prepare("UPDATE rounds SET deadline_at = ? WHERE study_id = ? AND round = ?").run(deadlineAt, studyId, round);
  }

  insertTask(t: TaskRecord): void {
    this.db.prepare("INSERT INTO tasks (task_id, study_id, round, site_name, state, message, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .run(t.taskId, t.studyId, t.round, t.siteName, t.state, t.message, t.createdAt);
  }

  getTask(taskId: string): TaskRecord | undefined {
    const row = this.db.prepare("SELECT * FROM tasks WHERE task_id = ?").get(taskId) as Row | undefined;
    return row && taskFromRow(row);
  }

  listTasks(studyId: string, round: number): TaskRecord[] {
    return (this.db.prepare("SELECT * FROM tasks WHERE study_id = ? AND round = ? ORDER BY site_name").all(studyId, round) as Row[]).map(taskFromRow);
  }

  pendingTasksForSite(siteName: string): TaskRecord[] {
    return (this.db.prepare(`SELECT t.* FROM tasks t
        JOIN studies s ON s.study_id = t.study_id
        JOIN rounds r ON r.study_id = t.study_id AND r.round = t.round
        WHERE t.site_name = ? AND t.state = 'pending' AND s.state = 'running' AND r.state = 'collecting'
        ORDER BY t.created_at, t.task_id`).all(siteName) as Row[]).map(taskFromRow);
  }

  updateTask(taskId: string, state: TaskState, message: string): void {
    this.db.prepare("UPDATE tasks SET state = ?, message = ? WHERE task_id = ?").run(state, message, taskId);
  }

  insertSubmission(s: SubmissionRecord): void {
    this.db.prepare(`INSERT INTO submissions (task_id, study_id, round, site_name, update_blob, update_sha256, epsilon, delta, received_at, signature)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(s.taskId, s.studyId, s.round, s.siteName, s.update ? Buffer.from(s.update.buffer, s.update.byteOffset, s.update.byteLength) : null,
        s.updateSha256, s.epsilon, s.delta, s.receivedAt, s.signature);
  }

  getSubmission(taskId: string): SubmissionRecord | undefined {
    const row = this.db.prepare("SELECT * FROM submissions WHERE task_id = ?").get(taskId) as Row | undefined;
    return row && submissionFromRow(row);
  }

  listSubmissions(studyId: string, round: number): SubmissionRecord[] {
    return (this.db.prepare("SELECT * FROM submissions WHERE study_id = ? AND round = ? ORDER BY site_name").all(studyId, round) as Row[]).map(submissionFromRow);
  }

  purgeSubmissionUpdates(studyId: string, round: number): void {
    this.db.prepare("UPDATE submissions SET update_blob = NULL WHERE study_id = ? AND round = ?").run(studyId, round);
  }

  insertModel(m: ModelRecord): void {
    this.db.prepare("INSERT INTO models (model_id, study_id, round, engine, model_blob, sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .run(m.modelId, m.studyId, m.round, m.engine, Buffer.from(m.bytes), m.sha256, m.createdAt);
  }

  getModel(modelId: string): ModelRecord | undefined {
    const row = this.db.prepare("SELECT * FROM models WHERE model_id = ?").get(modelId) as Row | undefined;
    return row && modelFromRow(row);
  }

  latestModel(studyId: string): ModelRecord | undefined {
    const row = this.db.prepare("SELECT * FROM models WHERE study_id = ? ORDER BY round DESC LIMIT 1").get(studyId) as Row | undefined;
    return row && modelFromRow(row);
  }

  appendLedger(e: { at: number; kind: LedgerKind; studyId: string | null; siteName: string | null; round: number | null; body: LedgerRecord["body"] }): LedgerRecord {
    const info = this.db.prepare("INSERT INTO ledger (at, kind, study_id, site_name, round, body_json) VALUES (?, ?, ?, ?, ?, ?)")
      .run(e.at, e.kind, e.studyId, e.siteName, e.round, JSON.stringify(e.body));
    return { seq: Number(info.lastInsertRowid), ...e };
  }

  listLedger(filter: { studyId?: string; siteName?: string; kind?: LedgerKind } = {}): LedgerRecord[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.studyId !== undefined) { where.push("study_id = ?"); args.push(filter.studyId); }
    if (filter.siteName !== undefined) { where.push("site_name = ?"); args.push(filter.siteName); }
    if (filter.kind !== undefined) { where.push("kind = ?"); args.push(filter.kind); }
    const sql = `SELECT * FROM ledger ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY seq`;
    return (this.db.prepare(sql).all(...args) as Row[]).map((r) => ({
      seq: r.seq, at: r.at, kind: r.kind, studyId: r.study_id, siteName: r.site_name, round: r.round, body: JSON.parse(r.body_json),
    }));
  }
}

function siteFromRow(r: Row): SiteRecord {
  return {
    siteId: r.site_id, name: r.name, enrolledAt: r.enrolled_at, lastContactAt: r.last_contact_at, agentVersion: r.agent_version,
    certSerial: r.cert_serial ?? null, certFingerprint: r.cert_fingerprint ?? null, signingPublicKey: r.signing_public_key ?? null,
    revokedAt: r.revoked_at ?? null, revokedReason: r.revoked_reason ?? "",
  };
}

function roundFromRow(r: Row): RoundRecord {
  return {
    studyId: r.study_id, round: r.round, state: r.state, roundConfig: JSON.parse(r.round_config_json),
    mechanisms: JSON.parse(r.mechanisms_json), updateLength: r.update_length, modelId: r.model_id,
    startedAt: r.started_at, deadlineAt: r.deadline_at, finishedAt: r.finished_at,
    sessionNonce: r.session_nonce ? new Uint8Array(Buffer.from(r.session_nonce, "base64")) : null,
  };
}

function taskFromRow(r: Row): TaskRecord {
  return { taskId: r.task_id, studyId: r.study_id, round: r.round, siteName: r.site_name, state: r.state, message: r.message, createdAt: r.created_at };
}

function submissionFromRow(r: Row): SubmissionRecord {
  const blob = r.update_blob as Buffer | null;
  let update: Float64Array | null = null;
  if (blob) {
    // Copy into an aligned buffer: a Buffer slice may start at an offset that is not a multiple of 8.
    const copy = new Uint8Array(blob.byteLength);
    copy.set(blob);
    update = new Float64Array(copy.buffer);
  }
  return {
    taskId: r.task_id, studyId: r.study_id, round: r.round, siteName: r.site_name, update, updateSha256: r.update_sha256,
    epsilon: r.epsilon, delta: r.delta, receivedAt: r.received_at, signature: r.signature ?? "",
  };
}

function modelFromRow(r: Row): ModelRecord {
  return { modelId: r.model_id, studyId: r.study_id, round: r.round, engine: r.engine, bytes: new Uint8Array(r.model_blob), sha256: r.sha256, createdAt: r.created_at };
}
