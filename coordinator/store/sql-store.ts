/**
 * The coordinator's store in SQL, one set of queries for both databases: SQLite (one file under the data
 * directory, the embedded default) and PostgreSQL (for replicas sharing one database). Versioned
 * migrations; an older coordinator refuses a newer store instead of corrupting it. With a fence set (a
 * replica driving under a lease), every write first checks, inside its transaction and holding the lease
 * row, that this replica still holds the lease: a replica that lost it cannot write a thing.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { FedsynthError } from "../../shared/errors.js";
import { MIGRATIONS } from "./migrations.js";
import { postgresDdl, type Row, type SqlDriver, type SqlValue } from "./sql-driver.js";
import { SqliteDriver } from "./sqlite-driver.js";
import { PostgresDriver } from "./postgres-driver.js";
import type { CoordinatorStore, Lease, StudyPatch } from "./store.js";
import type {
  EnrollmentTokenRecord, LedgerKind, LedgerRecord, ModelRecord, ParticipantState, RoundRecord, RoundState, SiteIdentity, SiteRecord, StudyRecord,
  StudyState, SubmissionRecord, TaskRecord, TaskState, SecAggMessageRecord, SecAggSessionRecord,
} from "./records.js";

export function openSqliteStore(dataDir: string): SqlStore {
  mkdirSync(dataDir, { recursive: true });
  return new SqlStore(new SqliteDriver(join(dataDir, "coordinator.sqlite")));
}

export function openPostgresStore(url: string, opts: { applicationName?: string } = {}): SqlStore {
  return new SqlStore(new PostgresDriver(url, opts));
}

/** Is this --store value a PostgreSQL URL (rather than the embedded SQLite store)? */
export function isPostgresUrl(value: string | undefined): value is string {
  return !!value && /^postgres(ql)?:\/\//.test(value);
}

/** Kept for the tests and tools that name the SQLite store. */
export type SqliteStore = SqlStore;

export class SqlStore implements CoordinatorStore {
  private fence?: Lease & { onLost: (why: string) => void };

  constructor(private readonly driver: SqlDriver) {
    this.migrate();
  }

  get path(): string {
    return this.driver.location;
  }

  get dialect(): SqlDriver["dialect"] {
    return this.driver.dialect;
  }

  private migrate(): void {
    const ddl = (sql: string) => (this.driver.dialect === "postgres" ? postgresDdl(sql) : sql);
    this.driver.transaction(() => {
      // Replicas starting together must not both migrate: the first takes the lock, the second then finds it done.
      if (this.driver.dialect === "postgres") this.driver.get("SELECT pg_advisory_xact_lock(7070707070) AS locked");
      this.driver.exec(ddl("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at INTEGER NOT NULL)"));
      const current = this.schemaVersion();
      const latest = MIGRATIONS[MIGRATIONS.length - 1].version;
      if (current > latest) {
        throw new FedsynthError("failed-precondition", `the store ${this.path} is at schema version ${current}, newer than this coordinator knows (${latest})`, {
          hint: "upgrade fedsynth, or point the coordinator at a store written by this version",
        });
      }
      for (const m of MIGRATIONS) {
        if (m.version <= current) continue;
        this.driver.exec(ddl(m.sql));
        this.driver.run("INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)", [m.version, m.description, Date.now()]);
      }
    });
  }

  schemaVersion(): number {
    return this.driver.get("SELECT MAX(version) AS v FROM schema_migrations")?.v ?? 0;
  }

  transaction<T>(fn: () => T): T {
    const outermost = !this.driver.inTransaction;
    return this.driver.transaction(() => {
      if (this.fence && outermost) this.checkFence(this.fence);
      return fn();
    });
  }

  close(): void {
    this.driver.close();
  }

  // ---- leases ------------------------------------------------------------------------------------------

