/**
 * The coordinator's side of secure aggregation, as a state machine. For each phase the transport feeds it
 * the sites' messages (`receive…`, which refuses a bad message without changing anything else) and, when
 * enough have come or its deadline passes, closes the phase (`close…`), which yields what to send out —
 * or fails the round if fewer than t sites answered.
 *
 *   receiveAdvertisement* → closeAdvertisement() : KeyList to every member of U1
 *   receiveShareKeys*     → closeShareKeys()     : RoutedShares to each member of U2
 *   receiveMaskedInput*   → closeMaskedInput()   : SurvivorList (U3) to each member of U3
 *   receiveConsistency*   → closeConsistency()   : ConsistencyProof to each member of U4
 *   receiveUnmask*        → finish()             : the sum over U3
 *
 * Every message must come from a site of the study, be signed by its identity key over this session's
 * canonical payload, arrive in its phase, once, and from a site that took part in the phase before.
 *
 * INVARIANT: this object never holds any site's unmasked input. It sees inputs only masked, adds each
 * masked input into one running sum as it arrives and keeps no copy of it; it reconstructs the self-mask
 * seed b only of sites in U3 and the masking key s_sk only of sites in U2 \ U3, never both for one site
 * (`reconstructedKinds` enforces it), and removes masks only from the running sum. So the only unmasked
 * vector it ever holds is Σ_{u∈U3} x_u.
 *
 * Long vectors are added and unmasked with the help of a second thread (parallel.ts): a checked masked
 * input is handed to it (shared, not copied, when it came from decodeMessage; the caller must not write
 * into it afterwards) and added into the running sum while this thread checks the next one; closing
 * MaskedInput waits until every accepted input is in the sum.
 */
import type { KeyObject } from "node:crypto";
import { FedsynthError } from "../../errors.js";
import { bytesEqual, SIGNATURE_BYTES, verifyDetached } from "../identity.js";
import { addInto, applyMasks, type MaskTerm } from "../prg.js";
import { combineShares, type ShamirShare } from "../shamir.js";
import { SECAGG_PHASES, SecAggError, quoteSite, type SecAggPhase } from "./errors.js";
import { PARALLEL_MIN_WORDS, ParallelSum, warmUp } from "./parallel.js";
import {
  COMMITMENT_BYTES,
  pairwiseSeed,
  SEALED_SHARES_BYTES,
  SHARE_BYTES,
  selfMaskCommitment,
  shareCommitmentMatches,
  x25519Agree,
  x25519PrivateKey,
  x25519PublicKey,
  x25519PublicKeyOf,
  type ShareKind,
} from "./keys.js";
import {
  advertiseKeysPayload,
  consistencyPayload,
  keyListDigest,
  maskedInputDigest,
  maskedInputPayload,
  shareKeysPayload,
  unmaskSharesPayload,
  type AdvertisedKeys,
  type AdvertiseKeys,
  type ClientMessage,
  type ConsistencyProof,
  type ConsistencySignature,
  type KeyList,
  type MaskedInput,
  type RevealedShare,
  type RoutedShares,
  type ShareKeys,
  type SurvivorList,
  type UnmaskShares,
} from "./messages.js";
import { compareSiteIds, contextMismatch, openSession, siteListDigest, sortSites, type SecAggParams, type Session } from "./session.js";

export type ServerState = SecAggPhase | "done" | "failed";

export interface AggregateResult {
  /** Σ_{u∈U3} x_u (mod 2^32). */
  sum: Uint32Array;
  /** U3: the sites whose inputs are in the sum. */
  contributors: string[];
  /** U2 \ U3: sites that dealt shares but sent no masked input; their pairwise masks were removed. */
  droppedBeforeInput: string[];
  /** Sites in the sum that did not answer the unmasking request (their inputs still count). */
  silentInUnmasking: string[];
}

interface RevealedBy {
  selfMask: Map<string, RevealedShare>;
  key: Map<string, RevealedShare>;
}

