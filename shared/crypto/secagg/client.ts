/**
 * A site's side of secure aggregation (Bonawitz et al. 2017, Fig. 4, the variant secure against a
 * malicious coordinator), as a state machine the transport drives with one call per phase:
 *
 *   advertiseKeys() → shareKeys(keyList) → maskInput(routedShares, x) → signSurvivors(survivorList)
 *   → unmask(consistencyProof)
 *
 * Each call checks everything the coordinator relayed before it uses it: every relayed key advertisement
 * and consistency signature against the identity keys the study lists, every share against the box it was
 * sealed in and the commitment its dealer signed, and the survivor list against the one this site signed.
 * Any failed check aborts the session for good (the site simply does not take part in the sum), and
 * every error names the phase and the site at fault.
 *
 * What this site reveals, and when: its input only masked; in Unmasking, for each site v it holds shares
 * of, either v's self-mask share (v survived) or v's key share (v dropped), never both — a second
 * unmasking request that would change any of those answers is refused.
 */
import { randomBytes, type KeyObject } from "node:crypto";
import { FedsynthError } from "../../errors.js";
import { bytesEqual, generateAgreementKeyPair, signDetached, verifyDetached, type AgreementKeyPair, type SigningKeyPair } from "../identity.js";
import { applyMasks, type MaskTerm } from "../prg.js";
import { splitSecret } from "../shamir.js";
import { SecAggError, quoteSite, type SecAggPhase } from "./errors.js";
import { openShares, pairwiseSeed, sealShares, selfMaskCommitment, shareCommitment, shareEncryptionKey, x25519Agree, x25519PrivateKey, type HeldShares, type ShareKind } from "./keys.js";
import {
  advertiseKeysPayload,
  consistencyPayload,
  keyListDigest,
  maskedInputDigest,
  maskedInputPayload,
  shareKeysPayload,
  unmaskSharesPayload,
  type AdvertiseKeys,
  type AdvertisedKeys,
  type ConsistencyProof,
  type ConsistencySignature,
  type KeyList,
  type MaskedInput,
  type RevealedShare,
  type RoutedShares,
  type ServerMessage,
  type ShareEnvelope,
  type ShareKeys,
  type SurvivorList,
  type UnmaskShares,
} from "./messages.js";
import { compareSiteIds, contextMismatch, openSession, siteListDigest, sortSites, type SecAggParams, type Session } from "./session.js";

export interface SecAggClientOptions {
  params: SecAggParams;
  siteId: string;
  /** The site's long-term Ed25519 key; its public half must be the one `params.siteKeys` lists. */
  identity: SigningKeyPair;
}

/** The phase whose call comes next, or where the session ended. */
export type ClientState = SecAggPhase | "done" | "aborted";

export class SecAggClient {
  readonly siteId: string;
  private readonly session: Session;
  private readonly identity: SigningKeyPair;
  private state: ClientState = "AdvertiseKeys";
  private abortReason?: string;

  private encryptionKeys?: AgreementKeyPair;
  private maskingKeys?: AgreementKeyPair;
  /** The two secret keys as OpenSSL keys for x25519Agree (importing one costs as much as ten agreements). */
  private agreementKeyObjects = new Map<Uint8Array, KeyObject>();
  private selfMaskSeed?: Uint8Array;
  /** U1 as this site saw it. */
  private keyList = new Map<string, AdvertisedKeys>();
  private keyListSites: string[] = [];
  private readonly encryptionSecrets = new Map<string, Uint8Array>();
  /** Shares this site holds, by dealer (its own included). */
  private readonly held = new Map<string, HeldShares>();
  private shareHolders: string[] = [];
  private survivors?: string[];
  private readonly revealed = new Map<string, ShareKind>();
  private unmaskResponse?: UnmaskShares;

  constructor(opts: SecAggClientOptions) {
    this.session = openSession(opts.params);
    this.siteId = opts.siteId;
    this.identity = opts.identity;
    const listed = opts.params.siteKeys.get(opts.siteId);
    if (!listed) {
      throw new SecAggError("invalid-argument", "AdvertiseKeys", opts.siteId, `${quoteSite(opts.siteId)} is not one of the study's sites`);
    }
    if (!bytesEqual(listed, opts.identity.publicKey)) {
      throw new SecAggError("invalid-argument", "AdvertiseKeys", opts.siteId, `the identity key of ${quoteSite(opts.siteId)} is not the one the study lists for it`, {
        hint: "the site's signing key must be the one it enrolled with",
      });
    }
  }

  get phase(): ClientState {
    return this.state;
  }