  acquireLease(name: string, holder: string, ttlMs: number): Lease | undefined {
    const now = this.driver.nowMs;
    const row = this.driver.get(`INSERT INTO leases (name, holder, term, expires_at) VALUES (?, ?, 1, ${now} + ?)
        ON CONFLICT (name) DO UPDATE SET
          term = CASE WHEN leases.holder = excluded.holder THEN leases.term ELSE leases.term + 1 END,
          holder = excluded.holder, expires_at = excluded.expires_at
        WHERE leases.holder = excluded.holder OR leases.expires_at <= ${now}
        RETURNING name, holder, term, expires_at`, [name, holder, Math.round(ttlMs)]);
    return row && leaseFromRow(row);
  }

  getLease(name: string): (Lease & { live: boolean }) | undefined {
    const row = this.driver.get(`SELECT name, holder, term, expires_at, CASE WHEN expires_at > ${this.driver.nowMs} THEN 1 ELSE 0 END AS live FROM leases WHERE name = ?`, [name]);
    return row && { ...leaseFromRow(row), live: Number(row.live) === 1 };
  }

  releaseLease(name: string, holder: string): void {
    this.driver.run("UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ?", [name, holder]);
  }

  /** From now on every write checks that `lease` is still held; onLost hears when it is not. */
  fenceWith(lease: Lease, onLost: (why: string) => void): void {
    this.fence = { ...lease, onLost };
  }

  private checkFence(f: Lease & { onLost: (why: string) => void }): void {
    const lock = this.driver.dialect === "postgres" ? " FOR SHARE" : "";
    const row = this.driver.get(`SELECT holder, term, CASE WHEN expires_at > ${this.driver.nowMs} THEN 1 ELSE 0 END AS live FROM leases WHERE name = ?${lock}`, [f.name]);
    const why = !row ? "the lease is gone"
      : row.holder !== f.holder || Number(row.term) !== f.term ? `another replica (${row.holder}) holds it now`
      : Number(row.live) !== 1 ? "it expired before it was renewed" : undefined;
    if (!why) return;
    f.onLost(why);
    throw new FedsynthError("unavailable", `this coordinator replica no longer holds the '${f.name}' lease: ${why}`, {
      hint: "nothing was written; the replica that holds the lease carries on, and agents reconnect to it",
    });
  }

  /** A single write outside any transaction: under a fence it still gets its own transaction and check. */
  private write(sql: string, params: SqlValue[]): { changes: number } {
    return this.fenced(() => this.driver.run(sql, params));
  }

  private fenced<T>(fn: () => T): T {
    return this.fence && !this.driver.inTransaction ? this.transaction(fn) : fn();
  }

  upsertSite(name: string, agentVersion: string, now: number): SiteRecord {
    const existing = this.getSite(name);
    if (existing) {
      this.write("UPDATE sites SET agent_version = ?, last_contact_at = ? WHERE name = ?", [agentVersion, now, name]);
      return { ...existing, agentVersion, lastContactAt: now };
    }
    const site: SiteRecord = {
      siteId: `site-${randomUUID().slice(0, 8)}`, name, enrolledAt: now, lastContactAt: now, agentVersion,
      certSerial: null, certFingerprint: null, signingPublicKey: null, revokedAt: null, revokedReason: "",
    };
    this.write("INSERT INTO sites (site_id, name, enrolled_at, last_contact_at, agent_version) VALUES (?, ?, ?, ?, ?)", [site.siteId, site.name, site.enrolledAt, site.lastContactAt, site.agentVersion]);
    return site;
  }

  setSiteIdentity(name: string, identity: SiteIdentity, agentVersion: string, now: number): SiteRecord {
    this.upsertSite(name, agentVersion, now);
    this.write(`UPDATE sites SET cert_serial = ?, cert_fingerprint = ?, signing_public_key = ?, revoked_at = NULL, revoked_reason = '',
        enrolled_at = ? WHERE name = ?`, [identity.certSerial, identity.certFingerprint, identity.signingPublicKey, now, name]);
    return this.getSite(name)!;
  }

