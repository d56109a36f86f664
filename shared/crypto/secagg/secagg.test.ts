import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { FedsynthError } from "../../errors.js";
import { generateAgreementKeyPair, generateSigningKeyPair, signDetached, type SigningKeyPair } from "../identity.js";
import { SecAggClient } from "./client.js";
import { SecAggError } from "./errors.js";
import {
  consistencyPayload,
  decodeMessage,
  encodeMessage,
  encodedSize,
  shareKeysPayload,
  unmaskSharesPayload,
  type ConsistencyProof,
  type KeyList,
  type MaskedInput,
  type RoutedShares,
  type SurvivorList,
} from "./messages.js";
import { PARALLEL_MIN_WORDS } from "./parallel.js";
import { SecAggServer } from "./server.js";
import { newSessionNonce, openSession, type SecAggParams } from "./session.js";
import { defaultThreshold } from "./threshold.js";

const NAMES = ["va", "cleveland", "hungary", "switzerland", "basel", "zurich", "bern", "geneva", "lyon", "paris", "rome", "oslo"];

interface Study {
  sites: string[];
  identities: Map<string, SigningKeyPair>;
  params: SecAggParams;
}

function makeStudy(n: number, opts: { threshold?: number; vectorLength?: number; round?: number; studyId?: string; identities?: Map<string, SigningKeyPair> } = {}): Study {
  const sites = NAMES.slice(0, n);
  const identities = opts.identities ?? new Map(sites.map((s) => [s, generateSigningKeyPair()]));
  return {
    sites,
    identities,
    params: {
      context: { studyId: opts.studyId ?? "study-1", round: opts.round ?? 1, sessionNonce: newSessionNonce() },
      threshold: opts.threshold ?? defaultThreshold(n),
      vectorLength: opts.vectorLength ?? 1000,
      siteKeys: new Map(sites.map((s) => [s, identities.get(s)!.publicKey])),
    },
  };
}

/** One session driven step by step, with every message passing through the real server. */
class Run {
  readonly server: SecAggServer;
  readonly clients: Map<string, SecAggClient>;
  readonly inputs: Map<string, Uint32Array>;

  constructor(readonly study: Study) {
    this.server = new SecAggServer(study.params);
    this.clients = new Map(study.sites.map((s) => [s, new SecAggClient({ params: study.params, siteId: s, identity: study.identities.get(s)! })]));
    this.inputs = new Map(study.sites.map((s) => [s, new Uint32Array(randomBytes(4 * study.params.vectorLength).buffer)]));
  }

  client(site: string): SecAggClient {
    return this.clients.get(site)!;
  }

  advertise(sites = this.study.sites): KeyList {
    for (const s of sites) this.server.receiveAdvertisement(this.client(s).advertiseKeys());
    return this.server.closeAdvertisement();
  }

  share(keyList: KeyList, sites: readonly string[]): Map<string, RoutedShares> {
    for (const s of sites) this.server.receiveShareKeys(this.client(s).shareKeys(keyList));
    return this.server.closeShareKeys();
  }

  mask(routed: Map<string, RoutedShares>, sites: readonly string[]): SurvivorList {
    for (const s of sites) this.server.receiveMaskedInput(this.client(s).maskInput(routed.get(s)!, this.inputs.get(s)!));
    return this.server.closeMaskedInput();
  }

  consist(list: SurvivorList, sites: readonly string[]): ConsistencyProof {
    for (const s of sites) this.server.receiveConsistency(this.client(s).signSurvivors(list));
    return this.server.closeConsistency();
  }

  unmask(proof: ConsistencyProof, sites: readonly string[]) {
    for (const s of sites) this.server.receiveUnmask(this.client(s).unmask(proof));
    return this.server.finish();
  }

  expectedSum(sites: readonly string[]): Uint32Array {
    const out = new Uint32Array(this.study.params.vectorLength);
    for (const s of sites) {
      const x = this.inputs.get(s)!;
      for (let i = 0; i < out.length; i++) out[i] = (out[i] + x[i]) >>> 0;
    }
    return out;
  }

