/**
 * The messages of secure aggregation as typed values, the canonical bytes each client signs, and one wire
 * encoding for all of them (the transport can carry a message as an opaque byte string).
 *
 * A signed payload is: tag ‖ version ‖ message kind ‖ study ‖ round ‖ session nonce ‖ session binding ‖
 * the message's own fields, all length-prefixed (encoding.ts). The kind stops a signature made for one
 * phase from being replayed in another; the context and binding stop one from another study, round or
 * session. A receiver always rebuilds the payload from its own session, never from the message's.
 *
 * A masked input is signed over a digest rather than its words: hashing 4 MB natively is ~1000× cheaper
 * than running Ed25519's SHA-512 over it in JavaScript, and the digest binds it just the same. The digest
 * (maskedInputDigest) is a two-level SHA-256 tree, so that the coordinator can hash one input on both
 * cores; see there.
 */
import { createHash } from "node:crypto";
import { endianness } from "node:os";
import { FedsynthError } from "../../errors.js";
import { ByteReader, ByteWriter } from "./encoding.js";
import { hashLeaves } from "./parallel.js";
import { compareSiteIds, PROTOCOL_TAG, PROTOCOL_VERSION, type Session, type SessionContext } from "./session.js";

interface InSession {
  context: SessionContext;
}

/** Round 0, client → server: fresh X25519 keys for share encryption (c) and pairwise masks (s). */
export interface AdvertiseKeys extends InSession {
  kind: "advertise-keys";
  siteId: string;
  encryptionKey: Uint8Array;
  maskingKey: Uint8Array;
  signature: Uint8Array;
}

/** One site's signed advertisement, as the server relays it in the key list. */
export interface AdvertisedKeys {
  siteId: string;
  encryptionKey: Uint8Array;
  maskingKey: Uint8Array;
  signature: Uint8Array;
}

/** Round 0, server → clients: U1, every advertisement it accepted. */
export interface KeyList extends InSession {
  kind: "key-list";
  advertisements: AdvertisedKeys[];
}

/** The shares a dealer made for one holder: sealed for the holder, and committed to for the server. */
export interface ShareEnvelope {
  recipient: string;
  /** Empty for the dealer's own shares, which never leave it. */
  sealed: Uint8Array;
  keyShareCommitment: Uint8Array;
  selfMaskShareCommitment: Uint8Array;
}

/** Round 1, client → server. */
export interface ShareKeys extends InSession {
  kind: "share-keys";
  siteId: string;
  /** The key list (U1) this site dealt its shares over. */
  keyListDigest: Uint8Array;
  /** Commitment to the self-mask seed b, checked when b is reconstructed. */
  selfMaskCommitment: Uint8Array;
  /** One per member of U1, in protocol order, the dealer's own included. */
  envelopes: ShareEnvelope[];
  signature: Uint8Array;
}

export interface RoutedShare {
  dealer: string;
  sealed: Uint8Array;
  keyShareCommitment: Uint8Array;
  selfMaskShareCommitment: Uint8Array;
}

/** Round 1, server → each client of U2: the shares every other member of U2 dealt it. */
export interface RoutedShares extends InSession {
  kind: "routed-shares";
  recipient: string;
  shares: RoutedShare[];
}

/** Round 2, client → server: y = x + PRG(b) ± Σ PRG(s_uv) (mod 2^32). */
export interface MaskedInput extends InSession {
  kind: "masked-input";
  siteId: string;
  /** The share holders (U2) this site masked against. */
  shareHoldersDigest: Uint8Array;
  masked: Uint32Array;
  signature: Uint8Array;
}

/** Round 3, server → clients of U3: the sites whose masked inputs it will sum. */
export interface SurvivorList extends InSession {
  kind: "survivor-list";
  survivors: string[];
}

/** Round 3, client → server: the site's signature on the survivor list. */
export interface ConsistencySignature extends InSession {
  kind: "consistency-signature";
  siteId: string;
  signature: Uint8Array;
}

/** Round 4, server → clients of U4: the survivor list with at least t signatures on it. */
export interface ConsistencyProof extends InSession {
  kind: "consistency-proof";
  survivors: string[];
  signatures: { siteId: string; signature: Uint8Array }[];
}