export class SecAggServer {
  private readonly session: Session;
  private state: ServerState = "AdvertiseKeys";
  private failure?: string;

  private readonly advertisements = new Map<string, AdvertisedKeys>();
  private keyListSites: string[] = [];
  private keyListHash?: Uint8Array;
  private readonly dealt = new Map<string, ShareKeys>();
  private shareHolders: string[] = [];
  private shareHoldersHash?: Uint8Array;
  /** The running sum of masked inputs; see the invariant above. */
  private runningSum?: Uint32Array;
  /** The helper thread's lane for this session's running sum, for long vectors; see parallel.ts. */
  private parallel?: ParallelSum;
  private readonly masked = new Set<string>();
  private survivors: string[] = [];
  private survivorsHash?: Uint8Array;
  private readonly consistency = new Map<string, Uint8Array>();
  /** U2 \ U3, fixed when MaskedInput closes. */
  private droppedBeforeInput: string[] = [];
  /** U4 in protocol order, fixed when ConsistencyCheck closes: the sites whose unmasking answers are taken. */
  private consistencySigners: string[] = [];
  private readonly unmasked = new Map<string, RevealedBy>();
  private readonly reconstructedKinds = new Map<string, ShareKind>();

  constructor(params: SecAggParams) {
    this.session = openSession(params);
    if (params.vectorLength >= PARALLEL_MIN_WORDS) warmUp();
  }

  get phase(): ServerState {
    return this.state;
  }

  get threshold(): number {
    return this.session.params.threshold;
  }

  /** Sites expected to answer the open phase that have not (yet). */
  pending(): string[] {
    const answered = this.answered();
    return this.expected().filter((s) => !answered.has(s));
  }

  /** Whether the open phase has the t answers it needs to close. */
  canClose(): boolean {
    return this.answered().size >= this.threshold;
  }

  private expected(): readonly string[] {
    switch (this.state) {
      case "AdvertiseKeys":
        return this.session.sites;
      case "ShareKeys":
        return this.keyListSites;
      case "MaskedInput":
        return this.shareHolders;
      case "ConsistencyCheck":
        return this.survivors;
      case "Unmasking":
        return sortSites(this.consistency.keys());
      default:
        return [];
    }
  }

  private answered(): ReadonlySet<string> {
    switch (this.state) {
      case "AdvertiseKeys":
        return new Set(this.advertisements.keys());
      case "ShareKeys":
        return new Set(this.dealt.keys());
      case "MaskedInput":
        return this.masked;
      case "ConsistencyCheck":
        return new Set(this.consistency.keys());
      case "Unmasking":
        return new Set(this.unmasked.keys());
      default:
        return new Set();
    }
  }

  private refuse(phase: SecAggPhase, site: string | undefined, message: string, code: FedsynthError["code"] = "invalid-argument", hint?: string): never {
    throw new SecAggError(code, phase, site, message, { hint });
  }

  private failRound(phase: SecAggPhase, site: string | undefined, message: string, code: FedsynthError["code"] = "failed-precondition", hint?: string): never {
    this.state = "failed";
    this.failure = message;
    this.runningSum = undefined;
    this.parallel?.release();
    this.parallel = undefined;
    throw new SecAggError(code, phase, site, message, { hint });
  }

  private requirePhase(phase: SecAggPhase, what: string, site?: string): void {
    if (this.state === phase) return;
    if (this.state === "failed") this.refuse(phase, site, `the round has failed (${this.failure}); ${what} is not accepted`, "failed-precondition");
    const late = this.state === "done" || SECAGG_PHASES.indexOf(this.state) > SECAGG_PHASES.indexOf(phase);
    this.refuse(phase, site, `${what} arrived ${late ? "after the phase closed" : "before the phase opened"} (the session is at ${this.state === "done" ? "its end" : this.state})`, "failed-precondition");
  }

