/**
 * The privacy ledger's entries: plain JSON data, one line each when exported. Every entry has a place
 * in the chain (`seq`, `prevHash`), a time, a kind and a body, and its own `hash`; signatures sit
 * beside the hash, outside what it covers (see entry-hash.ts and signatures.ts).
 *
 * Keys and signatures are base64 text, hashes lower-case hex; times are milliseconds since the epoch
 * (the coordinator's clock), as everywhere else in fedsynth.
 */
import type { Mechanism } from "../privacy/mechanism.js";
import type { JsonValue } from "./canonical-json.js";

/** Written into the genesis entry: a reader that does not know this format must not guess. */
export const LEDGER_FORMAT = "fedsynth-ledger/1";
/** The genesis entry's prevHash: nothing comes before it. */
export const GENESIS_PREV_HASH = "0".repeat(64);

export type LedgerEntryKind = "genesis" | "enrolment" | "study-created" | "charge" | "release" | "refusal" | "head";

export interface PrivacyBudget {
  epsilon: number;
  delta: number;
}

/** The first entry: which ledger this is and whose key signs its heads. */
export interface GenesisBody {
  format: typeof LEDGER_FORMAT;
  ledgerId: string;
  /** The coordinator's Ed25519 public key (base64, 32 bytes): every head must verify with it. */
  coordinatorPublicKey: string;
}

/** A site joins, or replaces its key: its charges from here on must verify with this key. */
export interface EnrolmentBody {
  siteName: string;
  /** The site's Ed25519 public key (base64, 32 bytes). */
  publicKey: string;
  /** The site's X.509 client certificate, when it enrolled over mutual TLS. */
  certificatePem?: string;
  /** The most this site spends over all its studies (simple addition across studies), if it said. */
  cap?: PrivacyBudget;
}

export interface StudyCreatedBody {
  studyId: string;
  name: string;
  /** The study's public schema, as agreed by the consortium. */
  schema: JsonValue;
  engine: string;
  engineConfig?: JsonValue;
  /** Each site's budget for the whole study (the same for every site). */
  epsilon: number;
  delta: number;
  rounds: number;
  /** The invited sites: only they can be charged in this study. */
  sites: string[];
  /** A lower limit for some sites in this study (e.g. what is left under the site's own cap), if known. */
  siteCaps?: Record<string, PrivacyBudget>;
}

/**
 * What a site signs for one released update, before it leaves the site. It names no place in the
 * chain, so the site can sign it without knowing where the coordinator will put it; the taskId makes it
 * unique. `epsilonTask` is the charge of `mechanisms` alone and `epsilonStudyTotal` the site's whole
 * spend in the study including this charge, both at `delta` (the study's), as the site's accountant
 * computed them (site-agent/local-store.ts keeps the same fields).
 */
export interface ChargeStatement {
  siteName: string;
  studyId: string;
  round: number;
  taskId: string;
  mechanisms: Mechanism[];
  delta: number;
  epsilonTask: number;
  epsilonStudyTotal: number;
  /**
   * SHA-256 (hex) of the update bytes as sent; for a masked input (secure aggregation), the digest its
   * messages sign, a SHA-256 tree over its words (shared/crypto/secagg/messages.ts maskedInputDigest).
   */
  updateSha256: string;
}

/** A charge statement as the site handed it over: the statement and its signature (base64). */
export interface SignedCharge {
  charge: ChargeStatement;
  siteSignature: string;
}

export interface ChargeBody {
  charge: ChargeStatement;
  /** The coordinator's verdict. A rejected update still left the site, so it still counts as spent. */
  accepted: boolean;
  reason?: string;
}

/** A pooled model was released. */
export interface ReleaseBody {
  studyId: string;
  round: number;
  modelId?: string;
  modelSha256: string;
  /** The sites whose accepted updates are in the model. */
  contributors: string[];
}

/** Work that was refused, by the site or by the coordinator, without a charge. */
export interface RefusalBody {
  siteName: string;
  studyId: string;
  /** Null when a whole study was declined before any round. */
  round: number | null;
  by: "site" | "coordinator";
  reason: string;
  message?: string;
  taskId?: string;
}

/** The coordinator's signed commitment to the chain up to and including this entry. */
export type HeadBody = Record<string, never>;

interface EntryBase<K extends LedgerEntryKind, B> {
  seq: number;
  prevHash: string;
  at: number;
  kind: K;
  body: B;
  hash: string;
}

export type GenesisEntry = EntryBase<"genesis", GenesisBody>;
export type EnrolmentEntry = EntryBase<"enrolment", EnrolmentBody>;
export type StudyCreatedEntry = EntryBase<"study-created", StudyCreatedBody>;
export type ChargeEntry = EntryBase<"charge", ChargeBody> & { siteSignature: string };
export type ReleaseEntry = EntryBase<"release", ReleaseBody>;
export type RefusalEntry = EntryBase<"refusal", RefusalBody>;
export type HeadEntry = EntryBase<"head", HeadBody> & { coordinatorSignature: string };

export type LedgerEntry = GenesisEntry | EnrolmentEntry | StudyCreatedEntry | ChargeEntry | ReleaseEntry | RefusalEntry | HeadEntry;

/** Top-level fields outside the hash: the hash itself and the signatures, which are made over it or over the body. */
export const UNHASHED_FIELDS = ["hash", "siteSignature", "coordinatorSignature"] as const;