export interface RevealedShare {
  dealer: string;
  x: number;
  share: Uint8Array;
}

/** Round 4, client → server: b-shares of survivors, s_sk-shares of sites that dropped — never both for one site. */
export interface UnmaskShares extends InSession {
  kind: "unmask-shares";
  siteId: string;
  survivorsDigest: Uint8Array;
  selfMaskShares: RevealedShare[];
  keyShares: RevealedShare[];
  signature: Uint8Array;
}

export type ClientMessage = AdvertiseKeys | ShareKeys | MaskedInput | ConsistencySignature | UnmaskShares;
export type ServerMessage = KeyList | RoutedShares | SurvivorList | ConsistencyProof;

/** Whether a decoded message is one a site sends (the others only the coordinator sends). */
export function isClientMessage(m: SecAggMessage): m is ClientMessage {
  return m.kind !== "key-list" && m.kind !== "routed-shares" && m.kind !== "survivor-list" && m.kind !== "consistency-proof";
}
export type SecAggMessage = ClientMessage | ServerMessage;
export type MessageKind = SecAggMessage["kind"];

// --- what clients sign ---------------------------------------------------------------------------

function signedHeader(session: Session, kind: string): ByteWriter {
  const c = session.params.context;
  return new ByteWriter().string(PROTOCOL_TAG).u16(PROTOCOL_VERSION).string(kind).string(c.studyId).u32(c.round).bytes(c.sessionNonce).fixed(session.binding);
}

/** Digest of the key list (U1) a site deals its shares over: the sites and their keys, in protocol order. */
export function keyListDigest(session: Session, advertisements: readonly AdvertisedKeys[]): Uint8Array {
  const sorted = [...advertisements].sort((a, b) => compareSiteIds(a.siteId, b.siteId));
  const w = new ByteWriter().string(PROTOCOL_TAG + "/key-list").fixed(session.binding).u32(sorted.length);
  for (const a of sorted) w.string(a.siteId).bytes(a.encryptionKey).bytes(a.maskingKey);
  return new Uint8Array(createHash("sha256").update(w.finish()).digest());
}

export function advertiseKeysPayload(session: Session, m: Pick<AdvertiseKeys, "siteId" | "encryptionKey" | "maskingKey">): Uint8Array {
  return signedHeader(session, "advertise-keys").string(m.siteId).bytes(m.encryptionKey).bytes(m.maskingKey).finish();
}

export function shareKeysPayload(session: Session, m: Omit<ShareKeys, "kind" | "context" | "signature">): Uint8Array {
  const w = signedHeader(session, "share-keys").string(m.siteId).bytes(m.keyListDigest).bytes(m.selfMaskCommitment).u32(m.envelopes.length);
  for (const e of m.envelopes) w.string(e.recipient).bytes(e.sealed).bytes(e.keyShareCommitment).bytes(e.selfMaskShareCommitment);
  return w.finish();
}

const LITTLE_ENDIAN = endianness() === "LE";

/** The leaves of the masked-input digest: 256 KiB (65,536 words) of the vector each, the last one shorter. */
export const DIGEST_LEAF_BYTES = 1 << 18;

/**
 * The digest a masked input is signed over (and its signed charge, as updateSha256, commits to):
 *
 *   SHA-256( "fedsynth/secagg/masked-input-digest" ‖ u32 words ‖ SHA-256(leaf 0) ‖ … ‖ SHA-256(leaf k−1) )
 *
 * where the leaves are the vector's bytes (its words, little-endian as on the wire) cut into consecutive
 * DIGEST_LEAF_BYTES pieces, k = ⌈4·words / DIGEST_LEAF_BYTES⌉, and the label is length-prefixed as in
 * every signed payload (encoding.ts). The length fixes the cut, so two vectors with one digest would
 * need a SHA-256 collision at the root or in a leaf: it binds the vector as one SHA-256 does. Unlike one
 * SHA-256, which is a single sequential chain, its leaves can be hashed on several threads at once: the
 * coordinator hashes every masked input it receives, and with helper threads it shares the leaves of a
 * long one among them (parallel.ts hashLeaves). The work is the same (one more SHA-256 of 32·k bytes).
 * (Protocol version 1 signed one SHA-256 of the bytes.)
 */
