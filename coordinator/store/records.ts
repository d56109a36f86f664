/** Plain records the coordinator keeps. Nothing here knows about protobuf or SQL. */
import type { JsonObject } from "../../shared/engines/engine.js";
import type { Mechanism } from "../../shared/privacy/mechanism.js";

export type StudyState = "created" | "running" | "completed" | "failed" | "cancelled";
export type ParticipantState = "invited" | "active" | "declined" | "dropped";
export type RoundState = "collecting" | "aggregated" | "aborted";
export type TaskState = "pending" | "submitted" | "declined" | "failed" | "expired";

export interface SiteRecord {
  siteId: string;
  name: string;
  enrolledAt: number;
  lastContactAt: number | null;
  agentVersion: string;
  /** The serial (hex) of the site's current certificate: calls with any other certificate are refused. Null in plaintext development mode. */
  certSerial: string | null;
  certFingerprint: string | null;
  /** The site's Ed25519 public key (base64), which its signed submissions are checked against. */
  signingPublicKey: string | null;
  revokedAt: number | null;
  revokedReason: string;
}

export interface SiteIdentity {
  certSerial: string | null;
  certFingerprint: string | null;
  signingPublicKey: string;
}

export interface EnrollmentTokenRecord {
  /** SHA-256 of the token: the token itself is shown once, to the operator, and never stored. */
  tokenHash: string;
  siteName: string;
  issuedAt: number;
  expiresAt: number;
  usedAt: number | null;
}

export interface ParticipantRecord {
  siteName: string;
  state: ParticipantState;
  message: string;
}

export interface StudyRecord {
  studyId: string;
  name: string;
  schemaJson: string;
  engine: string;
  /** Why the study has this engine: the operator named it, or the coordinator's default choice and its reason. */
  engineReason: string;
  epsilon: number;
  delta: number;
  rounds: number;
  minSites: number;
  roundDeadlineSeconds: number;
  engineConfig: JsonObject;
  /** t when the sites' updates are summed under secure aggregation; 0 when each update goes up noised. */
  secureThreshold: number;
  state: StudyState;
  statusMessage: string;
  completedRounds: number;
  /** When the sites must have answered the invitation (set when the study starts). */
  invitationDeadlineAt: number | null;
  createdAt: number;
  updatedAt: number;
  participants: ParticipantRecord[];
}

export interface RoundRecord {
  studyId: string;
  round: number;
  state: RoundState;
  roundConfig: JsonObject;
  /** The charge of each site's task in this round. */
  mechanisms: Mechanism[];
  updateLength: number;
  /** The pooled model the round starts from (null before the first aggregation). */
  modelId: string | null;
  startedAt: number;
  deadlineAt: number;
  finishedAt: number | null;
  /** The secure-aggregation session's nonce (null for a plaintext round); a new session gets a new one. */
  sessionNonce: Uint8Array | null;
}

export interface TaskRecord {
  taskId: string;
  studyId: string;
  round: number;
  siteName: string;
  state: TaskState;
  message: string;
  createdAt: number;
}

export interface SubmissionRecord {
  taskId: string;
  studyId: string;
  round: number;
  siteName: string;
  /** Dropped once the round is aggregated: the coordinator keeps no individual update longer than needed. */
  update: Float64Array | null;
  updateSha256: string;
  epsilon: number;
  delta: number;
  receivedAt: number;
  /** The site's Ed25519 signature (base64) over the submission's canonical statement. */
  signature: string;
}

export interface ModelRecord {
  modelId: string;
  studyId: string;
  round: number;
  engine: string;
  bytes: Uint8Array;
  sha256: string;
  createdAt: number;
}

export type LedgerKind = "study-created" | "charge" | "refusal" | "release" | "study-closed";

export interface LedgerRecord {
  seq: number;
  at: number;
  kind: LedgerKind;
  studyId: string | null;
  siteName: string | null;
  round: number | null;
  body: JsonObject;
}

/**
 * What a secure-aggregation session needs to be rebuilt after a restart or a takeover: the open phase, the
 * running sum of the masked inputs accepted so far (masked: it is never an individual unmasked update) and
 * the sites in it, written in the same transaction as those sites' charges. The signed messages of the
 * other phases are kept beside it (SecAggMessageRecord). Dropped when the round ends.
 */
export interface SecAggSessionRecord {
  studyId: string;
  round: number;
  sessionNonce: Uint8Array;
  /** The server's phase (AdvertiseKeys … Unmasking): the phases before it are closed. */
  phase: string;
  /** The sites whose masked inputs are in runningSum. */
  summedSites: string[];
  /** Σ of their masked inputs, uint32 little-endian (null before the first one). */
  runningSum: Uint8Array | null;
  updatedAt: number;
}

/** One site's signed message of one phase, as the coordinator accepted it (its encoded bytes). */
export interface SecAggMessageRecord {
  phase: string;
  siteName: string;
  message: Uint8Array;
  receivedAt: number;
}