  private get threshold(): number {
    return this.session.params.threshold;
  }

  private fail(phase: SecAggPhase, site: string | undefined, message: string, code: FedsynthError["code"] = "invalid-argument", hint?: string): never {
    throw new SecAggError(code, phase, site, message, { hint });
  }

  private step<T>(phase: SecAggPhase, run: () => T): T {
    if (this.state === "aborted") {
      this.fail(phase, this.siteId, `${quoteSite(this.siteId)} aborted this session earlier (${this.abortReason}) and takes no further part`, "failed-precondition");
    }
    if (this.state !== phase) {
      this.fail(phase, this.siteId, `${quoteSite(this.siteId)} is at ${this.state === "done" ? "the end of the session" : `phase ${this.state}`}, not ${phase}`, "failed-precondition");
    }
    try {
      return run();
    } catch (err) {
      this.abort(err instanceof Error ? err.message : String(err));
      throw err;
    }
  }

  /** Ends the session for this site and forgets its secrets. */
  abort(reason = "aborted by the caller"): void {
    if (this.state === "aborted") return;
    this.state = "aborted";
    this.abortReason = reason;
    this.wipe();
  }

  private wipe(): void {
    this.encryptionKeys?.secretKey.fill(0);
    this.maskingKeys?.secretKey.fill(0);
    this.agreementKeyObjects.clear();
    this.selfMaskSeed?.fill(0);
    for (const s of this.encryptionSecrets.values()) s.fill(0);
    for (const h of this.held.values()) {
      h.keyShare.fill(0);
      h.selfMaskShare.fill(0);
    }
  }

  private checkFromServer(phase: SecAggPhase, m: ServerMessage, kind: ServerMessage["kind"]): void {
    if (m.kind !== kind) this.fail(phase, undefined, `${quoteSite(this.siteId)} expected a ${kind} message from the coordinator, not ${m.kind}`);
    const mismatch = contextMismatch(this.session.params.context, m.context);
    if (mismatch) this.fail(phase, undefined, `${quoteSite(this.siteId)} refuses the coordinator's ${kind}: ${mismatch}`);
  }

  /** Round 0: two fresh X25519 key pairs, signed with the site's identity key. */
  advertiseKeys(): AdvertiseKeys {
    return this.step("AdvertiseKeys", () => {
      this.encryptionKeys = generateAgreementKeyPair();
      this.maskingKeys = generateAgreementKeyPair();
      const fields = { siteId: this.siteId, encryptionKey: this.encryptionKeys.publicKey, maskingKey: this.maskingKeys.publicKey };
      const signature = signDetached(advertiseKeysPayload(this.session, fields), this.identity.secretKey);
      this.state = "ShareKeys";
      return { kind: "advertise-keys", context: this.session.params.context, ...fields, signature };
    });
  }

