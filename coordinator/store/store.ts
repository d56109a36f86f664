/**
 * The coordinator's durable state behind one interface: SQLite now, other databases later, one test suite
 * for all. Every method is synchronous and atomic on its own; `transaction` groups several into one commit.
 */
import type {
  EnrollmentTokenRecord, LedgerKind, LedgerRecord, ModelRecord, ParticipantState, RoundRecord, RoundState, SiteIdentity, SiteRecord, StudyRecord,
  StudyState, SubmissionRecord, TaskRecord, TaskState, SecAggMessageRecord, SecAggSessionRecord,
} from "./records.js";

export interface StudyPatch {
  state?: StudyState;
  statusMessage?: string;
  completedRounds?: number;
  invitationDeadlineAt?: number;
}

/**
 * A time-limited claim, in the database, that one coordinator process drives the consortium's rounds.
 * `term` grows each time the lease changes hands, so a holder can tell its own lease from a later one.
 */
export interface Lease {
  name: string;
  holder: string;
  term: number;
  /** Epoch milliseconds by the database's clock. */
  expiresAt: number;
}

export interface CoordinatorStore {
  transaction<T>(fn: () => T): T;
  close(): void;

  /** Takes the lease if it is free or expired, or renews it for its holder; undefined when another holds it. */
  acquireLease(name: string, holder: string, ttlMs: number): Lease | undefined;
  getLease(name: string): (Lease & { live: boolean }) | undefined;
  /** Ends the holder's lease at once (a clean shutdown), so that a standby need not wait for it to expire. */
  releaseLease(name: string, holder: string): void;

  upsertSite(name: string, agentVersion: string, now: number): SiteRecord;
  touchSite(name: string, now: number): void;
  getSite(name: string): SiteRecord | undefined;
  listSites(): SiteRecord[];
  /** Binds a site's certificate and signing key (creating the site if new) and lifts any revocation. */
  setSiteIdentity(name: string, identity: SiteIdentity, agentVersion: string, now: number): SiteRecord;
  revokeSite(name: string, reason: string, now: number): void;
  insertEnrollmentToken(token: EnrollmentTokenRecord): void;
  getEnrollmentToken(tokenHash: string): EnrollmentTokenRecord | undefined;
  markEnrollmentTokenUsed(tokenHash: string, now: number): void;

  insertStudy(study: StudyRecord): void;
  getStudy(studyId: string): StudyRecord | undefined;
  listStudies(): StudyRecord[];
  updateStudy(studyId: string, patch: StudyPatch, now: number): void;
  setParticipant(studyId: string, siteName: string, state: ParticipantState, message: string): void;

  insertRound(round: RoundRecord): void;
  getRound(studyId: string, round: number): RoundRecord | undefined;
  listRounds(studyId: string): RoundRecord[];
  listRoundsInState(state: RoundState): RoundRecord[];
  finishRound(studyId: string, round: number, state: RoundState, now: number): void;
  extendRoundDeadline(studyId: string, round: number, deadlineAt: number): void;
  setRoundSession(studyId: string, round: number, sessionNonce: Uint8Array): void;

  /** A round's secure-aggregation session from its start (phase AdvertiseKeys); replaces any earlier session's state of the round. */
  openSecAggSession(studyId: string, round: number, sessionNonce: Uint8Array, now: number): void;
  getSecAggSession(studyId: string, round: number): SecAggSessionRecord | undefined;
  setSecAggPhase(studyId: string, round: number, phase: string, now: number): void;
  /** The running masked sum and the sites in it; write it in the transaction that records those sites' charges. */
  setSecAggSum(studyId: string, round: number, summedSites: string[], runningSum: Uint8Array, now: number): void;
  insertSecAggMessage(studyId: string, round: number, message: SecAggMessageRecord): void;
  /** In the order they were accepted. */
  listSecAggMessages(studyId: string, round: number): SecAggMessageRecord[];
  deleteSecAggSession(studyId: string, round: number): void;

  insertTask(task: TaskRecord): void;
  getTask(taskId: string): TaskRecord | undefined;
  listTasks(studyId: string, round: number): TaskRecord[];
  /** Pending tasks of a site in running studies' collecting rounds, oldest first. */
  pendingTasksForSite(siteName: string): TaskRecord[];
  updateTask(taskId: string, state: TaskState, message: string): void;

  insertSubmission(submission: SubmissionRecord): void;
  getSubmission(taskId: string): SubmissionRecord | undefined;
  listSubmissions(studyId: string, round: number): SubmissionRecord[];
  purgeSubmissionUpdates(studyId: string, round: number): void;

  insertModel(model: ModelRecord): void;
  getModel(modelId: string): ModelRecord | undefined;
  latestModel(studyId: string): ModelRecord | undefined;

  /** The privacy ledger's chain: entries as canonical JSON, in seq order. */
  appendChainEntry(seq: number, entryJson: string): void;
  listChainEntries(): string[];
  /** The seq of the last stored chain entry (-1 when there is none). */
  lastChainSeq(): number;
  /** Key material kept with the state it protects (the ledger signing key). */
  getSecret(name: string): Uint8Array | undefined;
  putSecret(name: string, value: Uint8Array): void;

  appendLedger(entry: { at: number; kind: LedgerKind; studyId: string | null; siteName: string | null; round: number | null; body: LedgerRecord["body"] }): LedgerRecord;
  listLedger(filter?: { studyId?: string; siteName?: string; kind?: LedgerKind }): LedgerRecord[];
}
