/**
 * A secure-aggregation session survives the loss of the coordinator at any point: the session is driven
 * with real site clients, what the coordinator stores (each accepted message's bytes, each running masked
 * sum with its sites, each phase as it opens) is kept as it would be, and after every single step the
 * session is rebuilt from that alone and driven on. Every run unmasks exactly the survivors' sum, the
 * rebuilt session asks a returning site what the lost one asked it, and a resent message is recognised.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { generateSigningKeyPair } from "../shared/crypto/identity.js";
import { SecAggClient, decodeMessage, encodeMessage, newSessionNonce, type ClientMessage, type KeyList, type RoutedShares, type SurvivorList, type ConsistencyProof, type SecAggParams } from "../shared/crypto/secagg/index.js";
import { PARALLEL_MIN_WORDS } from "../shared/crypto/secagg/parallel.js";
import { SecureRound, phaseOf, type Relay, type StoredSession } from "./secure-round.js";

const SITES = ["cleveland", "hungary", "switzerland", "va"];

function setup(vectorLength: number) {
  const identities = new Map(SITES.map((s) => [s, generateSigningKeyPair()]));
  const params: SecAggParams = {
    context: { studyId: "study-1", round: 1, sessionNonce: newSessionNonce() }, threshold: 3, vectorLength,
    siteKeys: new Map(SITES.map((s) => [s, identities.get(s)!.publicKey])),
  };
  const clients = new Map(SITES.map((s) => [s, new SecAggClient({ params, siteId: s, identity: identities.get(s)! })]));
  const inputs = new Map(SITES.map((s) => [s, new Uint32Array(randomBytes(4 * vectorLength).buffer)]));
  return { params, clients, inputs };
}

/** Drives one session; after step `crashAt` (1-based), the coordinator is lost and rebuilt from its store. */
function drive(vectorLength: number, crashAt: number | undefined, droppedBeforeInput?: string) {
  const { params, clients, inputs } = setup(vectorLength);
  let round = new SecureRound(params, 60_000, 0);
  const stored: StoredSession = { phase: "AdvertiseKeys", summedSites: [], runningSum: null, messages: [] };
  let steps = 0;
  let resumed = false;
  let lastRelays: Relay[] = [];
  const crash = () => {
    if (++steps !== crashAt) return;
    const copy: StoredSession = structuredClone(stored);
    round = SecureRound.resume(params, 60_000, 0, copy);
    resumed = true;
    expect(round.phase).toBe(stored.phase);
    // A site that comes back is asked again exactly what the lost coordinator asked it, if it has not answered.
    for (const r of lastRelays) {
      const again = round.rejoin(r.siteName);
      if (round.pending().includes(r.siteName)) expect(again).toEqual([r.message]);
      else expect(again).toEqual([]);
    }
  };
  const give = (site: string, m: ClientMessage) => {
    const bytes = encodeMessage(m);
    const decoded = decodeMessage(bytes) as ClientMessage;
    round.receive(site, decoded);
    if (decoded.kind === "masked-input") {
      const sum = round.maskedSum();
      stored.summedSites = sum.sites;
      stored.runningSum = sum.bytes;
    } else {
      stored.messages.push({ phase: phaseOf(decoded.kind), siteName: site, message: bytes });
      round.remember(site, decoded, bytes);
      expect(round.isRepeat(site, decoded, bytes)).toBe(true);
    }
    crash();
  };
  const gone = new Set<string>();
  const close = () => {
    const step = round.advance(0, (s) => gone.has(s));
    expect(step.closed).toBe(true);
    if (!step.result) {
      stored.phase = round.phase;
      lastRelays = step.relays;
      crash();
    }
    return step;
  };
  const relayed = <T>(step: { relays: Relay[] }, site: string) => decodeMessage(step.relays.find((r) => r.siteName === site)!.message) as T;

  for (const s of SITES) give(s, clients.get(s)!.advertiseKeys());
  const keyList = close();
  for (const s of SITES) give(s, clients.get(s)!.shareKeys(relayed<KeyList>(keyList, s)));
  const routed = close();
  const survivors = SITES.filter((s) => s !== droppedBeforeInput);
  if (droppedBeforeInput) gone.add(droppedBeforeInput);
  for (const s of survivors) give(s, clients.get(s)!.maskInput(relayed<RoutedShares>(routed, s), inputs.get(s)!));
  const list = close();
  for (const s of survivors) give(s, clients.get(s)!.signSurvivors(relayed<SurvivorList>(list, s)));
  const proof = close();
  for (const s of survivors) give(s, clients.get(s)!.unmask(relayed<ConsistencyProof>(proof, s)));
  const end = close();

  const expected = new Uint32Array(vectorLength);
  for (const s of survivors) {
    const x = inputs.get(s)!;
    for (let i = 0; i < vectorLength; i++) expected[i] = (expected[i] + x[i]) >>> 0;
  }
  return { result: end.result!, expected, steps, resumed, survivors };
}

describe("SecureRound rebuilt from what the coordinator stores", () => {
  it("unmasks exactly the survivors' sum whatever step the coordinator was lost after", () => {
    const { steps } = drive(500, undefined);
    for (let crashAt = 1; crashAt <= steps; crashAt++) {
      const dropped = crashAt % 2 === 0 ? "switzerland" : undefined;
      const run = drive(500, crashAt, dropped);
      if (crashAt <= run.steps) expect(run.resumed, `step ${crashAt}`).toBe(true);
      expect(run.result.contributors, `step ${crashAt}`).toEqual(run.survivors);
      expect(run.result.droppedBeforeInput).toEqual(dropped ? [dropped] : []);
      expect(Buffer.from(run.result.sum.buffer, run.result.sum.byteOffset, run.result.sum.byteLength).equals(Buffer.from(run.expected.buffer)), `step ${crashAt}`).toBe(true);
    }
  });

  it("restores a long running sum (the helper thread's) in the middle of MaskedInput", () => {
    const length = PARALLEL_MIN_WORDS + 16;
    // Steps: 4 advertisements, close, 4 deals, close, then the masked inputs: lost after the second of them.
    const run = drive(length, 12);
    expect(run.resumed).toBe(true);
    expect(Buffer.from(run.result.sum.buffer, run.result.sum.byteOffset, run.result.sum.byteLength).equals(Buffer.from(run.expected.buffer))).toBe(true);
  });

  it("refuses to resume from a stored message that is not what its site signed", () => {
    const { params, clients } = setup(100);
    const round = new SecureRound(params, 60_000, 0);
    const stored: StoredSession = { phase: "ShareKeys", summedSites: [], runningSum: null, messages: [] };
    for (const s of SITES) {
      const bytes = encodeMessage(clients.get(s)!.advertiseKeys());
      round.receive(s, decodeMessage(bytes) as ClientMessage);
      stored.messages.push({ phase: "AdvertiseKeys", siteName: s, message: bytes });
    }
    expect(SecureRound.resume(params, 60_000, 0, structuredClone(stored)).phase).toBe("ShareKeys");
    const tampered = structuredClone(stored);
    const m = tampered.messages[1].message;
    m[m.length - 1] ^= 1;
    expect(() => SecureRound.resume(params, 60_000, 0, tampered)).toThrow();
    // A running sum for a site that never dealt shares is refused as well.
    expect(() => SecureRound.resume(params, 60_000, 0, { ...structuredClone(stored), phase: "MaskedInput", summedSites: ["zurich"], runningSum: new Uint8Array(400) })).toThrow();
  });
});