  revokeSite(name: string, reason: string, now: number): void {
    this.write("UPDATE sites SET revoked_at = ?, revoked_reason = ? WHERE name = ?", [now, reason, name]);
  }

  insertEnrollmentToken(t: EnrollmentTokenRecord): void {
    this.write("INSERT INTO enrollment_tokens (token_hash, site_name, issued_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?)", [t.tokenHash, t.siteName, t.issuedAt, t.expiresAt, t.usedAt]);
  }

  getEnrollmentToken(tokenHash: string): EnrollmentTokenRecord | undefined {
    const r = this.driver.get("SELECT * FROM enrollment_tokens WHERE token_hash = ?", [tokenHash]);
    return r && { tokenHash: r.token_hash, siteName: r.site_name, issuedAt: r.issued_at, expiresAt: r.expires_at, usedAt: r.used_at };
  }

  markEnrollmentTokenUsed(tokenHash: string, now: number): void {
    this.write("UPDATE enrollment_tokens SET used_at = ? WHERE token_hash = ?", [now, tokenHash]);
  }

  touchSite(name: string, now: number): void {
    this.write("UPDATE sites SET last_contact_at = ? WHERE name = ?", [now, name]);
  }

  getSite(name: string): SiteRecord | undefined {
    const row = this.driver.get("SELECT * FROM sites WHERE name = ?", [name]);
    return row && siteFromRow(row);
  }

  listSites(): SiteRecord[] {
    return this.driver.all("SELECT * FROM sites ORDER BY name").map(siteFromRow);
  }

  appendChainEntry(seq: number, entryJson: string): void {
    this.write("INSERT INTO ledger_chain (seq, entry_json) VALUES (?, ?)", [seq, entryJson]);
  }

  listChainEntries(): string[] {
    return this.driver.all("SELECT entry_json FROM ledger_chain ORDER BY seq").map((r) => r.entry_json);
  }

  lastChainSeq(): number {
    const row = this.driver.get("SELECT MAX(seq) AS seq FROM ledger_chain")!;
    return row.seq ?? -1;
  }

  getSecret(name: string): Uint8Array | undefined {
    const row = this.driver.get("SELECT value FROM secrets WHERE name = ?", [name]);
    return row && new Uint8Array(row.value);
  }

  putSecret(name: string, value: Uint8Array): void {
    this.write("INSERT INTO secrets (name, value) VALUES (?, ?)", [name, value]);
  }

