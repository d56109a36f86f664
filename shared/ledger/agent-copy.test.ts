import { describe, expect, it } from "vitest";
import { compareAgentCopy } from "./agent-copy.js";
import type { ChargeEntry } from "./entry.js";
import { resealLedger } from "./sample-ledger.js";
import { buildTestLedger } from "./test-ledger.js";
import { verifyLedger } from "./verify-ledger.js";

describe("comparing the coordinator's ledger with a site's own copy", () => {
  it("finds every charge of each site, as the site signed it", () => {
    const { entries, copies } = buildTestLedger();
    expect(compareAgentCopy(entries, "alpha", copies.alpha)).toEqual({ ok: true, siteName: "alpha", matched: 2, dropped: [], altered: [], unexpected: [] });
    expect(compareAgentCopy(entries, "beta", copies.beta)).toMatchObject({ ok: true, matched: 1 });
    // The site's copy may lack signatures (site-agent/local-store.ts keeps none today).
    expect(compareAgentCopy(entries, "alpha", copies.alpha.map(({ charge }) => ({ charge }))).ok).toBe(true);
  });

  it("reports a charge the coordinator dropped, even from a ledger that still verifies", () => {
    const { entries, copies, coordinator } = buildTestLedger();
    const index = entries.findIndex((e) => e.kind === "charge" && e.body.charge.taskId === "task-alpha-2");
    // Cut back to the head before the charge: a valid, shorter ledger.
    const cut = entries.slice(0, index).filter((_, i, all) => i <= all.map((e) => e.kind).lastIndexOf("head"));
    expect(verifyLedger(cut).ok).toBe(true);
    expect(compareAgentCopy(cut, "alpha", copies.alpha)).toMatchObject({
      ok: false, matched: 1, dropped: [{ studyId: "study-1", taskId: "task-alpha-2", round: 2 }], altered: [], unexpected: [],
    });
    // Or removed and the chain resealed with the coordinator's key.
    const resealed = resealLedger(entries.filter((_, i) => i !== index && entries[i].kind !== "release"), coordinator.secretKey);
    expect(compareAgentCopy(resealed, "alpha", copies.alpha).dropped).toEqual([{ studyId: "study-1", taskId: "task-alpha-2", round: 2 }]);
  });

  it("reports a charge recorded differently, with the fields that differ", () => {
    const { entries, copies } = buildTestLedger();
    const edited = structuredClone(entries);
    const e = edited.find((x): x is ChargeEntry => x.kind === "charge" && x.body.charge.taskId === "task-alpha-1")!;
    e.body.charge.epsilonStudyTotal /= 2;
    e.body.charge.updateSha256 = "0".repeat(64);
    e.siteSignature = copies.beta[0].siteSignature;
    expect(compareAgentCopy(edited, "alpha", copies.alpha)).toMatchObject({
      ok: false, matched: 1, altered: [{ taskId: "task-alpha-1", seq: e.seq, fields: ["epsilonStudyTotal", "updateSha256", "siteSignature"] }],
    });
  });

  it("reports a charge in the site's name that the site has no record of, or one charged twice", () => {
    const { entries, copies } = buildTestLedger();
    expect(compareAgentCopy(entries, "alpha", copies.alpha.slice(1))).toMatchObject({ ok: false, unexpected: [{ taskId: "task-alpha-1", seq: 5 }] });
    const twice = [...entries.slice(0, 6), entries[5], ...entries.slice(6)];
    expect(compareAgentCopy(twice, "alpha", copies.alpha)).toMatchObject({ ok: false, matched: 2, unexpected: [{ taskId: "task-alpha-1", seq: 5 }] });
  });
});