  /** The whole protocol, with sites dropping at the given points. */
  all(drop: { beforeShareKeys?: string[]; afterShareKeys?: string[]; afterMaskedInput?: string[] } = {}) {
    const without = (list: readonly string[], gone: string[] = []) => list.filter((s) => !gone.includes(s));
    const keyList = this.advertise();
    const dealers = without(this.study.sites, drop.beforeShareKeys);
    const routed = this.share(keyList, dealers);
    const masked = without(dealers, drop.afterShareKeys);
    const list = this.mask(routed, masked);
    const signers = without(masked, drop.afterMaskedInput);
    const proof = this.consist(list, signers);
    return { result: this.unmask(proof, signers), contributors: masked };
  }
}

function thrown(f: () => unknown): SecAggError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(SecAggError);
    return err as SecAggError;
  }
  throw new Error("expected an error, got none");
}

/** Every Uint32Array reachable from an object (through fields, maps and sets): what a server holds. */
function heldVectors(root: unknown): Uint32Array[] {
  const held: Uint32Array[] = [];
  const seen = new Set<unknown>();
  const walk = (v: unknown): void => {
    if (v === null || typeof v !== "object" || seen.has(v)) return;
    seen.add(v);
    if (v instanceof Uint32Array) held.push(v);
    else if (ArrayBuffer.isView(v)) return;
    else if (v instanceof Map) for (const [k, x] of v) (walk(k), walk(x));
    else if (v instanceof Set) for (const x of v) walk(x);
    else for (const x of Object.values(v)) walk(x);
  };
  walk(root);
  return held;
}

