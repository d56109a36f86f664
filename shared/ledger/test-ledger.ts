/**
 * A small hand-made ledger with one entry of every kind and every optional field, for the unit tests
 * (sample-ledger.ts makes large ones). Two sites, "alpha" and "beta", one study of two rounds: alpha is
 * charged in both, beta's first update is rejected and it declines round 2; the model of round 2 is
 * released with alpha as its contributor.
 */
import { Accountant } from "../privacy/accountant.js";
import type { Mechanism } from "../privacy/mechanism.js";
import { generateSigningKeyPair, type SigningKeyPair } from "../crypto/identity.js";
import { encodeBase64 } from "./base64.js";
import type { ChargeStatement, LedgerEntry, SignedCharge } from "./entry.js";
import { LedgerWriter } from "./ledger-writer.js";
import { sha256Hex } from "./entry-hash.js";
import { signCharge } from "./signatures.js";

export const TEST_MECHANISMS: Mechanism[] = [
  { kind: "gaussian", l2Sensitivity: 2, sigma: 9, repetitions: 1 },
  { kind: "subsampled-gaussian", samplingRate: 0.05, noiseMultiplier: 1.3, steps: 10, clipNorm: 1.5 },
];
export const TEST_DELTA = 1e-5;
export const START = Date.UTC(2026, 2, 1);

export interface TestLedger {
  writer: LedgerWriter;
  entries: LedgerEntry[];
  coordinator: SigningKeyPair;
  keys: { alpha: SigningKeyPair; beta: SigningKeyPair };
  copies: { alpha: SignedCharge[]; beta: SignedCharge[] };
  /** The study's budget: exactly enough for two rounds (plus 1%). */
  budget: number;
}

/** A charge statement as the site would make it, with its totals computed by the accountant. */
export function statementFor(siteName: string, round: number, history: Mechanism[][], extra: Partial<ChargeStatement> = {}): ChargeStatement {
  return {
    siteName, studyId: "study-1", round, taskId: `task-${siteName}-${round}`, mechanisms: TEST_MECHANISMS, delta: TEST_DELTA,
    epsilonTask: Accountant.epsilonOf(TEST_MECHANISMS, TEST_DELTA),
    epsilonStudyTotal: Accountant.epsilonOf([...history.flat(), ...TEST_MECHANISMS], TEST_DELTA),
    updateSha256: sha256Hex(`update of ${siteName} in round ${round}`), ...extra,
  };
}

export function buildTestLedger(): TestLedger {
  const coordinator = generateSigningKeyPair();
  const alpha = generateSigningKeyPair();
  const beta = generateSigningKeyPair();
  const budget = Accountant.epsilonOf([...TEST_MECHANISMS, ...TEST_MECHANISMS], TEST_DELTA) * 1.01;
  let at = START;
  const t = () => (at += 60_000);
  const w = LedgerWriter.start(coordinator.secretKey, { ledgerId: "test-ledger", at });
  w.enrolSite({ siteName: "alpha", publicKey: encodeBase64(alpha.publicKey), cap: { epsilon: 10, delta: 1e-4 } }, t());
  w.enrolSite({ siteName: "beta", publicKey: encodeBase64(beta.publicKey), certificatePem: "-----BEGIN CERTIFICATE-----\nnot checked without a CA\n-----END CERTIFICATE-----" }, t());
  w.createStudy({
    studyId: "study-1", name: "heart 2026", engine: "neural", engineConfig: { hidden: 0, lr: 0.05 }, epsilon: budget, delta: TEST_DELTA, rounds: 2,
    schema: { columns: [{ name: "age", type: "numeric", min: 0, max: 120, integer: true }], missing: ["", "NA"] },
    sites: ["alpha", "beta"], siteCaps: { beta: { epsilon: budget, delta: TEST_DELTA } },
  }, t());
  w.signHead(t());
  const a1 = signCharge(statementFor("alpha", 1, []), alpha.secretKey);
  w.appendCharge(a1, { accepted: true }, t());
  const b1 = signCharge(statementFor("beta", 1, []), beta.secretKey);
  w.appendCharge(b1, { accepted: false, reason: "the update arrived after the deadline" }, t());
  w.signHead(t());
  w.appendRefusal({ siteName: "beta", studyId: "study-1", round: 2, by: "site", reason: "busy", message: "maintenance window", taskId: "task-beta-2" }, t());
  const a2 = signCharge(statementFor("alpha", 2, [TEST_MECHANISMS]), alpha.secretKey);
  w.appendCharge(a2, { accepted: true }, t());
  w.appendRelease({ studyId: "study-1", round: 2, modelId: "model-1", modelSha256: sha256Hex("model"), contributors: ["alpha"] }, t());
  w.signHead(t());
  return { writer: w, entries: [...w.entries()], coordinator, keys: { alpha, beta }, copies: { alpha: [a1, a2], beta: [b1] }, budget };
}