  insertStudy(s: StudyRecord): void {
    this.write(`INSERT INTO studies (study_id, name, schema_json, engine, engine_reason, epsilon, delta, rounds, min_sites,
        round_deadline_seconds, engine_config_json, secure_threshold, state, status_message, completed_rounds, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [s.studyId, s.name, s.schemaJson, s.engine, s.engineReason, s.epsilon, s.delta, s.rounds, s.minSites, s.roundDeadlineSeconds,
        JSON.stringify(s.engineConfig), s.secureThreshold, s.state, s.statusMessage, s.completedRounds, s.createdAt, s.updatedAt]);
    s.participants.forEach((p, i) => this.write("INSERT INTO study_sites (study_id, site_name, position, state, message) VALUES (?, ?, ?, ?, ?)",
      [s.studyId, p.siteName, i, p.state, p.message]));
  }

  getStudy(studyId: string): StudyRecord | undefined {
    const row = this.driver.get("SELECT * FROM studies WHERE study_id = ?", [studyId]);
    return row && this.studyFromRow(row);
  }

  listStudies(): StudyRecord[] {
    return this.driver.all("SELECT * FROM studies ORDER BY created_at, study_id").map((r) => this.studyFromRow(r));
  }

  updateStudy(studyId: string, patch: StudyPatch, now: number): void {
    const s = this.getStudy(studyId);
    if (!s) throw new FedsynthError("not-found", `no study ${studyId}`);
    this.write("UPDATE studies SET state = ?, status_message = ?, completed_rounds = ?, invitation_deadline_at = ?, updated_at = ? WHERE study_id = ?", [patch.state ?? s.state, patch.statusMessage ?? s.statusMessage, patch.completedRounds ?? s.completedRounds,
        patch.invitationDeadlineAt ?? s.invitationDeadlineAt, now, studyId]);
  }

  setParticipant(studyId: string, siteName: string, state: ParticipantState, message: string): void {
    this.write("UPDATE study_sites SET state = ?, message = ? WHERE study_id = ? AND site_name = ?", [state, message, studyId, siteName]);
  }

  private studyFromRow(r: Row): StudyRecord {
    const participants = this.driver.all("SELECT * FROM study_sites WHERE study_id = ? ORDER BY position", [r.study_id])
      .map((p) => ({ siteName: p.site_name, state: p.state as ParticipantState, message: p.message }));
    return {
      studyId: r.study_id, name: r.name, schemaJson: r.schema_json, engine: r.engine, engineReason: r.engine_reason ?? "", epsilon: r.epsilon, delta: r.delta,
      rounds: r.rounds, minSites: r.min_sites, roundDeadlineSeconds: r.round_deadline_seconds,
      engineConfig: JSON.parse(r.engine_config_json), secureThreshold: r.secure_threshold ?? 0, state: r.state, statusMessage: r.status_message,
      completedRounds: r.completed_rounds, invitationDeadlineAt: r.invitation_deadline_at, createdAt: r.created_at, updatedAt: r.updated_at, participants,
    };
  }

  insertRound(r: RoundRecord): void {
    this.write(`INSERT INTO rounds (study_id, round, state, round_config_json, mechanisms_json, update_length, model_id,
        started_at, deadline_at, finished_at, session_nonce) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [r.studyId, r.round, r.state, JSON.stringify(r.roundConfig), JSON.stringify(r.mechanisms), r.updateLength, r.modelId,
        r.startedAt, r.deadlineAt, r.finishedAt, r.sessionNonce ? Buffer.from(r.sessionNonce).toString("base64") : null]);
  }

  getRound(studyId: string, round: number): RoundRecord | undefined {
    const row = this.driver.get("SELECT * FROM rounds WHERE study_id = ? AND round = ?", [studyId, round]);
    return row && roundFromRow(row);
  }

  listRounds(studyId: string): RoundRecord[] {
    return this.driver.all("SELECT * FROM rounds WHERE study_id = ? ORDER BY round", [studyId]).map(roundFromRow);
  }

  listRoundsInState(state: RoundState): RoundRecord[] {
    return this.driver.all("SELECT * FROM rounds WHERE state = ? ORDER BY started_at", [state]).map(roundFromRow);
  }

  finishRound(studyId: string, round: number, state: RoundState, now: number): void {
    this.write("UPDATE rounds SET state = ?, finished_at = ? WHERE study_id = ? AND round = ?", [state, now, studyId, round]);
  }

  setRoundSession(studyId: string, round: number, sessionNonce: Uint8Array): void {
    this.write("UPDATE rounds SET session_nonce = ? WHERE study_id = ? AND round = ?", [Buffer.from(sessionNonce).toString("base64"), studyId, round]);
  }

  extendRoundDeadline(studyId: string, round: number, deadlineAt: number): void {
    this.write("UPDATE rounds SET deadline_at = ? WHERE study_id = ? AND round = ?", [deadlineAt, studyId, round]);
  }

  openSecAggSession(studyId: string, round: number, sessionNonce: Uint8Array, now: number): void {
    this.fenced(() => {
      this.deleteSecAggSession(studyId, round);
      this.write("INSERT INTO secagg_sessions (study_id, round, session_nonce, phase, summed_sites_json, running_sum, updated_at) VALUES (?, ?, ?, ?, '[]', NULL, ?)",
        [studyId, round, Buffer.from(sessionNonce).toString("base64"), "AdvertiseKeys", now]);
    });
  }

