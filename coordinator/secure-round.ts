/**
 * One round's secure-aggregation session at the coordinator: the SecAggServer state machine, fed the
 * sites' messages and advanced phase by phase. A phase closes as soon as every site it waits for has
 * answered or has gone away, or when its deadline passes; closing yields the messages to relay, and the
 * last one the unmasked sum. Fewer than t answers fail the round (SecAggError from the server).
 *
 * The server adds each masked input into one running sum and keeps nothing else of it, so no individual
 * update exists here in memory, and none is ever written to the store.
 *
 * The session is durable: the coordinator stores every message accepted here (signed by its site, and
 * public to the coordinator anyway), each new running sum with the sites in it in the transaction that
 * charges them, and each phase as it opens, before its relays go out. `SecureRound.resume` rebuilds the
 * server from that after a restart or a takeover: it replays the messages of each closed phase through the
 * same checks, takes the stored running sum in place of the masked inputs, and closes the phases the store
 * says were closed, which yields exactly what was relayed before (every close is a function of the
 * messages accepted before it). A site that reconnects is sent its relay of the open phase again; a message
 * it sends again is recognised by its bytes and not taken twice.
 */
import { SECAGG_PHASES, SecAggServer, encodeMessage, decodeMessage, isClientMessage, type AggregateResult, type ClientMessage, type SecAggParams, type SecAggPhase } from "../shared/crypto/secagg/index.js";
import { wordsFromLittleEndian, wordsToLittleEndian } from "../shared/crypto/secagg/encoding.js";
import { bytesEqual } from "../shared/crypto/identity.js";
import { FedsynthError } from "../shared/errors.js";

export interface Relay {
  siteName: string;
  message: Uint8Array;
}

export interface Advance {
  relays: Relay[];
  /** Whether a phase closed (the new phase must be stored before the relays go out). */
  closed: boolean;
  /** Set once the last phase has closed. */
  result?: AggregateResult;
}

/** What the store holds of a session (see SecAggSessionRecord and SecAggMessageRecord). */
export interface StoredSession {
  phase: string;
  summedSites: string[];
  runningSum: Uint8Array | null;
  messages: { phase: string; siteName: string; message: Uint8Array }[];
}

/** The phase a site's message belongs to. */
export function phaseOf(kind: ClientMessage["kind"]): SecAggPhase {
  switch (kind) {
    case "advertise-keys":
      return "AdvertiseKeys";
    case "share-keys":
      return "ShareKeys";
    case "masked-input":
      return "MaskedInput";
    case "consistency-signature":
      return "ConsistencyCheck";
    case "unmask-shares":
      return "Unmasking";
  }
}

export class SecureRound {
  private readonly server: SecAggServer;
  private phaseStartedAt: number;
  /** Sites whose stream closed during the session: a phase does not wait for them. */
  private readonly departed = new Set<string>();
  /** The bytes of every message taken (masked inputs aside), by phase and site: a resent one is recognised. */
  private readonly accepted = new Map<SecAggPhase, Map<string, Uint8Array>>();
  /** What the last close relayed to each site: the open phase's question, asked again of a site that reconnects. */
  private lastRelays = new Map<string, Uint8Array>();

  constructor(readonly params: SecAggParams, private readonly phaseTimeoutMs: number, now: number) {
    this.server = new SecAggServer(params);
    this.phaseStartedAt = now;
  }

  /**
   * Rebuilds a session from the store. Throws (SecAggError or FedsynthError) if the stored state does not
   * fit the session: then it cannot be resumed.
   */
  static resume(params: SecAggParams, phaseTimeoutMs: number, now: number, stored: StoredSession): SecureRound {
    const target = SECAGG_PHASES.indexOf(stored.phase as SecAggPhase);
    if (target < 0) throw new FedsynthError("internal", `the stored secure-aggregation session is at an unknown phase '${stored.phase}'`);
    const round = new SecureRound(params, phaseTimeoutMs, now);
    for (let i = 0; i <= target; i++) {
      const phase = SECAGG_PHASES[i];
      if (phase === "MaskedInput") {
        if (stored.runningSum) round.server.restoreMaskedSum({ sites: stored.summedSites, sum: sumFromBytes(stored.runningSum) });
        else if (stored.summedSites.length > 0) throw new FedsynthError("internal", "the stored secure-aggregation session names summed sites but has no running sum");
      } else {
        for (const m of stored.messages.filter((s) => s.phase === phase)) {
          const message = decodeMessage(m.message);
          if (!isClientMessage(message) || phaseOf(message.kind) !== phase) {
            throw new FedsynthError("internal", `the stored ${phase} message of site ${m.siteName} is a ${message.kind} message`);
          }
          round.receive(m.siteName, message);
          round.remember(m.siteName, message, m.message);
        }
      }
      if (i < target) round.close(phase);
    }
    return round;
  }

  get phase(): string {
    return this.server.phase;
  }

