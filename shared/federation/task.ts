/**
 * The plain values that travel between coordinator and agent, independent of their wire encoding.
 * Transport code converts these to and from protobuf; everything else works with these.
 */
import type { JsonObject } from "../engines/engine.js";
import type { Mechanism } from "../privacy/mechanism.js";

/** The public description of a study that every site receives with its tasks. */
export interface StudySpec {
  studyId: string;
  name: string;
  schemaJson: string;
  engine: string;
  epsilon: number;
  delta: number;
  rounds: number;
  engineConfig: JsonObject;
}

export interface TaskAssignment {
  taskId: string;
  study: StudySpec;
  round: number;
  mechanisms: Mechanism[];
  modelId: string;
  modelSha256: string;
  modelBytes: number;
  updateLength: number;
  roundConfig: JsonObject;
  /** Present when the round is summed under secure aggregation. */
  secureAggregation?: SecureSessionSpec;
  /** The round's W3C trace context (traceparent, tracestate) when the coordinator exports traces. */
  traceContext?: Record<string, string>;
}

/** One round's secure-aggregation session, as the task announces it. */
export interface SecureSessionSpec {
  sessionNonce: Uint8Array;
  threshold: number;
  /** Every site of the round with the Ed25519 key it enrolled with. */
  siteKeys: { siteName: string; publicKey: Uint8Array }[];
}

export type DeclineReason = "budget-cap" | "data-invalid" | "unsupported" | "charge-mismatch";

export interface TaskDecline {
  taskId: string;
  studyId: string;
  reason: DeclineReason;
  message: string;
}

/** A site's answer to a study invitation. */
export interface InvitationAnswer {
  studyId: string;
  accepted: boolean;
  reason: DeclineReason | null;
  message: string;
}

export interface TaskResult {
  taskId: string;
  update: Float64Array;
  updateSha256: string;
  epsilon: number;
  delta: number;
  /** The site's Ed25519 signature over the submission statement (submission-statement.ts). */
  signature: Uint8Array;
}
