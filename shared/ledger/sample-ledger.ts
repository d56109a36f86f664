/**
 * A realistic ledger made with fresh keys, for the tests and bench/ledger.mjs: sites enrol, studies of
 * the three mechanism families (histogram Gaussians, DP-SGD, secure-aggregation discrete Gaussians) run
 * their rounds, sites are charged (a few updates are rejected, a few rounds declined), pooled models
 * are released, and the coordinator signs a head after every round. The sites' side is played here
 * too: each site computes its own charges with the accountant and signs them, and keeps its copy.
 */
import { createHash } from "node:crypto";
import { Accountant } from "../privacy/accountant.js";
import type { Mechanism } from "../privacy/mechanism.js";
import { generateSigningKeyPair, type SigningKeyPair } from "../crypto/identity.js";
import { encodeBase64 } from "./base64.js";
import type { LedgerEntry, SignedCharge } from "./entry.js";
import { LedgerWriter } from "./ledger-writer.js";
import { signCharge, signHead } from "./signatures.js";
import { chainEntry, type EntryDraft } from "./entry-hash.js";

export interface SampleLedgerOptions {
  /** Stop at exactly this many entries (the last one a head); otherwise run `studies` studies. */
  entries?: number;
  sites?: number;
  studies?: number;
  rounds?: number;
  /** How many different mechanism lists the studies cycle through (default: a different one per study). */
  parameterSets?: number;
  /** Time of the genesis entry; entries follow one second apart. */
  start?: number;
}

export interface SampleLedger {
  writer: LedgerWriter;
  entries: readonly LedgerEntry[];
  coordinator: SigningKeyPair;
  siteKeys: Map<string, SigningKeyPair>;
  /** Each site's own copy of the charges it signed. */
  agentCopies: Map<string, SignedCharge[]>;
}

const DELTA = 1e-5;

/** The mechanisms one task of study number `set` applies; families cycle, parameters differ per set. */
export function sampleMechanisms(set: number): Mechanism[] {
  const f = 1 + set / 1000;
  switch (set % 3) {
    case 0:
      return [
        { kind: "gaussian", l2Sensitivity: Math.sqrt(14), sigma: 40 * f, repetitions: 1 },
        { kind: "gaussian", l2Sensitivity: Math.sqrt(5), sigma: 80 * f, repetitions: 1 },
      ];
    case 1:
      return [
        { kind: "subsampled-gaussian", samplingRate: 0.02, noiseMultiplier: 1.1 * f, steps: 50, clipNorm: 1 },
        { kind: "gaussian", l2Sensitivity: 1, sigma: 50 * f, repetitions: 1 },
      ];
    default:
      return [{ kind: "distributed-discrete-gaussian", l2Sensitivity: 120, dimension: 500, sigma: 2000 * f, sites: 3, repetitions: 1 }];
  }
}

class Full extends Error {}