  /** A site's stream closed (it stays departed until it reconnects). */
  depart(siteName: string): void {
    this.departed.add(siteName);
  }

  /** A site is back: what it must be asked again (the open phase's relay, if it has not answered it). */
  rejoin(siteName: string): Uint8Array[] {
    this.departed.delete(siteName);
    const relay = this.lastRelays.get(siteName);
    return relay && this.server.pending().includes(siteName) ? [relay] : [];
  }

  /** Sites the open phase still waits for. */
  pending(): string[] {
    return this.server.pending();
  }

  /** Whether these are the bytes of a message already taken from the site (it sent it again after a reconnection). */
  isRepeat(siteName: string, m: ClientMessage, bytes: Uint8Array): boolean {
    const before = this.accepted.get(phaseOf(m.kind))?.get(siteName);
    return !!before && bytesEqual(before, bytes);
  }

  /** Checks and takes one site's message; throws (SecAggError) if the server refuses it, changing nothing. */
  receive(siteName: string, m: ClientMessage, maskedDigest?: Uint8Array): void {
    if (m.siteId !== siteName) {
      throw new FedsynthError("permission-denied", `site ${siteName} sent a secure-aggregation message in the name of ${m.siteId}`);
    }
    switch (m.kind) {
      case "advertise-keys":
        return this.server.receiveAdvertisement(m);
      case "share-keys":
        return this.server.receiveShareKeys(m);
      case "masked-input":
        return this.server.receiveMaskedInput(m, maskedDigest);
      case "consistency-signature":
        return this.server.receiveConsistency(m);
      case "unmask-shares":
        return this.server.receiveUnmask(m);
    }
  }

  /** Keeps the bytes of a message taken (not of a masked input: those live only in the running sum). */
  remember(siteName: string, m: ClientMessage, bytes: Uint8Array): void {
    if (m.kind === "masked-input") return;
    const phase = phaseOf(m.kind);
    let byPhase = this.accepted.get(phase);
    if (!byPhase) this.accepted.set(phase, (byPhase = new Map()));
    byPhase.set(siteName, bytes.slice());
  }

  /** The running masked sum and the sites in it, as the store keeps it (uint32 little-endian). */
  maskedSum(): { sites: string[]; bytes: Uint8Array } {
    const { sites, sum } = this.server.maskedSumSnapshot();
    return { sites, bytes: sumToBytes(sum) };
  }

  /**
   * Closes the open phase if it can close now: all its sites answered, or the ones left departed or have
   * `given up` their task, or its deadline passed. A site that has not connected yet (after a restart,
   * say) is waited for until the deadline. The next phase then waits for the relays to reach its sites.
   */
  advance(now: number, givenUp: (siteName: string) => boolean): Advance {
    const phase = this.server.phase;
    if (phase === "done" || phase === "failed") return { relays: [], closed: false };
    const waiting = this.server.pending().filter((s) => !this.departed.has(s) && !givenUp(s));
    if (waiting.length > 0 && now < this.phaseStartedAt + this.phaseTimeoutMs) return { relays: [], closed: false };
    this.phaseStartedAt = now;
    if (phase === "Unmasking") return { relays: [], closed: true, result: this.server.finish() };
    return { relays: this.close(phase), closed: true };
  }

  private close(phase: SecAggPhase): Relay[] {
    const relays: Relay[] = [];
    const toEach = (sites: string[], message: Uint8Array) => sites.forEach((siteName) => relays.push({ siteName, message }));
    switch (phase) {
      case "AdvertiseKeys": {
        const list = this.server.closeAdvertisement();
        toEach(list.advertisements.map((a) => a.siteId), encodeMessage(list));
        break;
      }
      case "ShareKeys":
        for (const [siteName, routed] of this.server.closeShareKeys()) relays.push({ siteName, message: encodeMessage(routed) });
        break;
      case "MaskedInput": {
        const list = this.server.closeMaskedInput();
        toEach(list.survivors, encodeMessage(list));
        break;
      }
      case "ConsistencyCheck": {
        const proof = this.server.closeConsistency();
        toEach(proof.signatures.map((s) => s.siteId), encodeMessage(proof));
        break;
      }
      case "Unmasking":
        throw new FedsynthError("internal", "the Unmasking phase ends the session; it is not closed with relays");
    }
    this.lastRelays = new Map(relays.map((r) => [r.siteName, r.message]));
    return relays;
  }
}

function sumToBytes(sum: Uint32Array): Uint8Array {
  // The snapshot is the session's own copy, so a view of it is safe to store.
  return wordsToLittleEndian(sum);
}

function sumFromBytes(bytes: Uint8Array): Uint32Array {
  if (bytes.byteLength % 4 !== 0) throw new FedsynthError("internal", `the stored running sum has ${bytes.byteLength} bytes, not a whole number of 32-bit words`);
  return wordsFromLittleEndian(bytes, new Uint32Array(bytes.byteLength / 4));
}
