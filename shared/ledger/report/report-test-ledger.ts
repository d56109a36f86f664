/**
 * A mixed ledger for the report's tests (unit and cross-process): three sites over two studies and a
 * few days — one site re-enrols, one update is rejected, a round and a whole study are declined, two
 * models are released — with hostile text where a site or the coordinator writes free text, since a
 * report must show such text as text. It verifies: the hostility is in the content, not the chain.
 */
import { Accountant } from "../../privacy/accountant.js";
import type { Mechanism } from "../../privacy/mechanism.js";
import { generateSigningKeyPair, type SigningKeyPair } from "../../crypto/identity.js";
import { encodeBase64 } from "../base64.js";
import type { LedgerEntry } from "../entry.js";
import { sha256Hex } from "../entry-hash.js";
import { LedgerWriter } from "../ledger-writer.js";
import { signCharge } from "../signatures.js";

export const HOSTILE_SITE = `st-mary's <script>alert("site")</script>`;
export const HOSTILE_STUDY_NAME = `diabetes "cohort" & <b>co</b>`;
export const HOSTILE_MESSAGE = `<img src=x onerror="alert('refusal')"> see //evil.example/x`;
export const REPORT_SITES = ["charité-berlin", HOSTILE_SITE, "uppsala"];

const DELTA = 1e-5;
const DAY = 86_400_000;
const DPSGD: Mechanism[] = [
  { kind: "subsampled-gaussian", samplingRate: 0.02, noiseMultiplier: 1.1, steps: 60, clipNorm: 1 },
  { kind: "gaussian", l2Sensitivity: 1, sigma: 40, repetitions: 1 },
];
const DDG: Mechanism[] = [{ kind: "distributed-discrete-gaussian", l2Sensitivity: 120, dimension: 500, sigma: 1500, sites: 2, repetitions: 1 }];

export interface ReportTestLedger {
  entries: LedgerEntry[];
  coordinator: SigningKeyPair;
}

export function buildReportTestLedger(start = Date.UTC(2026, 3, 6, 8)): ReportTestLedger {
  const coordinator = generateSigningKeyPair();
  const keys = new Map(REPORT_SITES.map((s) => [s, generateSigningKeyPair()]));
  let at = start;
  const later = (ms: number) => (at += ms);
  const w = LedgerWriter.start(coordinator.secretKey, { ledgerId: "report-test-ledger", at });
  const [berlin, mary, uppsala] = REPORT_SITES;
  const enrol = (site: string) => w.enrolSite({ siteName: site, publicKey: encodeBase64(keys.get(site)!.publicKey), cap: { epsilon: 12, delta: 1e-4 } }, later(600_000));
  REPORT_SITES.forEach(enrol);
  const heartBudget = Math.ceil(Accountant.epsilonOf([...DPSGD, ...DPSGD, ...DPSGD], DELTA) * 120) / 100;
  const diabetesBudget = Math.ceil(Accountant.epsilonOf([...DDG, ...DDG], DELTA) * 150) / 100;
  const schema = { columns: [{ name: "age", type: "numeric", min: 0, max: 120, integer: true }] };
  w.createStudy({ studyId: "heart-2026", name: "heart failure 2026", engine: "neural", epsilon: heartBudget, delta: DELTA, rounds: 3, schema, sites: REPORT_SITES }, later(DAY / 4));
  w.createStudy({
    studyId: "diabetes", name: HOSTILE_STUDY_NAME, engine: "independent", epsilon: diabetesBudget, delta: DELTA, rounds: 2, schema,
    sites: [berlin, uppsala, mary], siteCaps: { [uppsala]: { epsilon: diabetesBudget, delta: DELTA } },
  }, later(DAY / 8));
  w.signHead(later(1000));
  const history = new Map<string, Mechanism[]>();
  const charge = (site: string, studyId: string, round: number, ms: Mechanism[], verdict: { accepted: boolean; reason?: string }) => {
    const key = `${site}\n${studyId}`;
    const spent = [...(history.get(key) ?? []), ...ms];
    history.set(key, spent);
    const signed = signCharge({
      siteName: site, studyId, round, taskId: `${studyId}-r${round}-${site}`, mechanisms: ms, delta: DELTA,
      epsilonTask: Accountant.epsilonOf(ms, DELTA), epsilonStudyTotal: Accountant.epsilonOf(spent, DELTA), updateSha256: sha256Hex(key + round),
    }, keys.get(site)!.secretKey);
    w.appendCharge(signed, verdict, later(1_800_000));
  };
  w.appendRefusal({ siteName: mary, studyId: "diabetes", round: null, by: "site", reason: "ethics approval pending", message: HOSTILE_MESSAGE }, later(60_000));
  for (let round = 1; round <= 3; round++) {
    charge(berlin, "heart-2026", round, DPSGD, { accepted: true });
    if (round === 2) charge(mary, "heart-2026", round, DPSGD, { accepted: false, reason: `the update's norm was <too large> & "odd"` });
    else if (round === 3) w.appendRefusal({ siteName: mary, studyId: "heart-2026", round, by: "coordinator", reason: "deadline", message: "the site did not answer in time", taskId: `heart-2026-r3-${mary}` }, later(60_000));
    else charge(mary, "heart-2026", round, DPSGD, { accepted: true });
    charge(uppsala, "heart-2026", round, DPSGD, { accepted: true });
    w.signHead(later(1000));
    if (round === 1) {
      // Uppsala renews its certificate and key; its later charges are signed with the new key.
      keys.set(uppsala, generateSigningKeyPair());
      enrol(uppsala);
    }
    later(DAY / 2);
  }
  w.appendRelease({ studyId: "heart-2026", round: 3, modelId: "heart-model-3", modelSha256: sha256Hex("heart model"), contributors: [berlin, uppsala] }, later(600_000));
  w.signHead(later(1000));
  for (let round = 1; round <= 2; round++) {
    charge(berlin, "diabetes", round, DDG, { accepted: true });
    charge(uppsala, "diabetes", round, DDG, { accepted: true });
    w.signHead(later(1000));
    later(DAY / 3);
  }
  w.appendRelease({ studyId: "diabetes", round: 2, modelSha256: sha256Hex("diabetes model"), contributors: [uppsala, berlin] }, later(600_000));
  w.signHead(later(1000));
  return { entries: [...w.entries()], coordinator };
}