  /** The checks every client message goes through, in order of cost; the signature last. */
  private admit(phase: SecAggPhase, m: ClientMessage, kind: ClientMessage["kind"], allowed: readonly string[], answered: ReadonlySet<string>, payload: () => Uint8Array): void {
    const site = typeof m.siteId === "string" ? m.siteId : "?";
    const what = `a ${kind} message from ${quoteSite(site)}`;
    this.requirePhase(phase, what, site);
    if (m.kind !== kind) this.refuse(phase, site, `${quoteSite(site)} sent a ${m.kind} message where a ${kind} message was due`);
    const mismatch = contextMismatch(this.session.params.context, m.context);
    if (mismatch) this.refuse(phase, site, `${what} is refused: ${mismatch}`);
    const identityKey = this.session.params.siteKeys.get(site);
    if (!identityKey) this.refuse(phase, site, `${quoteSite(site)} is not one of the study's sites; its ${kind} message is refused`);
    if (!allowed.includes(site)) {
      const before = SECAGG_PHASES[SECAGG_PHASES.indexOf(phase) - 1];
      this.refuse(phase, site, `${quoteSite(site)} did not complete ${before}, so its ${kind} message cannot be used`, "failed-precondition");
    }
    if (answered.has(site)) this.refuse(phase, site, `a second ${kind} message from ${quoteSite(site)} is refused (one per site per phase)`, "already-exists");
    if (!(m.signature instanceof Uint8Array) || m.signature.length === 0) this.refuse(phase, site, `${what} is not signed`);
    if (m.signature.length !== SIGNATURE_BYTES) this.refuse(phase, site, `${what} has a malformed signature (${m.signature.length} bytes)`);
    if (!verifyDetached(payload(), m.signature, identityKey)) {
      this.refuse(phase, site, `the signature on ${what} does not verify against the site's identity key`, "invalid-argument", "the message was altered, or not signed by that site for this session");
    }
  }

  private closePhase(phase: SecAggPhase, answeredCount: number, what: string): void {
    this.requirePhase(phase, `closing ${phase}`);
    if (answeredCount < this.threshold) {
      const missing = this.pending();
      this.failRound(phase, undefined, `only ${answeredCount} site(s) ${what}; the round needs at least ${this.threshold} and cannot complete (no answer from ${missing.map(quoteSite).join(", ") || "nobody"})`, "failed-precondition", "too many sites dropped out; start a new session with the sites that are online");
    }
  }

  // --- Round 0: AdvertiseKeys ----------------------------------------------------------------------

  receiveAdvertisement(m: AdvertiseKeys): void {
    const phase = "AdvertiseKeys";
    this.admit(phase, m, "advertise-keys", this.session.sites, new Set(this.advertisements.keys()), () => advertiseKeysPayload(this.session, m));
    if (m.encryptionKey.length !== 32 || m.maskingKey.length !== 32) this.refuse(phase, m.siteId, `${quoteSite(m.siteId)} advertised keys that are not 32-byte X25519 public keys`);
    this.advertisements.set(m.siteId, { siteId: m.siteId, encryptionKey: m.encryptionKey, maskingKey: m.maskingKey, signature: m.signature });
  }

  closeAdvertisement(): KeyList {
    this.closePhase("AdvertiseKeys", this.advertisements.size, "advertised keys");
    this.keyListSites = sortSites(this.advertisements.keys());
    const advertisements = this.keyListSites.map((s) => this.advertisements.get(s)!);
    this.keyListHash = keyListDigest(this.session, advertisements);
    this.state = "ShareKeys";
    return { kind: "key-list", context: this.session.params.context, advertisements };
  }

  // --- Round 1: ShareKeys ----------------------------------------------------------------------------