  /** Round 1: checks U1, then deals Shamir shares of s_sk and of a fresh self-mask seed b to every member. */
  shareKeys(list: KeyList): ShareKeys {
    return this.step("ShareKeys", () => {
      const phase = "ShareKeys";
      this.checkFromServer(phase, list, "key-list");
      const siteKeys = this.session.params.siteKeys;
      const seenKeys = new Set<string>();
      for (const a of list.advertisements) {
        const identityKey = siteKeys.get(a.siteId);
        if (!identityKey) this.fail(phase, a.siteId, `the key list names ${quoteSite(a.siteId)}, which is not one of the study's sites`);
        if (this.keyList.has(a.siteId)) this.fail(phase, a.siteId, `the key list names ${quoteSite(a.siteId)} twice`);
        if (!verifyDetached(advertiseKeysPayload(this.session, a), a.signature, identityKey)) {
          this.fail(phase, a.siteId, `the advertised keys of ${quoteSite(a.siteId)} carry a signature that does not verify against its identity key`, "invalid-argument", "the coordinator relayed altered keys, or keys from another session");
        }
        for (const key of [a.encryptionKey, a.maskingKey]) {
          const hex = Buffer.from(key).toString("hex");
          if (seenKeys.has(hex)) this.fail(phase, a.siteId, `${quoteSite(a.siteId)} advertises a public key that is already in the key list; every key must be fresh`);
          seenKeys.add(hex);
        }
        this.keyList.set(a.siteId, a);
      }
      const own = this.keyList.get(this.siteId);
      if (!own || !bytesEqual(own.encryptionKey, this.encryptionKeys!.publicKey) || !bytesEqual(own.maskingKey, this.maskingKeys!.publicKey)) {
        this.fail(phase, this.siteId, `the key list does not carry the keys ${quoteSite(this.siteId)} advertised`);
      }
      if (this.keyList.size < this.threshold) {
        this.fail(phase, undefined, `only ${this.keyList.size} site(s) advertised keys; this session needs at least ${this.threshold}`, "failed-precondition");
      }
      this.keyListSites = sortSites(this.keyList.keys());

      const seed = new Uint8Array(randomBytes(32));
      this.selfMaskSeed = seed;
      const n = this.keyListSites.length;
      const keyShares = splitSecret(this.maskingKeys!.secretKey, this.threshold, n);
      const seedShares = splitSecret(seed, this.threshold, n);
      const envelopes: ShareEnvelope[] = this.keyListSites.map((holder, i) => {
        const shares: HeldShares = { x: i + 1, keyShare: keyShares[i].y, selfMaskShare: seedShares[i].y };
        const keyShareCommitment = shareCommitment(this.session, "key", this.siteId, holder, { x: shares.x, y: shares.keyShare });
        const selfMaskShareCommitment = shareCommitment(this.session, "self-mask", this.siteId, holder, { x: shares.x, y: shares.selfMaskShare });
        if (holder === this.siteId) {
          this.held.set(holder, shares);
          return { recipient: holder, sealed: new Uint8Array(0), keyShareCommitment, selfMaskShareCommitment };
        }
        const secret = this.agree(phase, holder, this.encryptionKeys!.secretKey, this.keyList.get(holder)!.encryptionKey);
        this.encryptionSecrets.set(holder, secret);
        const sealed = sealShares(shareEncryptionKey(this.session, secret, this.siteId, holder), shares);
        shares.keyShare.fill(0);
        shares.selfMaskShare.fill(0);
        return { recipient: holder, sealed, keyShareCommitment, selfMaskShareCommitment };
      });
      const fields = {
        siteId: this.siteId,
        keyListDigest: keyListDigest(this.session, list.advertisements),
        selfMaskCommitment: selfMaskCommitment(this.session, this.siteId, seed),
        envelopes,
      };
      const signature = signDetached(shareKeysPayload(this.session, fields), this.identity.secretKey);
      this.state = "MaskedInput";
      return { kind: "share-keys", context: this.session.params.context, ...fields, signature };
    });
  }