export function maskedInputDigest(masked: Uint32Array): Uint8Array {
  let bytes = new Uint8Array(masked.buffer, masked.byteOffset, masked.byteLength);
  if (!LITTLE_ENDIAN) bytes = new Uint8Array(Buffer.from(bytes).swap32());
  const leaves = hashLeaves(bytes, DIGEST_LEAF_BYTES);
  const head = new ByteWriter().string(PROTOCOL_TAG + "/masked-input-digest").u32(masked.length).finish();
  return new Uint8Array(createHash("sha256").update(head).update(leaves).digest());
}

/** `digest` is `maskedInputDigest(masked)`, passed in so the caller hashes the 4 MB once. */
export function maskedInputPayload(session: Session, m: { siteId: string; shareHoldersDigest: Uint8Array; length: number; digest: Uint8Array }): Uint8Array {
  return signedHeader(session, "masked-input").string(m.siteId).bytes(m.shareHoldersDigest).u32(m.length).bytes(m.digest).finish();
}

/** What a site signs in the consistency check: context ‖ "consistency" ‖ the sorted survivor list. */
export function consistencyPayload(session: Session, siteId: string, survivors: readonly string[]): Uint8Array {
  return signedHeader(session, "consistency").string(siteId).strings(survivors).finish();
}

function writeRevealed(w: ByteWriter, list: readonly RevealedShare[]): void {
  w.u32(list.length);
  for (const r of list) w.string(r.dealer).u8(r.x).bytes(r.share);
}

export function unmaskSharesPayload(session: Session, m: Omit<UnmaskShares, "kind" | "context" | "signature">): Uint8Array {
  const w = signedHeader(session, "unmask-shares").string(m.siteId).bytes(m.survivorsDigest);
  writeRevealed(w, m.selfMaskShares);
  writeRevealed(w, m.keyShares);
  return w.finish();
}

// --- wire encoding -------------------------------------------------------------------------------

function writeMessage(m: SecAggMessage): ByteWriter {
  const w = new ByteWriter().string(PROTOCOL_TAG).u16(PROTOCOL_VERSION).string(m.kind).string(m.context.studyId).u32(m.context.round).bytes(m.context.sessionNonce);
  switch (m.kind) {
    case "advertise-keys":
      return w.string(m.siteId).bytes(m.encryptionKey).bytes(m.maskingKey).bytes(m.signature);
    case "key-list":
      w.u32(m.advertisements.length);
      for (const a of m.advertisements) w.string(a.siteId).bytes(a.encryptionKey).bytes(a.maskingKey).bytes(a.signature);
      return w;
    case "share-keys":
      w.string(m.siteId).bytes(m.keyListDigest).bytes(m.selfMaskCommitment).u32(m.envelopes.length);
      for (const e of m.envelopes) w.string(e.recipient).bytes(e.sealed).bytes(e.keyShareCommitment).bytes(e.selfMaskShareCommitment);
      return w.bytes(m.signature);
    case "routed-shares":
      w.string(m.recipient).u32(m.shares.length);
      for (const s of m.shares) w.string(s.dealer).bytes(s.sealed).bytes(s.keyShareCommitment).bytes(s.selfMaskShareCommitment);
      return w;
    case "masked-input":
      return w.string(m.siteId).bytes(m.shareHoldersDigest).words(m.masked).bytes(m.signature);
    case "survivor-list":
      return w.strings(m.survivors);
    case "consistency-signature":
      return w.string(m.siteId).bytes(m.signature);
    case "consistency-proof":
      w.strings(m.survivors).u32(m.signatures.length);
      for (const s of m.signatures) w.string(s.siteId).bytes(s.signature);
      return w;
    case "unmask-shares":
      w.string(m.siteId).bytes(m.survivorsDigest);
      writeRevealed(w, m.selfMaskShares);
      writeRevealed(w, m.keyShares);
      return w.bytes(m.signature);
  }
}