  receiveShareKeys(m: ShareKeys): void {
    const phase = "ShareKeys";
    this.admit(phase, m, "share-keys", this.keyListSites, new Set(this.dealt.keys()), () => shareKeysPayload(this.session, m));
    const site = m.siteId;
    if (!bytesEqual(m.keyListDigest, this.keyListHash!)) {
      this.refuse(phase, site, `${quoteSite(site)} dealt its shares over a different key list than the coordinator sent`);
    }
    if (m.selfMaskCommitment.length !== COMMITMENT_BYTES) this.refuse(phase, site, `${quoteSite(site)} sent a malformed self-mask commitment`);
    if (m.envelopes.length !== this.keyListSites.length) {
      this.refuse(phase, site, `${quoteSite(site)} dealt ${m.envelopes.length} share envelope(s); the key list has ${this.keyListSites.length} members`);
    }
    m.envelopes.forEach((e, i) => {
      const holder = this.keyListSites[i];
      if (e.recipient !== holder) this.refuse(phase, site, `share envelope ${i + 1} of ${quoteSite(site)} is for ${quoteSite(e.recipient)}, not ${quoteSite(holder)} (envelopes follow the key list's order)`);
      const sealedBytes = holder === site ? 0 : SEALED_SHARES_BYTES;
      if (e.sealed.length !== sealedBytes) this.refuse(phase, site, `the shares ${quoteSite(site)} sealed for ${quoteSite(holder)} are ${e.sealed.length} bytes, not ${sealedBytes}`);
      if (e.keyShareCommitment.length !== COMMITMENT_BYTES || e.selfMaskShareCommitment.length !== COMMITMENT_BYTES) {
        this.refuse(phase, site, `${quoteSite(site)} sent malformed share commitments for ${quoteSite(holder)}`);
      }
    });
    this.dealt.set(site, m);
  }

  /** The shares to forward, by recipient; the coordinator cannot open them. */
  closeShareKeys(): Map<string, RoutedShares> {
    this.closePhase("ShareKeys", this.dealt.size, "dealt shares");
    this.shareHolders = sortSites(this.dealt.keys());
    this.shareHoldersHash = siteListDigest(this.session, "share-holders", this.shareHolders);
    const index = new Map(this.keyListSites.map((s, i) => [s, i]));
    const routed = new Map<string, RoutedShares>();
    for (const recipient of this.shareHolders) {
      const i = index.get(recipient)!;
      const shares = this.shareHolders
        .filter((dealer) => dealer !== recipient)
        .map((dealer) => {
          const e = this.dealt.get(dealer)!.envelopes[i];
          return { dealer, sealed: e.sealed, keyShareCommitment: e.keyShareCommitment, selfMaskShareCommitment: e.selfMaskShareCommitment };
        });
      routed.set(recipient, { kind: "routed-shares", context: this.session.params.context, recipient, shares });
    }
    this.parallel = ParallelSum.open(this.session.params.vectorLength);
    this.runningSum = this.parallel?.sum ?? new Uint32Array(this.session.params.vectorLength);
    this.state = "MaskedInput";
    return routed;
  }

  // --- Round 2: MaskedInput ----------------------------------------------------------------------------

  /** `digest`, when the caller has hashed `m.masked` already (maskedInputDigest), saves hashing it twice. */
  receiveMaskedInput(m: MaskedInput, digest?: Uint8Array): void {
    const phase = "MaskedInput";
    const length = this.session.params.vectorLength;
    this.admit(phase, m, "masked-input", this.shareHolders, this.masked, () => {
      if (!(m.masked instanceof Uint32Array) || m.masked.length !== length) {
        this.refuse(phase, m.siteId, `the masked input of ${quoteSite(m.siteId)} has ${m.masked?.length} words; this session sums vectors of ${length}`);
      }
      return maskedInputPayload(this.session, { siteId: m.siteId, shareHoldersDigest: m.shareHoldersDigest, length, digest: digest ?? maskedInputDigest(m.masked) });
    });
    if (!bytesEqual(m.shareHoldersDigest, this.shareHoldersHash!)) {
      this.refuse(phase, m.siteId, `${quoteSite(m.siteId)} masked its input against a different set of share holders than the coordinator routed shares from`);
    }
    if (this.parallel) {
      try {
        this.parallel.add(m.masked);
      } catch (err) {
        this.failRound(phase, undefined, `the masked input of ${quoteSite(m.siteId)} could not be added: ${err instanceof Error ? err.message : String(err)}`, "internal");
      }
    } else {
      addInto(this.runningSum!, m.masked);
    }
    this.masked.add(m.siteId);
  }