describe("secure aggregation: the sum is exact", () => {
  for (const n of [5, 10]) {
    it(`n = ${n}, no dropout`, () => {
      const run = new Run(makeStudy(n));
      const { result, contributors } = run.all();
      expect(result.sum).toEqual(run.expectedSum(run.study.sites));
      expect(result.contributors).toEqual([...contributors].sort());
      expect(result.droppedBeforeInput).toEqual([]);
    });

    it(`n = ${n}, a third drop after ShareKeys (their pairwise masks are reconstructed and removed)`, () => {
      const run = new Run(makeStudy(n));
      const gone = run.study.sites.slice(0, Math.floor(n / 3));
      const { result, contributors } = run.all({ afterShareKeys: gone });
      expect(result.sum).toEqual(run.expectedSum(contributors));
      expect(result.droppedBeforeInput).toEqual([...gone].sort());
    });

    it(`n = ${n}, a third drop after MaskedInput (their inputs still count)`, () => {
      const run = new Run(makeStudy(n));
      const gone = run.study.sites.slice(1, 1 + Math.floor(n / 3));
      const { result } = run.all({ afterMaskedInput: gone });
      expect(result.sum).toEqual(run.expectedSum(run.study.sites));
      expect(result.silentInUnmasking).toEqual([...gone].sort());
    });
  }

  it("n = 10, dropouts at every phase at once, on a vector longer than the PRG's chunk", () => {
    const run = new Run(makeStudy(10, { threshold: 6, vectorLength: 40_001 }));
    const { result, contributors } = run.all({ beforeShareKeys: ["va"], afterShareKeys: ["bern", "zurich"], afterMaskedInput: ["oslo", "paris"].filter((s) => run.study.sites.includes(s)) });
    expect(contributors).toHaveLength(7);
    expect(result.sum).toEqual(run.expectedSum(contributors));
  });

  it("n = 7, a vector long enough for the helper thread: dropouts before and after MaskedInput", () => {
    const run = new Run(makeStudy(7, { vectorLength: PARALLEL_MIN_WORDS * 2 + 333 }));
    const { result, contributors } = run.all({ afterShareKeys: ["va"], afterMaskedInput: ["bern"] });
    expect(contributors).toHaveLength(6);
    expect(result.sum).toEqual(run.expectedSum(contributors));
    expect(result.droppedBeforeInput).toEqual(["va"]);
    expect(result.silentInUnmasking).toEqual(["bern"]);
    // Summed in shared memory, handed back in an ordinary array.
    expect(result.sum.buffer).not.toBeInstanceOf(SharedArrayBuffer);
  });

  it("a long masked input arrives in shared memory and is neither kept nor moved nor changed", () => {
    const run = new Run(makeStudy(4, { vectorLength: PARALLEL_MIN_WORDS + 1 }));
    const routed = run.share(run.advertise(), run.study.sites);
    const wire = (m: MaskedInput) => decodeMessage(encodeMessage(m)) as MaskedInput;
    const messages = new Map(run.study.sites.map((s) => [s, wire(run.client(s).maskInput(routed.get(s)!, run.inputs.get(s)!))]));
    const tampered = { ...messages.get("va")!, masked: Uint32Array.from(messages.get("va")!.masked) };
    tampered.masked[3] ^= 1;
    expect(() => run.server.receiveMaskedInput(tampered)).toThrow(/does not verify/);
    for (const s of run.study.sites) {
      const m = messages.get(s)!;
      const before = Uint32Array.from(m.masked);
      expect(m.masked.buffer).toBeInstanceOf(SharedArrayBuffer);
      run.server.receiveMaskedInput(m);
      expect(m.masked).toEqual(before);
    }
    const list = run.server.closeMaskedInput();
    // What the server holds is one vector, the running sum.
    const held = heldVectors(run.server);
    expect(held).toHaveLength(1);
    expect(held[0].length).toBe(PARALLEL_MIN_WORDS + 1);
    expect([...messages.values()].some((m) => held[0].buffer === m.masked.buffer)).toBe(false);
    const proof = run.consist(list, run.study.sites);
    expect(run.unmask(proof, run.study.sites).sum).toEqual(run.expectedSum(run.study.sites));
  });

  it("n = 3, the smallest federation with a dropout (t = 2)", () => {
    const run = new Run(makeStudy(3));
    const { result, contributors } = run.all({ afterShareKeys: ["hungary"] });
    expect(contributors).toEqual(["va", "cleveland"]);
    expect(result.sum).toEqual(run.expectedSum(contributors));
  });

  it("the coordinator never keeps a masked input, only the running sum", () => {
    const run = new Run(makeStudy(4));
    const routed = run.share(run.advertise(), run.study.sites);
    const received: Uint32Array[] = [];
    for (const s of run.study.sites) {
      const m = run.client(s).maskInput(routed.get(s)!, run.inputs.get(s)!);
      received.push(m.masked);
      run.server.receiveMaskedInput(m);
    }
    const held = heldVectors(run.server);
    expect(held).toHaveLength(1);
    expect(received.some((m) => held[0] === m || held[0].buffer === m.buffer)).toBe(false);
  });

  it("every message survives the wire encoding (the session runs on decoded messages)", () => {
    const wire = <T extends Parameters<typeof encodeMessage>[0]>(m: T): T => {
      const bytes = encodeMessage(m);
      expect(encodedSize(m)).toBe(bytes.length);
      return decodeMessage(bytes) as T;
    };
    const study = makeStudy(5);
    const run = new Run(study);
    for (const s of study.sites) run.server.receiveAdvertisement(wire(run.client(s).advertiseKeys()));
    const keyList = wire(run.server.closeAdvertisement());
    for (const s of study.sites.slice(0, 4)) run.server.receiveShareKeys(wire(run.client(s).shareKeys(keyList)));
    const routed = run.server.closeShareKeys();
    for (const s of study.sites.slice(0, 4)) run.server.receiveMaskedInput(wire(run.client(s).maskInput(wire(routed.get(s)!), run.inputs.get(s)!)));
    const list = wire(run.server.closeMaskedInput());
    for (const s of study.sites.slice(0, 4)) run.server.receiveConsistency(wire(run.client(s).signSurvivors(list)));
    const proof = wire(run.server.closeConsistency());
    for (const s of study.sites.slice(0, 4)) run.server.receiveUnmask(wire(run.client(s).unmask(proof)));
    expect(run.server.finish().sum).toEqual(run.expectedSum(study.sites.slice(0, 4)));
  });
});

