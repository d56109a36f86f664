import { describe, expect, it } from "vitest";
import { Accountant } from "../../privacy/accountant.js";
import type { ChargeEntry, LedgerEntry } from "../entry.js";
import { resealLedger } from "../sample-ledger.js";
import { signCharge } from "../signatures.js";
import { buildTestLedger, TEST_DELTA, TEST_MECHANISMS } from "../test-ledger.js";
import { verifyLedger } from "../verify-ledger.js";
import { buildReportModel } from "./report-model.js";

describe("buildReportModel", () => {
  it("recomputes every charge and running total as verification does", () => {
    const { entries, copies } = buildTestLedger();
    const verification = verifyLedger(entries);
    if (!verification.ok) throw new Error(verification.reason);
    const model = buildReportModel(entries, verification);
    expect(model.verdict).toEqual({ ok: true, headSeq: entries.length - 1, headHash: entries.at(-1)!.hash });
    const [alpha, beta] = model.sites;
    expect(alpha.charges.map((c) => c.studyEpsilon)).toEqual(copies.alpha.map((s) => s.charge.epsilonStudyTotal));
    expect(beta.charges.map((c) => [c.accepted, c.studyEpsilon])).toEqual([[false, copies.beta[0].charge.epsilonStudyTotal]]);
    // The last running total of each site is the verifier's own figure.
    for (const spend of verification.summary.spend) {
      expect(model.sites.find((s) => s.name === spend.siteName)!.charges.at(-1)!.studyEpsilon).toBe(spend.epsilon);
    }
    expect(model).toMatchObject({ ledgerId: "test-ledger", entries: entries.length, unreadable: 0 });
    expect([model.studies.length, model.releases.length, model.refusals.length]).toEqual([1, 1, 1]);
    expect(alpha).toMatchObject({ enrolments: 1, cap: { epsilon: 10, delta: 1e-4 }, studyIds: ["study-1"] });
  });

  it("shows the recomputed epsilon, not the one the site recorded", () => {
    const { entries, keys, coordinator } = buildTestLedger();
    const index = entries.findIndex((e) => e.kind === "charge");
    const e = entries[index] as ChargeEntry;
    const overstated = signCharge({ ...e.body.charge, epsilonTask: 99, epsilonStudyTotal: 99 }, keys.alpha.secretKey);
    const forged = resealLedger(entries.map((x, i) => (i === index ? { ...e, body: { ...e.body, charge: overstated.charge }, siteSignature: overstated.siteSignature } : x)), coordinator.secretKey);
    const verification = verifyLedger(forged);
    expect(verification.ok).toBe(true);
    const charge = buildReportModel(forged, verification).sites[0].charges[0];
    expect(charge.epsilonTask).toBe(Accountant.epsilonOf(TEST_MECHANISMS, TEST_DELTA));
    expect(charge.studyEpsilon).toBe(charge.epsilonTask);
  });

  it("marks entries from the first failing one as unverified, and counts what it cannot read", () => {
    const entries: unknown[] = structuredClone(buildTestLedger().entries) as LedgerEntry[];
    const index = entries.findIndex((e) => (e as LedgerEntry).kind === "refusal");
    (entries[index] as { body: { reason: string } }).body.reason = "changed";
    entries.push({ not: "an entry" });
    const verification = verifyLedger(entries);
    expect(verification).toMatchObject({ ok: false, index });
    const model = buildReportModel(entries, verification);
    expect(model.unreadable).toBe(1);
    expect(model.refusals[0]).toMatchObject({ verified: false, body: { reason: "changed" } });
    expect(model.sites[0].charges.map((c) => c.verified)).toEqual([true, false]);
    expect(model.studies[0].verified).toBe(true);
  });

  it("does not call a ledger verified on the strength of another ledger's verification", () => {
    const a = buildTestLedger().entries;
    const b = buildTestLedger().entries;
    expect(buildReportModel(b, verifyLedger(a)).verdict).toMatchObject({ ok: false, reason: expect.stringMatching(/of another ledger/) });
    expect(buildReportModel(a.slice(0, 4), verifyLedger(a)).verdict.ok).toBe(false);
  });
});