  /**
   * For a durable session (the coordinator's store): the sites whose masked inputs are in the running sum,
   * and a copy of the sum once every input handed to the helper is in it. The sum is masked (see the
   * invariant above); it is never an individual unmasked input.
   */
  maskedSumSnapshot(): { sites: string[]; sum: Uint32Array } {
    this.requirePhase("MaskedInput", "a snapshot of the running sum");
    this.settle("MaskedInput");
    return { sites: sortSites(this.masked), sum: this.runningSum!.slice() };
  }

  /**
   * Resumes MaskedInput from a snapshot (maskedSumSnapshot) taken by an earlier server of this session,
   * before this one has taken any masked input itself: the sites are taken as summed, once each.
   */
  restoreMaskedSum(snapshot: { sites: readonly string[]; sum: Uint32Array }): void {
    const phase = "MaskedInput";
    this.requirePhase(phase, "restoring the running sum");
    if (this.masked.size > 0) this.refuse(phase, undefined, "the running sum can only be restored before any masked input was taken", "failed-precondition");
    if (!(snapshot.sum instanceof Uint32Array) || snapshot.sum.length !== this.session.params.vectorLength) {
      this.refuse(phase, undefined, `the stored running sum has ${snapshot.sum?.length} words; this session sums vectors of ${this.session.params.vectorLength}`);
    }
    const sites = new Set(snapshot.sites);
    if (sites.size !== snapshot.sites.length) this.refuse(phase, undefined, "the stored running sum names a site twice");
    for (const site of sites) {
      if (!this.shareHolders.includes(site)) this.refuse(phase, site, `the stored running sum holds the input of ${quoteSite(site)}, which did not deal shares in this session`);
    }
    this.settle(phase);
    this.runningSum!.set(snapshot.sum);
    for (const site of sites) this.masked.add(site);
  }

  closeMaskedInput(): SurvivorList {
    this.closePhase("MaskedInput", this.masked.size, "sent a masked input");
    // The running sum is complete only once the helper has added every input handed to it.
    this.settle("MaskedInput");
    this.survivors = sortSites(this.masked);
    this.survivorsHash = siteListDigest(this.session, "survivors", this.survivors);
    this.droppedBeforeInput = this.shareHolders.filter((s) => !this.masked.has(s));
    this.state = "ConsistencyCheck";
    return { kind: "survivor-list", context: this.session.params.context, survivors: [...this.survivors] };
  }

  // --- Round 3: ConsistencyCheck -----------------------------------------------------------------------

  receiveConsistency(m: ConsistencySignature): void {
    this.admit("ConsistencyCheck", m, "consistency-signature", this.survivors, new Set(this.consistency.keys()), () => consistencyPayload(this.session, m.siteId, this.survivors));
    this.consistency.set(m.siteId, m.signature);
  }

  closeConsistency(): ConsistencyProof {
    this.closePhase("ConsistencyCheck", this.consistency.size, "signed the survivor list");
    this.consistencySigners = sortSites(this.consistency.keys());
    const signatures = this.consistencySigners.map((siteId) => ({ siteId, signature: this.consistency.get(siteId)! }));
    this.state = "Unmasking";
    return { kind: "consistency-proof", context: this.session.params.context, survivors: [...this.survivors], signatures };
  }

  // --- Round 4: Unmasking -------------------------------------------------------------------------------