  private agree(phase: SecAggPhase, peer: string, secretKey: Uint8Array, peerKey: Uint8Array): Uint8Array {
    try {
      // identity.ts's agreeSharedSecret, on OpenSSL (the same bytes; keys.test.ts).
      let key = this.agreementKeyObjects.get(secretKey);
      if (!key) {
        key = x25519PrivateKey(secretKey);
        this.agreementKeyObjects.set(secretKey, key);
      }
      return x25519Agree(key, peerKey);
    } catch (err) {
      return this.fail(phase, peer, `cannot agree a key with ${quoteSite(peer)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /**
   * Round 2: opens and checks the shares routed to this site (their dealers are U2), then masks the input:
   * y = x + PRG(b) + Σ_{v∈U2, v>u} PRG(s_uv) − Σ_{v∈U2, v<u} PRG(s_uv) (mod 2^32). `input` is not kept.
   */
  maskInput(routed: RoutedShares, input: Uint32Array): MaskedInput {
    return this.step("MaskedInput", () => {
      const phase = "MaskedInput";
      this.checkFromServer(phase, routed, "routed-shares");
      if (routed.recipient !== this.siteId) this.fail(phase, this.siteId, `the coordinator routed shares addressed to ${quoteSite(routed.recipient)} to ${quoteSite(this.siteId)}`);
      const length = this.session.params.vectorLength;
      if (!(input instanceof Uint32Array) || input.length !== length) {
        this.fail(phase, this.siteId, `the input of ${quoteSite(this.siteId)} must be a Uint32Array of ${length} words, not ${input instanceof Uint32Array ? input.length + " words" : typeof input}`);
      }
      const myX = this.keyListSites.indexOf(this.siteId) + 1;
      for (const r of routed.shares) {
        if (r.dealer === this.siteId) this.fail(phase, this.siteId, `the coordinator routed ${quoteSite(this.siteId)} its own shares back`);
        if (!this.keyList.has(r.dealer)) this.fail(phase, r.dealer, `the coordinator routed shares from ${quoteSite(r.dealer)}, which is not in the key list`);
        if (this.held.has(r.dealer)) this.fail(phase, r.dealer, `the coordinator routed shares from ${quoteSite(r.dealer)} twice`);
        const key = shareEncryptionKey(this.session, this.encryptionSecrets.get(r.dealer)!, r.dealer, this.siteId);
        const opened = openShares(key, r.sealed);
        if (!opened) {
          this.fail(phase, r.dealer, `the shares from ${quoteSite(r.dealer)} do not open: they were not sealed by it for ${quoteSite(this.siteId)} in this session, or were altered`);
        }
        if (opened.x !== myX) {
          this.fail(phase, r.dealer, `${quoteSite(r.dealer)} dealt ${quoteSite(this.siteId)} the share at x = ${opened.x}, but this site is member ${myX} of the key list it saw`, "invalid-argument", "the coordinator showed the sites different key lists");
        }
        const keyOk = bytesEqual(shareCommitment(this.session, "key", r.dealer, this.siteId, { x: opened.x, y: opened.keyShare }), r.keyShareCommitment);
        const seedOk = bytesEqual(shareCommitment(this.session, "self-mask", r.dealer, this.siteId, { x: opened.x, y: opened.selfMaskShare }), r.selfMaskShareCommitment);
        if (!keyOk || !seedOk) {
          this.fail(phase, r.dealer, `the shares ${quoteSite(r.dealer)} sealed for ${quoteSite(this.siteId)} do not match the commitments relayed with them`, "invalid-argument", "the dealer committed to other shares than it sent, or the coordinator altered the commitments");
        }
        this.held.set(r.dealer, opened);
      }
      this.shareHolders = sortSites(this.held.keys());
      if (this.shareHolders.length < this.threshold) {
        this.fail(phase, undefined, `only ${this.shareHolders.length} site(s) dealt shares (this one included); this session needs at least ${this.threshold}`, "failed-precondition");
      }

      const terms: MaskTerm[] = [{ seed: this.selfMaskSeed!, domain: "self-mask", sign: 1 }];
      for (const v of this.shareHolders) {
        if (v === this.siteId) continue;
        const shared = this.agree(phase, v, this.maskingKeys!.secretKey, this.keyList.get(v)!.maskingKey);
        terms.push({ seed: pairwiseSeed(this.session, shared, this.siteId, v), domain: "pairwise-mask", sign: compareSiteIds(v, this.siteId) > 0 ? 1 : -1 });
        shared.fill(0);
      }
      const masked = new Uint32Array(input);
      applyMasks(masked, terms);
      for (const t of terms.slice(1)) t.seed.fill(0);

      const shareHoldersDigest = siteListDigest(this.session, "share-holders", this.shareHolders);
      const payload = maskedInputPayload(this.session, { siteId: this.siteId, shareHoldersDigest, length, digest: maskedInputDigest(masked) });
      const signature = signDetached(payload, this.identity.secretKey);
      this.state = "ConsistencyCheck";
      return { kind: "masked-input", context: this.session.params.context, siteId: this.siteId, shareHoldersDigest, masked, signature };
    });
  }

  private survivorListFrom(phase: SecAggPhase, survivors: readonly string[]): string[] {
    const sorted = sortSites(survivors);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i] === sorted[i - 1]) this.fail(phase, sorted[i], `the survivor list names ${quoteSite(sorted[i])} twice`);
    }
    return sorted;
  }

  /** Round 3: signs U3 if it is a list of at least t share holders that includes this site. */
  signSurvivors(list: SurvivorList): ConsistencySignature {
    return this.step("ConsistencyCheck", () => {
      const phase = "ConsistencyCheck";
      this.checkFromServer(phase, list, "survivor-list");
      const survivors = this.survivorListFrom(phase, list.survivors);
      for (const s of survivors) {
        if (!this.held.has(s)) this.fail(phase, s, `the survivor list names ${quoteSite(s)}, which did not deal shares to ${quoteSite(this.siteId)} (it is not in U2)`);
      }
      if (!survivors.includes(this.siteId)) this.fail(phase, this.siteId, `the survivor list leaves out ${quoteSite(this.siteId)}, which sent its masked input`);
      if (survivors.length < this.threshold) {
        this.fail(phase, undefined, `the survivor list has ${survivors.length} site(s); this session needs at least ${this.threshold}`, "failed-precondition");
      }
      this.survivors = survivors;
      const signature = signDetached(consistencyPayload(this.session, this.siteId, survivors), this.identity.secretKey);
      this.state = "Unmasking";
      return { kind: "consistency-signature", context: this.session.params.context, siteId: this.siteId, signature };
    });
  }

  /**
   * Round 4: checks that at least t sites signed the very survivor list this site signed, then reveals
   * b-shares of the survivors and key shares of the share holders that sent no input.
   */
  unmask(proof: ConsistencyProof): UnmaskShares {
    if (this.state === "done") return this.repeatUnmask(proof);
    return this.step("Unmasking", () => {
      const phase = "Unmasking";
      this.checkFromServer(phase, proof, "consistency-proof");
      const survivors = this.survivorListFrom(phase, proof.survivors);
      const signed = this.survivors!;
      if (survivors.length !== signed.length || survivors.some((s, i) => s !== signed[i])) {
        this.fail(phase, undefined, `the coordinator asks ${quoteSite(this.siteId)} to unmask survivors [${survivors.join(", ")}] but it signed [${signed.join(", ")}]`, "invalid-argument", "the coordinator is showing sites different survivor lists; the site refuses to reveal anything");
      }
      const payloadOf = (site: string) => consistencyPayload(this.session, site, survivors);
      const signers = new Set<string>();
      for (const s of proof.signatures) {
        if (!survivors.includes(s.siteId)) this.fail(phase, s.siteId, `the proof carries a consistency signature from ${quoteSite(s.siteId)}, which is not in the survivor list`);
        if (signers.has(s.siteId)) this.fail(phase, s.siteId, `the proof carries two consistency signatures from ${quoteSite(s.siteId)}`);
        if (!verifyDetached(payloadOf(s.siteId), s.signature, this.session.params.siteKeys.get(s.siteId)!)) {
          this.fail(phase, s.siteId, `the consistency signature of ${quoteSite(s.siteId)} does not verify on the survivor list ${quoteSite(this.siteId)} signed`, "invalid-argument", "the coordinator showed that site a different survivor list, or altered its signature");
        }
        signers.add(s.siteId);
      }
      if (signers.size < this.threshold) {
        this.fail(phase, undefined, `only ${signers.size} site(s) signed the survivor list; ${quoteSite(this.siteId)} reveals shares only after at least ${this.threshold} have`, "failed-precondition");
      }
      const response = this.reveal(phase, survivors);
      this.state = "done";
      this.wipe();
      return response;
    });
  }

  private reveal(phase: SecAggPhase, survivors: readonly string[]): UnmaskShares {
    const inSum = new Set(survivors);
    const selfMaskShares: RevealedShare[] = [];
    const keyShares: RevealedShare[] = [];
    for (const dealer of this.shareHolders) {
      const kind: ShareKind = inSum.has(dealer) ? "self-mask" : "key";
      const before = this.revealed.get(dealer);
      if (before && before !== kind) {
        this.fail(phase, dealer, `${quoteSite(this.siteId)} already revealed the ${before} share of ${quoteSite(dealer)} and refuses to reveal its ${kind} share too: with both the coordinator could unmask that site's input`);
      }
      const h = this.held.get(dealer)!;
      const share = { dealer, x: h.x, share: (kind === "self-mask" ? h.selfMaskShare : h.keyShare).slice() };
      (kind === "self-mask" ? selfMaskShares : keyShares).push(share);
    }
    for (const s of selfMaskShares) this.revealed.set(s.dealer, "self-mask");
    for (const s of keyShares) this.revealed.set(s.dealer, "key");
    const fields = { siteId: this.siteId, survivorsDigest: siteListDigest(this.session, "survivors", survivors), selfMaskShares, keyShares };
    const signature = signDetached(unmaskSharesPayload(this.session, fields), this.identity.secretKey);
    this.unmaskResponse = { kind: "unmask-shares", context: this.session.params.context, ...fields, signature };
    return this.unmaskResponse;
  }

  /**
   * A repeated unmasking request (e.g. the answer was lost in transit) gets the same answer; one for a
   * different survivor list would flip some site from "survived" to "dropped" or back, and is refused.
   */
  private repeatUnmask(proof: ConsistencyProof): UnmaskShares {
    const phase = "Unmasking";
    const mismatch = proof.kind !== "consistency-proof" ? `it is a ${proof.kind} message` : contextMismatch(this.session.params.context, proof.context);
    if (mismatch) this.fail(phase, undefined, `${quoteSite(this.siteId)} refuses the coordinator's repeated unmasking request: ${mismatch}`);
    const asked = new Set(proof.survivors);
    const flipped = this.shareHolders.filter((d) => (asked.has(d) ? "self-mask" : "key") !== this.revealed.get(d));
    if (flipped.length > 0) {
      this.fail(phase, flipped[0], `${quoteSite(this.siteId)} already revealed its shares for this session and refuses a second unmasking request with a different survivor list: it would reveal both shares of ${flipped.map(quoteSite).join(", ")}`, "failed-precondition", "a coordinator that asks this is trying to unmask individual sites");
    }
    return this.unmaskResponse!;
  }
}
