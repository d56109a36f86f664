/**
 * One secure-aggregation session: the study, the round, a fresh nonce, and the parameters every party
 * must agree on. All of it is hashed into a 32-byte binding that salts every derived key and prefixes
 * every signed payload, so a message, a share or a mask from another study, round or session — or from a
 * session with another threshold, vector length or list of sites — is useless here.
 */
import { createHash, randomBytes } from "node:crypto";
import { FedsynthError } from "../../errors.js";
import { PUBLIC_KEY_BYTES } from "../identity.js";
import { ByteWriter } from "./encoding.js";
import { checkThreshold } from "./threshold.js";

export const PROTOCOL_TAG = "fedsynth/secagg";
/**
 * Signed into every payload and the session binding, and checked first on every wire message: a party of
 * another version is refused with a clear error (decodeMessage), never summed with masks or digests that
 * do not match. 2: masks are AES-256-CTR keystreams (prg.ts) and a masked input is signed over a SHA-256
 * tree (messages.ts maskedInputDigest); version 1 used ChaCha20 and one SHA-256 of the vector.
 */
export const PROTOCOL_VERSION = 2;

export interface SessionContext {
  studyId: string;
  round: number;
  /** Fresh per session (the coordinator draws it with `newSessionNonce`), so a retried round is a new session. */
  sessionNonce: Uint8Array;
}

export interface SecAggParams {
  context: SessionContext;
  /** t: the fewest sites that must take part in every phase. See threshold.ts. */
  threshold: number;
  /** Words per input vector. */
  vectorLength: number;
  /** The study's sites and their long-term Ed25519 public keys; no other site can take part. */
  siteKeys: ReadonlyMap<string, Uint8Array>;
}

export interface Session {
  params: SecAggParams;
  /** The study's sites in protocol order. */
  sites: readonly string[];
  /** SHA-256 over the protocol tag and version, the context and every parameter. */
  binding: Uint8Array;
}

const utf8 = new TextEncoder();
const MAX_ID_BYTES = 255;

export function newSessionNonce(): Uint8Array {
  return new Uint8Array(randomBytes(16));
}

/**
 * The total order on sites the masks' signs follow: by the UTF-8 bytes of the id, so that every
 * implementation (not only JavaScript's UTF-16 comparison) agrees.
 */
export function compareSiteIds(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

export function sortSites(sites: Iterable<string>): string[] {
  return [...sites].sort(compareSiteIds);
}

function checkId(what: string, id: string): void {
  if (typeof id !== "string" || id.length === 0 || utf8.encode(id).length > MAX_ID_BYTES) {
    throw new FedsynthError("invalid-argument", `${what} must be 1 to ${MAX_ID_BYTES} bytes of text, not ${JSON.stringify(id)}`);
  }
}

export function checkContext(context: SessionContext): void {
  checkId("the study id", context.studyId);
  if (!Number.isInteger(context.round) || context.round < 0 || context.round > 0xffffffff) {
    throw new FedsynthError("invalid-argument", `the round must be a whole number from 0 to 2^32 − 1, not ${context.round}`);
  }
  if (!(context.sessionNonce instanceof Uint8Array) || context.sessionNonce.length < 16 || context.sessionNonce.length > 64) {
    throw new FedsynthError("invalid-argument", "the session nonce must be 16 to 64 random bytes", { hint: "draw it with newSessionNonce() for every session" });
  }
}

export function openSession(params: SecAggParams): Session {
  checkContext(params.context);
  const sites = sortSites(params.siteKeys.keys());
  for (const site of sites) {
    checkId("a site id", site);
    const key = params.siteKeys.get(site)!;
    if (!(key instanceof Uint8Array) || key.length !== PUBLIC_KEY_BYTES) {
      throw new FedsynthError("invalid-argument", `the identity key of site '${site}' must be a ${PUBLIC_KEY_BYTES}-byte Ed25519 public key`);
    }
  }
  checkThreshold(params.threshold, sites.length);
  if (!Number.isInteger(params.vectorLength) || params.vectorLength < 1 || params.vectorLength > 0xffffffff) {
    throw new FedsynthError("invalid-argument", `the vector length must be a whole number from 1 to 2^32 − 1, not ${params.vectorLength}`);
  }
  const w = new ByteWriter()
    .string(PROTOCOL_TAG + "/session")
    .u16(PROTOCOL_VERSION)
    .string(params.context.studyId)
    .u32(params.context.round)
    .bytes(params.context.sessionNonce)
    .u32(params.threshold)
    .u32(params.vectorLength)
    .u32(sites.length);
  for (const site of sites) w.string(site).bytes(params.siteKeys.get(site)!);
  const binding = new Uint8Array(createHash("sha256").update(w.finish()).digest());
  return { params, sites, binding };
}

export function sameContext(a: SessionContext, b: SessionContext): boolean {
  return a.studyId === b.studyId && a.round === b.round && Buffer.compare(Buffer.from(a.sessionNonce), Buffer.from(b.sessionNonce)) === 0;
}

/** Why a message's context is not this session's, or undefined if it is. */
export function contextMismatch(expected: SessionContext, got: SessionContext): string | undefined {
  if (got.studyId !== expected.studyId) return `it belongs to study '${got.studyId}', not '${expected.studyId}' (a replay from another study)`;
  if (got.round !== expected.round) return `it belongs to round ${got.round}, not ${expected.round} (a replay from another round)`;
  if (!sameContext(expected, got)) return `it belongs to another session of round ${expected.round} (a replay: the session nonce differs)`;
  return undefined;
}

/** SHA-256 of a list of sites under a label, for binding a view of the protocol into a signed payload. */
export function siteListDigest(session: Session, label: string, sites: readonly string[]): Uint8Array {
  const w = new ByteWriter().string(PROTOCOL_TAG + "/site-list/" + label).fixed(session.binding).strings(sites);
  return new Uint8Array(createHash("sha256").update(w.finish()).digest());
}