export function buildSampleLedger(opts: SampleLedgerOptions = {}): SampleLedger {
  const siteCount = opts.sites ?? 4;
  const rounds = opts.rounds ?? 2;
  const target = opts.entries;
  const coordinator = generateSigningKeyPair();
  let at = opts.start ?? Date.UTC(2026, 0, 1);
  const writer = LedgerWriter.start(coordinator.secretKey, { ledgerId: "sample-ledger", at });
  const tick = () => {
    if (target !== undefined && writer.entries().length >= target - 1) throw new Full();
    return (at += 1000);
  };
  const siteKeys = new Map<string, SigningKeyPair>();
  const agentCopies = new Map<string, SignedCharge[]>();
  const memo = new Map<string, number>();
  const epsilonOf = (ms: Mechanism[]) => {
    const key = JSON.stringify(ms);
    let e = memo.get(key);
    if (e === undefined) memo.set(key, (e = Accountant.epsilonOf(ms, DELTA)));
    return e;
  };
  try {
    const names = Array.from({ length: siteCount }, (_, j) => `site-${String(j + 1).padStart(2, "0")}`);
    for (const name of names) {
      const keys = generateSigningKeyPair();
      siteKeys.set(name, keys);
      agentCopies.set(name, []);
      writer.enrolSite({ siteName: name, publicKey: encodeBase64(keys.publicKey), cap: { epsilon: 1e6, delta: 0.5 } }, tick());
    }
    writer.signHead(tick());
    for (let s = 0; target !== undefined || s < (opts.studies ?? 3); s++) {
      const studyId = `study-${s + 1}`;
      const perTask = sampleMechanisms(opts.parameterSets ? s % opts.parameterSets : s);
      const budget = Math.ceil(epsilonOf(Array.from({ length: rounds }, () => perTask).flat()) * 110) / 100;
      writer.createStudy({
        studyId, name: `sample study ${s + 1}`, engine: s % 3 === 1 ? "neural" : "independent", epsilon: budget, delta: DELTA, rounds,
        schema: { columns: [{ name: "age", type: "numeric", min: 0, max: 120, integer: true }, { name: "sex", type: "categorical", values: ["0", "1"] }] },
        sites: names, siteCaps: { [names[0]]: { epsilon: budget, delta: DELTA } },
      }, tick());
      const history = new Map<string, Mechanism[]>(names.map((n) => [n, []]));
      let contributors: string[] = [];
      for (let r = 1; r <= rounds; r++) {
        contributors = [];
        for (const [j, name] of names.entries()) {
          if ((s + r + j) % 17 === 5) {
            writer.appendRefusal({ siteName: name, studyId, round: r, by: "site", reason: "busy", message: "the site is in maintenance" }, tick());
            continue;
          }
          const spent = [...history.get(name)!, ...perTask];
          history.set(name, spent);
          const signed = signCharge({
            siteName: name, studyId, round: r, taskId: `${studyId}-r${r}-${name}`, mechanisms: perTask, delta: DELTA,
            epsilonTask: epsilonOf(perTask), epsilonStudyTotal: epsilonOf(spent),
            updateSha256: createHash("sha256").update(`${studyId}/${r}/${name}`).digest("hex"),
          }, siteKeys.get(name)!.secretKey);
          const accepted = (s * 7 + r * 3 + j) % 23 !== 0;
          writer.appendCharge(signed, accepted ? { accepted } : { accepted, reason: "the update arrived after the round's deadline" }, tick());
          agentCopies.get(name)!.push(signed);
          if (accepted) contributors.push(name);
        }
        writer.signHead(tick());
      }
      if (contributors.length > 0) {
        writer.appendRelease({ studyId, round: rounds, modelId: `model-${s + 1}`, contributors, modelSha256: createHash("sha256").update(studyId).digest("hex") }, tick());
        writer.signHead(tick());
      }
    }
  } catch (err) {
    if (!(err instanceof Full)) throw err;
  }
  const count = writer.entries().length;
  if (target !== undefined ? count < target : writer.entries().at(-1)?.kind !== "head") writer.signHead((at += 1000));
  return { writer, entries: writer.entries(), coordinator, siteKeys, agentCopies };
}

/**
 * Re-seals a ledger after an edit, as a forger holding the coordinator's key could: recomputes every
 * seq, prevHash and hash in order and re-signs every head. Charges keep the site signatures they have
 * (re-sign them with signCharge to forge a site too). The tests use it to reach the checks that lie
 * behind the chain and the head signatures.
 */
export function resealLedger(entries: readonly LedgerEntry[], coordinatorSecretKey: Uint8Array): LedgerEntry[] {
  const out: LedgerEntry[] = [];
  for (const entry of entries) {
    const { seq: _seq, prevHash: _prev, hash: _hash, ...draft } = entry as LedgerEntry & { coordinatorSignature?: string };
    delete (draft as { coordinatorSignature?: string }).coordinatorSignature;
    let sealed: LedgerEntry = chainEntry(draft as EntryDraft, out[out.length - 1]);
    if (sealed.kind === "head") sealed = { ...sealed, coordinatorSignature: signHead(sealed.hash, coordinatorSecretKey) };
    out.push(sealed);
  }
  return out;
}