  receiveUnmask(m: UnmaskShares): void {
    const phase = "Unmasking";
    // Both lists were fixed when their phases closed; sorting them again for each of n answers was a
    // measurable part of unmasking.
    this.admit(phase, m, "unmask-shares", this.consistencySigners, new Set(this.unmasked.keys()), () => unmaskSharesPayload(this.session, m));
    const holder = m.siteId;
    if (!bytesEqual(m.survivorsDigest, this.survivorsHash!)) this.refuse(phase, holder, `${quoteSite(holder)} answered for a different survivor list`);
    const selfMask = this.checkRevealed(phase, holder, "self-mask", m.selfMaskShares, this.survivors);
    const key = this.checkRevealed(phase, holder, "key", m.keyShares, this.droppedBeforeInput);
    this.unmasked.set(holder, { selfMask, key });
  }

  /** Exactly one share per expected dealer, each the one that dealer committed to for this holder. */
  private checkRevealed(phase: SecAggPhase, holder: string, kind: ShareKind, revealed: readonly RevealedShare[], dealers: readonly string[]): Map<string, RevealedShare> {
    // An answer normally names the expected dealers in protocol order, once each (as the client writes
    // it): then every one is wanted, none is twice and none is missing by construction, and those three
    // checks are skipped (n² set operations per round). Any other order takes them all.
    const inOrder = revealed.length === dealers.length && revealed.every((r, i) => r.dealer === dealers[i]);
    const wanted = inOrder ? undefined : new Set(dealers);
    const out = new Map<string, RevealedShare>();
    const holderIndex = this.keyListSites.indexOf(holder);
    for (const r of revealed) {
      if (wanted && !wanted.has(r.dealer)) {
        const why = kind === "self-mask" ? "which is not in the survivor list" : "which is in the survivor list or dealt no shares";
        this.refuse(phase, holder, `${quoteSite(holder)} revealed a ${kind} share of ${quoteSite(r.dealer)}, ${why}`);
      }
      if (wanted && out.has(r.dealer)) this.refuse(phase, holder, `${quoteSite(holder)} revealed two ${kind} shares of ${quoteSite(r.dealer)}`);
      const envelope = this.dealt.get(r.dealer)!.envelopes[holderIndex];
      const committed = kind === "key" ? envelope.keyShareCommitment : envelope.selfMaskShareCommitment;
      const valid = r.x === holderIndex + 1 && r.share.length === SHARE_BYTES && shareCommitmentMatches(this.session, kind, r.dealer, holder, { x: r.x, y: r.share }, committed);
      if (!valid) {
        this.refuse(phase, holder, `the ${kind} share of ${quoteSite(r.dealer)} that ${quoteSite(holder)} revealed is not the one ${quoteSite(r.dealer)} dealt it (it does not match the signed commitment)`);
      }
      out.set(r.dealer, r);
    }
    const missing = inOrder ? [] : dealers.filter((d) => !out.has(d));
    if (missing.length > 0) this.refuse(phase, holder, `${quoteSite(holder)} did not reveal its ${kind} share(s) of ${missing.map(quoteSite).join(", ")}`);
    return out;
  }