  getSecAggSession(studyId: string, round: number): SecAggSessionRecord | undefined {
    const r = this.driver.get("SELECT * FROM secagg_sessions WHERE study_id = ? AND round = ?", [studyId, round]);
    return r && {
      studyId: r.study_id, round: Number(r.round), sessionNonce: new Uint8Array(Buffer.from(r.session_nonce, "base64")), phase: r.phase,
      summedSites: JSON.parse(r.summed_sites_json), runningSum: r.running_sum ? copyBytes(r.running_sum) : null, updatedAt: Number(r.updated_at),
    };
  }

  setSecAggPhase(studyId: string, round: number, phase: string, now: number): void {
    this.requireChange(this.write("UPDATE secagg_sessions SET phase = ?, updated_at = ? WHERE study_id = ? AND round = ?", [phase, now, studyId, round]), studyId, round);
  }

  setSecAggSum(studyId: string, round: number, summedSites: string[], runningSum: Uint8Array, now: number): void {
    this.requireChange(this.write("UPDATE secagg_sessions SET summed_sites_json = ?, running_sum = ?, updated_at = ? WHERE study_id = ? AND round = ?",
      [JSON.stringify(summedSites), runningSum, now, studyId, round]), studyId, round);
  }

  insertSecAggMessage(studyId: string, round: number, m: SecAggMessageRecord): void {
    this.write("INSERT INTO secagg_messages (study_id, round, phase, site_name, message, received_at) VALUES (?, ?, ?, ?, ?, ?)",
      [studyId, round, m.phase, m.siteName, m.message, m.receivedAt]);
  }

  listSecAggMessages(studyId: string, round: number): SecAggMessageRecord[] {
    return this.driver.all("SELECT * FROM secagg_messages WHERE study_id = ? AND round = ? ORDER BY received_at, phase, site_name", [studyId, round])
      .map((r) => ({ phase: r.phase, siteName: r.site_name, message: copyBytes(r.message), receivedAt: Number(r.received_at) }));
  }

  deleteSecAggSession(studyId: string, round: number): void {
    this.fenced(() => {
      this.write("DELETE FROM secagg_messages WHERE study_id = ? AND round = ?", [studyId, round]);
      this.write("DELETE FROM secagg_sessions WHERE study_id = ? AND round = ?", [studyId, round]);
    });
  }

  /** An update of a session that is not there would lose state silently: it is an error instead. */
  private requireChange(r: { changes: number }, studyId: string, round: number): void {
    if (r.changes !== 1) {
      throw new FedsynthError("internal", `round ${round} of study ${studyId} has no stored secure-aggregation session to update`, {
        hint: "the round's session state was dropped (the round ended, or a new session replaced it)",
      });
    }
  }

  insertTask(t: TaskRecord): void {
    this.write("INSERT INTO tasks (task_id, study_id, round, site_name, state, message, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)", [t.taskId, t.studyId, t.round, t.siteName, t.state, t.message, t.createdAt]);
  }

  getTask(taskId: string): TaskRecord | undefined {
    const row = this.driver.get("SELECT * FROM tasks WHERE task_id = ?", [taskId]);
    return row && taskFromRow(row);
  }

  listTasks(studyId: string, round: number): TaskRecord[] {
    return this.driver.all("SELECT * FROM tasks WHERE study_id = ? AND round = ? ORDER BY site_name", [studyId, round]).map(taskFromRow);
  }

  pendingTasksForSite(siteName: string): TaskRecord[] {
    return this.driver.all(`SELECT t.* FROM tasks t
        JOIN studies s ON s.study_id = t.study_id
        JOIN rounds r ON r.study_id = t.study_id AND r.round = t.round
        WHERE t.site_name = ? AND t.state = 'pending' AND s.state = 'running' AND r.state = 'collecting'
        ORDER BY t.created_at, t.task_id`, [siteName]).map(taskFromRow);
  }

  updateTask(taskId: string, state: TaskState, message: string): void {
    this.write("UPDATE tasks SET state = ?, message = ? WHERE task_id = ?", [state, message, taskId]);
  }