describe("secure aggregation: too many dropouts", () => {
  it("fails cleanly when fewer than t sites send masked inputs", () => {
    const run = new Run(makeStudy(6)); // t = 4
    const routed = run.share(run.advertise(), run.study.sites);
    for (const s of run.study.sites.slice(0, 3)) run.server.receiveMaskedInput(run.client(s).maskInput(routed.get(s)!, run.inputs.get(s)!));
    expect(run.server.canClose()).toBe(false);
    expect(run.server.pending()).toEqual(["basel", "zurich", "switzerland"].sort());
    const err = thrown(() => run.server.closeMaskedInput());
    expect(err.code).toBe("failed-precondition");
    expect(err.phase).toBe("MaskedInput");
    expect(err.message).toMatch(/MaskedInput: only 3 site\(s\) sent a masked input; the round needs at least 4 and cannot complete \(no answer from site 'basel', site 'switzerland', site 'zurich'\)/);
    expect(run.server.phase).toBe("failed");
    expect(() => run.server.receiveMaskedInput(run.client("basel").maskInput(routed.get("basel")!, run.inputs.get("basel")!))).toThrow(/the round has failed/);
  });

  it("fails cleanly when fewer than t sites answer the unmasking", () => {
    const run = new Run(makeStudy(6));
    const list = run.mask(run.share(run.advertise(), run.study.sites), run.study.sites);
    const proof = run.consist(list, run.study.sites);
    for (const s of run.study.sites.slice(0, 3)) run.server.receiveUnmask(run.client(s).unmask(proof));
    expect(() => run.server.finish()).toThrow(/Unmasking: only 3 site\(s\) revealed their shares; the round needs at least 4/);
  });

  it("fails cleanly when fewer than t sites advertise keys", () => {
    const run = new Run(makeStudy(5)); // t = 4
    for (const s of run.study.sites.slice(0, 3)) run.server.receiveAdvertisement(run.client(s).advertiseKeys());
    expect(() => run.server.closeAdvertisement()).toThrow(/AdvertiseKeys: only 3 site\(s\) advertised keys; the round needs at least 4/);
  });
});

