/**
 * One round's secure-aggregation session at the coordinator: the SecAggServer state machine, fed the
 * sites' messages and advanced phase by phase. A phase closes as soon as every site it waits for has
 * answered or has gone away, or when its deadline passes; closing yields the messages to relay, and the
 * last one the unmasked sum. Fewer than t answers fail the round (SecAggError from the server).
 *
 * The server adds each masked input into one running sum and keeps nothing else of it, so no individual
 * update exists here in memory, and none is ever written to the store.
 */
import { SecAggServer, encodeMessage, type AggregateResult, type ClientMessage, type SecAggParams } from "../shared/crypto/secagg/index.js";
import { FedsynthError } from "../shared/errors.js";

export interface Relay {
  siteName: string;
  message: Uint8Array;
}

export interface Advance {
  relays: Relay[];
  /** Set once the last phase has closed. */
  result?: AggregateResult;
}

export class SecureRound {
  private readonly server: SecAggServer;
  private phaseStartedAt: number;
  /** Sites whose stream closed during the session: a phase does not wait for them. */
  private readonly departed = new Set<string>();

  constructor(readonly params: SecAggParams, private readonly phaseTimeoutMs: number, now: number) {
    this.server = new SecAggServer(params);
    this.phaseStartedAt = now;
  }

  get phase(): string {
    return this.server.phase;
  }

  /** A site's stream closed (it stays departed until it reconnects). */
  depart(siteName: string): void {
    this.departed.add(siteName);
  }

  rejoin(siteName: string): void {
    this.departed.delete(siteName);
  }

  /** Sites the open phase still waits for. */
  pending(): string[] {
    return this.server.pending();
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

  /**
   * Closes the open phase if it can close now: all its sites answered, or the ones left departed or have
   * `given up` their task, or its deadline passed. A site that has not connected yet (after a restart,
   * say) is waited for until the deadline. The next phase then waits for the relays to reach its sites.
   */
  advance(now: number, givenUp: (siteName: string) => boolean): Advance {
    const relays: Relay[] = [];
    const phase = this.server.phase;
    if (phase === "done" || phase === "failed") return { relays };
    const waiting = this.server.pending().filter((s) => !this.departed.has(s) && !givenUp(s));
    if (waiting.length > 0 && now < this.phaseStartedAt + this.phaseTimeoutMs) return { relays };
    this.phaseStartedAt = now;
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
        return { relays, result: this.server.finish() };
    }
    return { relays };
  }
}