  insertSubmission(s: SubmissionRecord): void {
    this.write(`INSERT INTO submissions (task_id, study_id, round, site_name, update_blob, update_sha256, epsilon, delta, received_at, signature)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [s.taskId, s.studyId, s.round, s.siteName, s.update ? Buffer.from(s.update.buffer, s.update.byteOffset, s.update.byteLength) : null,
        s.updateSha256, s.epsilon, s.delta, s.receivedAt, s.signature]);
  }

  getSubmission(taskId: string): SubmissionRecord | undefined {
    const row = this.driver.get("SELECT * FROM submissions WHERE task_id = ?", [taskId]);
    return row && submissionFromRow(row);
  }

  listSubmissions(studyId: string, round: number): SubmissionRecord[] {
    return this.driver.all("SELECT * FROM submissions WHERE study_id = ? AND round = ? ORDER BY site_name", [studyId, round]).map(submissionFromRow);
  }

  purgeSubmissionUpdates(studyId: string, round: number): void {
    this.write("UPDATE submissions SET update_blob = NULL WHERE study_id = ? AND round = ?", [studyId, round]);
  }

  insertModel(m: ModelRecord): void {
    this.write("INSERT INTO models (model_id, study_id, round, engine, model_blob, sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)", [m.modelId, m.studyId, m.round, m.engine, Buffer.from(m.bytes), m.sha256, m.createdAt]);
  }

  getModel(modelId: string): ModelRecord | undefined {
    const row = this.driver.get("SELECT * FROM models WHERE model_id = ?", [modelId]);
    return row && modelFromRow(row);
  }

  latestModel(studyId: string): ModelRecord | undefined {
    const row = this.driver.get("SELECT * FROM models WHERE study_id = ? ORDER BY round DESC LIMIT 1", [studyId]);
    return row && modelFromRow(row);
  }

  appendLedger(e: { at: number; kind: LedgerKind; studyId: string | null; siteName: string | null; round: number | null; body: LedgerRecord["body"] }): LedgerRecord {
    const row = this.fenced(() => this.driver.get("INSERT INTO ledger (at, kind, study_id, site_name, round, body_json) VALUES (?, ?, ?, ?, ?, ?) RETURNING seq",
      [e.at, e.kind, e.studyId, e.siteName, e.round, JSON.stringify(e.body)]))!;
    return { seq: Number(row.seq), ...e };
  }

  listLedger(filter: { studyId?: string; siteName?: string; kind?: LedgerKind } = {}): LedgerRecord[] {
    const where: string[] = [];
    const args: SqlValue[] = [];
    if (filter.studyId !== undefined) { where.push("study_id = ?"); args.push(filter.studyId); }
    if (filter.siteName !== undefined) { where.push("site_name = ?"); args.push(filter.siteName); }
    if (filter.kind !== undefined) { where.push("kind = ?"); args.push(filter.kind); }
    const sql = `SELECT * FROM ledger ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY seq`;
    return this.driver.all(sql, args).map((r) => ({
      seq: r.seq, at: r.at, kind: r.kind, studyId: r.study_id, siteName: r.site_name, round: r.round, body: JSON.parse(r.body_json),
    }));
  }
}

function leaseFromRow(r: Row): Lease {
  return { name: r.name, holder: r.holder, term: Number(r.term), expiresAt: Number(r.expires_at) };
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

/** A blob as a plain, aligned Uint8Array of its own (SQLite gives Buffers that may share a pool). */
function copyBytes(v: Uint8Array): Uint8Array {
  const out = new Uint8Array(v.byteLength);
  out.set(v);
  return out;
}

function modelFromRow(r: Row): ModelRecord {
  return { modelId: r.model_id, studyId: r.study_id, round: r.round, engine: r.engine, bytes: new Uint8Array(r.model_blob), sha256: r.sha256, createdAt: r.created_at };
}