describe("secure aggregation: the server refuses bad messages", () => {
  it("a tampered masked input (and the round still completes without it)", () => {
    const run = new Run(makeStudy(5));
    const routed = run.share(run.advertise(), run.study.sites);
    const honest = run.study.sites.filter((s) => s !== "hungary");
    for (const s of honest) run.server.receiveMaskedInput(run.client(s).maskInput(routed.get(s)!, run.inputs.get(s)!));
    const tampered = run.client("hungary").maskInput(routed.get("hungary")!, run.inputs.get("hungary")!);
    tampered.masked[17] ^= 1;
    const err = thrown(() => run.server.receiveMaskedInput(tampered));
    expect(err.message).toMatch(/MaskedInput: the signature on a masked-input message from site 'hungary' does not verify against the site's identity key/);
    expect(err.site).toBe("hungary");
    const list = run.server.closeMaskedInput();
    expect(list.survivors).not.toContain("hungary");
    const proof = run.consist(list, honest);
    expect(run.unmask(proof, honest).sum).toEqual(run.expectedSum(honest));
  });

  it("a bad signature, an unsigned message, a malformed signature", () => {
    const run = new Run(makeStudy(4));
    const stranger = generateSigningKeyPair();
    const ad = run.client("va").advertiseKeys();
    const forged = { ...ad, signature: signDetached(new Uint8Array(10), stranger.secretKey) };
    expect(() => run.server.receiveAdvertisement(forged)).toThrow(/AdvertiseKeys: the signature on a advertise-keys message from site 'va' does not verify/);
    expect(() => run.server.receiveAdvertisement({ ...ad, signature: new Uint8Array(0) })).toThrow(/AdvertiseKeys: a advertise-keys message from site 'va' is not signed/);
    expect(() => run.server.receiveAdvertisement({ ...ad, signature: ad.signature.subarray(0, 40) })).toThrow(/malformed signature \(40 bytes\)/);
    // Signed by another site's identity key: still not va's signature.
    const byOther = run.client("cleveland").advertiseKeys();
    expect(() => run.server.receiveAdvertisement({ ...byOther, siteId: "va" })).toThrow(/from site 'va' does not verify/);
    run.server.receiveAdvertisement(ad);
  });

  it("a duplicate message", () => {
    const run = new Run(makeStudy(4));
    const ad = run.client("va").advertiseKeys();
    run.server.receiveAdvertisement(ad);
    const err = thrown(() => run.server.receiveAdvertisement(ad));
    expect(err.code).toBe("already-exists");
    expect(err.message).toMatch(/AdvertiseKeys: a second advertise-keys message from site 'va' is refused/);
  });

  it("a replay from another round, another session, another study", () => {
    const study = makeStudy(4);
    const run = new Run(study);
    const other = (o: { round?: number; studyId?: string }) =>
      new SecAggClient({ params: makeStudy(4, { identities: study.identities, ...o }).params, siteId: "va", identity: study.identities.get("va")! }).advertiseKeys();
    expect(() => run.server.receiveAdvertisement(other({ round: 2 }))).toThrow(/site 'va' is refused: it belongs to round 2, not 1 \(a replay from another round\)/);
    expect(() => run.server.receiveAdvertisement(other({}))).toThrow(/it belongs to another session of round 1 \(a replay: the session nonce differs\)/);
    expect(() => run.server.receiveAdvertisement(other({ studyId: "study-2" }))).toThrow(/belongs to study 'study-2', not 'study-1'/);
    // Relabelling an old message with this session's context does not help: the signature binds the context.
    expect(() => run.server.receiveAdvertisement({ ...other({ round: 2 }), context: study.params.context })).toThrow(/does not verify/);
  });

  it("a message replayed into another phase of the same session", () => {
    const run = new Run(makeStudy(4));
    const routed = run.share(run.advertise(), run.study.sites);
    const masked = run.client("va").maskInput(routed.get("va")!, run.inputs.get("va")!);
    run.server.receiveMaskedInput(masked);
    for (const s of run.study.sites.slice(1)) run.server.receiveMaskedInput(run.client(s).maskInput(routed.get(s)!, run.inputs.get(s)!));
    const list = run.server.closeMaskedInput();
    expect(() => run.server.receiveConsistency(masked as never)).toThrow(/ConsistencyCheck: site 'va' sent a masked-input message where a consistency-signature message was due/);
    expect(() => run.server.receiveMaskedInput(masked)).toThrow(/MaskedInput: a masked-input message from site 'va' arrived after the phase closed/);
    const sig = run.client("va").signSurvivors(list);
    expect(() => run.server.receiveUnmask(sig as never)).toThrow(/Unmasking: a unmask-shares message from site 'va' arrived before the phase opened/);
    // A consistency signature is over the survivor list; relabelled as another site's it does not verify.
    expect(() => run.server.receiveConsistency({ ...sig, siteId: "cleveland" })).toThrow(/signature on a consistency-signature message from site 'cleveland' does not verify/);
    run.server.receiveConsistency(sig);
  });

  it("a site outside the study, and a site that skipped a phase", () => {
    const run = new Run(makeStudy(4)); // t = 3
    const outsiderStudy = makeStudy(5);
    const outsider = new SecAggClient({ params: { ...outsiderStudy.params, context: run.study.params.context }, siteId: "basel", identity: outsiderStudy.identities.get("basel")! });
    const err = thrown(() => run.server.receiveAdvertisement(outsider.advertiseKeys()));
    expect(err.message).toMatch(/AdvertiseKeys: site 'basel' is not one of the study's sites/);

    for (const s of run.study.sites.slice(0, 3)) run.server.receiveAdvertisement(run.client(s).advertiseKeys());
    run.client("switzerland").advertiseKeys(); // lost on the way
    const keyList = run.server.closeAdvertisement();
    expect(() => run.client("switzerland").shareKeys(keyList)).toThrow(/ShareKeys: the key list does not carry the keys site 'switzerland' advertised/);
    const relabelled = { ...run.client("va").shareKeys(keyList), siteId: "switzerland" };
    expect(() => run.server.receiveShareKeys(relabelled)).toThrow(/ShareKeys: site 'switzerland' did not complete AdvertiseKeys, so its share-keys message cannot be used/);
  });

  it("a holder that reveals a share other than the one it was dealt", () => {
    const study = makeStudy(5);
    const run = new Run(study);
    const proof = run.consist(run.mask(run.share(run.advertise(), study.sites), study.sites), study.sites);
    const answer = run.client("va").unmask(proof);
    answer.selfMaskShares[2].share[0] ^= 1;
    const session = openSession(study.params);
    const resigned = { ...answer, signature: signDetached(unmaskSharesPayload(session, answer), study.identities.get("va")!.secretKey) };
    const err = thrown(() => run.server.receiveUnmask(resigned));
    expect(err.site).toBe("va");
    expect(err.message).toMatch(new RegExp(`Unmasking: the self-mask share of site '${answer.selfMaskShares[2].dealer}' that site 'va' revealed is not the one site '${answer.selfMaskShares[2].dealer}' dealt it`));
  });

  it("a dealer whose self-mask does not match its commitment is named when the sum is unmasked", () => {
    const study = makeStudy(5);
    const run = new Run(study);
    const keyList = run.advertise();
    const session = openSession(study.params);
    for (const s of study.sites) {
      let m = run.client(s).shareKeys(keyList);
      if (s === "cleveland") {
        m = { ...m, selfMaskCommitment: new Uint8Array(randomBytes(32)) };
        m.signature = signDetached(shareKeysPayload(session, m), study.identities.get(s)!.secretKey);
      }
      run.server.receiveShareKeys(m);
    }
    const proof = run.consist(run.mask(run.server.closeShareKeys(), study.sites), study.sites);
    for (const s of study.sites) run.server.receiveUnmask(run.client(s).unmask(proof));
    const err = thrown(() => run.server.finish());
    expect(err.site).toBe("cleveland");
    expect(err.message).toMatch(/Unmasking: the self-mask seed of site 'cleveland' reconstructed from 4 verified shares does not match what site 'cleveland' committed to/);
    expect(run.server.phase).toBe("failed");
  });

  it("a dropped dealer whose shared masking key is not the one it advertised is named", () => {
    const study = makeStudy(5);
    const run = new Run(study);
    const keyList = run.advertise();
    // A cheating dealer: deals shares of another key than the one it advertised, then drops.
    (run.client("basel") as unknown as { maskingKeys: { secretKey: Uint8Array } }).maskingKeys.secretKey = generateAgreementKeyPair().secretKey;
    const routed = run.share(keyList, study.sites);
    const rest = study.sites.filter((s) => s !== "basel");
    const proof = run.consist(run.mask(routed, rest), rest);
    expect(() => run.unmask(proof, rest)).toThrow(/Unmasking: the masking key of site 'basel' reconstructed from 4 verified shares does not match/);
  });
});

describe("secure aggregation: clients refuse a lying coordinator", () => {
  it("a key list with a forged advertisement or a site outside the study", () => {
    const run = new Run(makeStudy(4));
    const keyList = run.advertise();
    const forged: KeyList = { ...keyList, advertisements: keyList.advertisements.map((a) => (a.siteId === "hungary" ? { ...a, maskingKey: generateAgreementKeyPair().publicKey } : a)) };
    const err = thrown(() => run.client("va").shareKeys(forged));
    expect(err.site).toBe("hungary");
    expect(err.message).toMatch(/ShareKeys: the advertised keys of site 'hungary' carry a signature that does not verify against its identity key/);
    expect(run.client("va").phase).toBe("aborted");
    expect(() => run.client("va").shareKeys(keyList)).toThrow(/site 'va' aborted this session earlier/);

    const stranger = { ...keyList.advertisements[0], siteId: "mallory" };
    expect(() => run.client("cleveland").shareKeys({ ...keyList, advertisements: [...keyList.advertisements, stranger] })).toThrow(
      /ShareKeys: the key list names site 'mallory', which is not one of the study's sites/,
    );
  });

  it("a key list from another session", () => {
    const run = new Run(makeStudy(4));
    const keyList = run.advertise();
    expect(() => run.client("va").shareKeys({ ...keyList, context: { ...keyList.context, round: 7 } })).toThrow(
      /ShareKeys: site 'va' refuses the coordinator's key-list: it belongs to round 7, not 1/,
    );
  });

  it("routed shares that were altered or do not match their commitments", () => {
    const run = new Run(makeStudy(4));
    const routed = run.share(run.advertise(), run.study.sites);
    const forVa = routed.get("va")!;
    const altered = structuredClone(forVa);
    altered.shares[0].sealed[30] ^= 1;
    expect(() => run.client("va").maskInput(altered, run.inputs.get("va")!)).toThrow(
      new RegExp(`MaskedInput: the shares from site '${forVa.shares[0].dealer}' do not open: they were not sealed by it for site 'va'`),
    );
    const forCl = structuredClone(routed.get("cleveland")!);
    forCl.shares[1].keyShareCommitment[0] ^= 1;
    expect(() => run.client("cleveland").maskInput(forCl, run.inputs.get("cleveland")!)).toThrow(/do not match the commitments relayed with them/);
    expect(() => run.client("hungary").maskInput(routed.get("va")!, run.inputs.get("hungary")!)).toThrow(/routed shares addressed to site 'va' to site 'hungary'/);
  });

  it("different survivor lists shown to different sites", () => {
    const study = makeStudy(6); // t = 4
    const run = new Run(study);
    const list = run.mask(run.share(run.advertise(), study.sites), study.sites);
    // The coordinator tells va all six survived, but tells the others that zurich dropped...
    const shorter: SurvivorList = { ...list, survivors: list.survivors.filter((s) => s !== "zurich") };
    const vaSig = run.client("va").signSurvivors(list);
    const others = study.sites.filter((s) => s !== "va" && s !== "zurich");
    const otherSigs = others.map((s) => ({ siteId: s, signature: run.client(s).signSurvivors(shorter).signature }));
    // ...and shows va a proof for the full list made of the others' signatures on the shorter one.
    const toVa: ConsistencyProof = { kind: "consistency-proof", context: list.context, survivors: list.survivors, signatures: [{ siteId: "va", signature: vaSig.signature }, ...otherSigs] };
    const err = thrown(() => run.client("va").unmask(toVa));
    expect(err.message).toMatch(/Unmasking: the consistency signature of site '[a-z]+' does not verify on the survivor list site 'va' signed/);
    // Showing a site a proof for another list than the one it signed is refused outright.
    const toCleveland: ConsistencyProof = { ...toVa, survivors: list.survivors };
    expect(() => run.client("cleveland").unmask(toCleveland)).toThrow(/the coordinator asks site 'cleveland' to unmask survivors \[.*zurich.*\] but it signed \[/);
  });

  it("too few consistency signatures", () => {
    const study = makeStudy(6);
    const run = new Run(study);
    const list = run.mask(run.share(run.advertise(), study.sites), study.sites);
    const sigs = study.sites.map((s) => ({ siteId: s, signature: run.client(s).signSurvivors(list).signature }));
    const proof: ConsistencyProof = { kind: "consistency-proof", context: list.context, survivors: list.survivors, signatures: sigs.slice(0, 3) };
    expect(() => run.client("va").unmask(proof)).toThrow(/Unmasking: only 3 site\(s\) signed the survivor list; site 'va' reveals shares only after at least 4 have/);
  });

  it("a survivor list that leaves the site out, or names a site that dealt no shares", () => {
    const run = new Run(makeStudy(5));
    const list = run.mask(run.share(run.advertise(), run.study.sites), run.study.sites);
    expect(() => run.client("va").signSurvivors({ ...list, survivors: list.survivors.filter((s) => s !== "va") })).toThrow(/ConsistencyCheck: the survivor list leaves out site 'va'/);
    expect(() => run.client("hungary").signSurvivors({ ...list, survivors: [...list.survivors, "mallory"] })).toThrow(/names site 'mallory', which did not deal shares to site 'hungary'/);
  });

  it("asking for both shares of one site (a second unmasking request with another survivor list)", () => {
    const study = makeStudy(6);
    const run = new Run(study);
    const list = run.mask(run.share(run.advertise(), study.sites), study.sites);
    const proof = run.consist(list, study.sites);
    const first = run.client("va").unmask(proof);
    expect(first.selfMaskShares.map((s) => s.dealer)).toContain("zurich");
    // The same request again (a lost answer) gets the same answer...
    expect(run.client("va").unmask(proof)).toBe(first);
    // ...but one that calls zurich dropped would reveal zurich's key share as well.
    const session = openSession(study.params);
    const without = list.survivors.filter((s) => s !== "zurich");
    const second: ConsistencyProof = {
      ...proof,
      survivors: without,
      signatures: without.map((s) => ({ siteId: s, signature: signDetached(consistencyPayload(session, s, without), study.identities.get(s)!.secretKey) })),
    };
    const err = thrown(() => run.client("va").unmask(second));
    expect(err.site).toBe("zurich");
    expect(err.message).toMatch(/Unmasking: site 'va' already revealed its shares for this session and refuses a second unmasking request with a different survivor list: it would reveal both shares of site 'zurich'/);
  });
});

describe("secure aggregation: set-up", () => {
  it("a client refuses an identity key the study does not list for it", () => {
    const study = makeStudy(4);
    expect(() => new SecAggClient({ params: study.params, siteId: "va", identity: generateSigningKeyPair() })).toThrow(/the identity key of site 'va' is not the one the study lists/);
    expect(() => new SecAggClient({ params: study.params, siteId: "mallory", identity: generateSigningKeyPair() })).toThrow(/site 'mallory' is not one of the study's sites/);
  });

  it("a session with malformed parameters is refused", () => {
    const { params } = makeStudy(4);
    expect(() => new SecAggServer({ ...params, context: { ...params.context, sessionNonce: new Uint8Array(8) } })).toThrow(/session nonce must be 16 to 64 random bytes/);
    expect(() => new SecAggServer({ ...params, context: { ...params.context, round: 1.5 } })).toThrow(/round must be a whole number/);
    expect(() => new SecAggServer({ ...params, vectorLength: 0 })).toThrow(/vector length must be a whole number from 1/);
    expect(() => new SecAggServer({ ...params, siteKeys: new Map([...params.siteKeys, ["x", new Uint8Array(5)]]) })).toThrow(/identity key of site 'x' must be a 32-byte Ed25519 public key/);
  });

  it("an unsafe threshold is refused before anything starts", () => {
    const study = makeStudy(6);
    expect(() => new SecAggServer({ ...study.params, threshold: 3 })).toThrow(/threshold of 3 for 6 sites is unsafe: against a malicious coordinator it must be more than half the sites/);
  });

  it("calls out of order are refused with the phase named", () => {
    const run = new Run(makeStudy(4));
    const err = thrown(() => run.client("va").signSurvivors({ kind: "survivor-list", context: run.study.params.context, survivors: [] }));
    expect(err.code).toBe("failed-precondition");
    expect(err.message).toMatch(/ConsistencyCheck: site 'va' is at phase AdvertiseKeys, not ConsistencyCheck/);
    expect(() => run.server.closeShareKeys()).toThrow(/closing ShareKeys arrived before the phase opened/);
  });

  it("errors are FedsynthErrors with codes the transport can map", () => {
    const run = new Run(makeStudy(4));
    const err = thrown(() => run.server.receiveAdvertisement({ ...run.client("va").advertiseKeys(), signature: new Uint8Array(0) }));
    expect(err).toBeInstanceOf(FedsynthError);
    expect(err.code).toBe("invalid-argument");
    expect(err.phase).toBe("AdvertiseKeys");
  });
});