export function encodeMessage(m: SecAggMessage): Uint8Array {
  return writeMessage(m).finish();
}

/** Bytes `encodeMessage` would produce, without copying a masked vector to find out. */
export function encodedSize(m: SecAggMessage): number {
  return writeMessage(m).length;
}

function readRevealed(r: ByteReader): RevealedShare[] {
  const n = r.count(10);
  const out: RevealedShare[] = [];
  for (let i = 0; i < n; i++) out.push({ dealer: r.string(), x: r.u8(), share: r.bytes() });
  return out;
}

/** Parses a wire message; its context and signature are checked by the client or server receiving it. */
export function decodeMessage(bytes: Uint8Array): SecAggMessage {
  const r = new ByteReader(bytes, "secure-aggregation message");
  if (r.string() !== PROTOCOL_TAG) throw new FedsynthError("invalid-argument", "not a secure-aggregation message (wrong protocol tag)");
  const version = r.u16();
  if (version !== PROTOCOL_VERSION) {
    throw new FedsynthError("invalid-argument", `secure-aggregation message of protocol version ${version}; this build speaks version ${PROTOCOL_VERSION}`, {
      hint: "run the same fedsynth version on the coordinator and the sites",
    });
  }
  const kind = r.string();
  const context: SessionContext = { studyId: r.string(), round: r.u32(), sessionNonce: r.bytes() };
  let m: SecAggMessage;
  switch (kind) {
    case "advertise-keys":
      m = { kind, context, siteId: r.string(), encryptionKey: r.bytes(), maskingKey: r.bytes(), signature: r.bytes() };
      break;
    case "key-list": {
      const n = r.count(16);
      const advertisements: AdvertisedKeys[] = [];
      for (let i = 0; i < n; i++) advertisements.push({ siteId: r.string(), encryptionKey: r.bytes(), maskingKey: r.bytes(), signature: r.bytes() });
      m = { kind, context, advertisements };
      break;
    }
    case "share-keys": {
      const siteId = r.string();
      const keyListDigest = r.bytes();
      const selfMaskCommitment = r.bytes();
      const n = r.count(16);
      const envelopes: ShareEnvelope[] = [];
      for (let i = 0; i < n; i++) envelopes.push({ recipient: r.string(), sealed: r.bytes(), keyShareCommitment: r.bytes(), selfMaskShareCommitment: r.bytes() });
      m = { kind, context, siteId, keyListDigest, selfMaskCommitment, envelopes, signature: r.bytes() };
      break;
    }
    case "routed-shares": {
      const recipient = r.string();
      const n = r.count(16);
      const shares: RoutedShare[] = [];
      for (let i = 0; i < n; i++) shares.push({ dealer: r.string(), sealed: r.bytes(), keyShareCommitment: r.bytes(), selfMaskShareCommitment: r.bytes() });
      m = { kind, context, recipient, shares };
      break;
    }
    case "masked-input":
      m = { kind, context, siteId: r.string(), shareHoldersDigest: r.bytes(), masked: r.words(), signature: r.bytes() };
      break;
    case "survivor-list":
      m = { kind, context, survivors: r.strings() };
      break;
    case "consistency-signature":
      m = { kind, context, siteId: r.string(), signature: r.bytes() };
      break;
    case "consistency-proof": {
      const survivors = r.strings();
      const n = r.count(8);
      const signatures: { siteId: string; signature: Uint8Array }[] = [];
      for (let i = 0; i < n; i++) signatures.push({ siteId: r.string(), signature: r.bytes() });
      m = { kind, context, survivors, signatures };
      break;
    }
    case "unmask-shares": {
      const siteId = r.string();
      const survivorsDigest = r.bytes();
      const selfMaskShares = readRevealed(r);
      const keyShares = readRevealed(r);
      m = { kind, context, siteId, survivorsDigest, selfMaskShares, keyShares, signature: r.bytes() };
      break;
    }
    default:
      throw new FedsynthError("invalid-argument", `unknown secure-aggregation message kind '${kind}'`);
  }
  r.end();
  return m;
}