  /** Reconstructs the survivors' self-masks and the dropped sites' pairwise masks, removes them, returns the sum. */
  finish(): AggregateResult {
    const phase = "Unmasking";
    this.closePhase(phase, this.unmasked.size, "revealed their shares");
    const t = this.threshold;
    const responders = sortSites(this.unmasked.keys()).slice(0, t).map((s) => this.unmasked.get(s)!);
    const inSum = new Set(this.survivors);
    const dropped = this.shareHolders.filter((s) => !inSum.has(s));
    const sharesOf = (dealer: string, kind: ShareKind): ShamirShare[] =>
      responders.map((r) => (kind === "key" ? r.key : r.selfMask).get(dealer)!).map((r) => ({ x: r.x, y: r.share }));

    const terms: MaskTerm[] = [];
    for (const u of this.survivors) {
      this.markReconstructed(u, "self-mask");
      const commitment = this.dealt.get(u)!.selfMaskCommitment;
      const seed = this.reconstruct(u, "self-mask", sharesOf(u, "self-mask"), (b) => bytesEqual(selfMaskCommitment(this.session, u, b), commitment));
      terms.push({ seed, domain: "self-mask", sign: -1 });
    }
    // X25519 on OpenSSL (keys.ts: the bytes tweetnacl gives, ~15× faster), each survivor's key imported once.
    const survivorKeys = dropped.length === 0 ? new Map() : new Map(this.survivors.map((v) => [v, x25519PublicKey(this.advertisements.get(v)!.maskingKey)]));
    for (const u of dropped) {
      this.markReconstructed(u, "key");
      const maskingKey = this.advertisements.get(u)!.maskingKey;
      let imported: KeyObject | undefined;
      const secretKey = this.reconstruct(u, "key", sharesOf(u, "key"), (sk) => {
        imported = x25519PrivateKey(sk);
        return bytesEqual(x25519PublicKeyOf(imported), maskingKey);
      });
      const privateKey = imported ?? x25519PrivateKey(secretKey);
      for (const v of this.survivors) {
        const shared = x25519Agree(privateKey, survivorKeys.get(v)!);
        // v added +PRG(s_vu) if u > v and −PRG(s_vu) if u < v; take back exactly that.
        terms.push({ seed: pairwiseSeed(this.session, shared, u, v), domain: "pairwise-mask", sign: compareSiteIds(u, v) > 0 ? -1 : 1 });
        shared.fill(0);
      }
      secretKey.fill(0);
    }
    let sum = this.runningSum!;
    try {
      if (this.parallel) this.parallel.applyMasks(terms);
      else applyMasks(sum, terms);
    } catch (err) {
      this.failRound(phase, undefined, `the masks could not be removed: ${err instanceof Error ? err.message : String(err)}`, "internal");
    } finally {
      for (const term of terms) term.seed.fill(0);
    }
    // The caller gets an ordinary (unshared) array: some APIs refuse views of shared memory.
    if (this.parallel) sum = sum.slice();
    this.parallel?.release();
    this.parallel = undefined;
    this.runningSum = undefined;
    this.state = "done";
    const responded = new Set(this.unmasked.keys());
    return {
      sum,
      contributors: [...this.survivors],
      droppedBeforeInput: dropped,
      silentInUnmasking: this.survivors.filter((s) => !responded.has(s)),
    };
  }

  private settle(phase: SecAggPhase): void {
    try {
      this.parallel?.settle();
    } catch (err) {
      this.failRound(phase, undefined, `the running sum could not be completed: ${err instanceof Error ? err.message : String(err)}`, "internal");
    }
  }

  private markReconstructed(site: string, kind: ShareKind): void {
    const before = this.reconstructedKinds.get(site);
    if (before && before !== kind) {
      this.failRound("Unmasking", site, `internal error: the coordinator was about to reconstruct both the self-mask and the masking key of ${quoteSite(site)}`, "internal");
    }
    this.reconstructedKinds.set(site, kind);
  }

  private reconstruct(dealer: string, kind: ShareKind, shares: ShamirShare[], check: (secret: Uint8Array) => boolean): Uint8Array {
    try {
      return combineShares(shares, this.threshold, { check });
    } catch (err) {
      const what = kind === "key" ? "masking key" : "self-mask seed";
      return this.failRound("Unmasking", dealer, `the ${what} of ${quoteSite(dealer)} reconstructed from ${shares.length} verified shares does not match what ${quoteSite(dealer)} committed to: it dealt inconsistent shares, so the sum cannot be unmasked`, "invalid-argument", err instanceof Error ? err.message : undefined);
    }
  }
}
