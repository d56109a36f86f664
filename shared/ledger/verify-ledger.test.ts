import { describe, expect, it } from "vitest";
import { Accountant } from "../privacy/accountant.js";
import { generateSigningKeyPair } from "../crypto/identity.js";
import { encodeBase64 } from "./base64.js";
import type { ChargeEntry, LedgerEntry, SignedCharge } from "./entry.js";
import { exportJsonl, verifyJsonl } from "./jsonl.js";
import { resealLedger } from "./sample-ledger.js";
import { signCharge, verifySignatureText, type SignatureCheck } from "./signatures.js";
import { buildTestLedger, statementFor, TEST_DELTA, TEST_MECHANISMS } from "./test-ledger.js";
import { describeVerification, verifyLedger, type LedgerVerification } from "./verify-ledger.js";

const clone = <T>(x: T): T => structuredClone(x);

/** The ledger with entry `index`'s charge and site signature replaced. */
function withCharge(entries: readonly LedgerEntry[], index: number, signed: SignedCharge): LedgerEntry[] {
  const out = clone(entries) as LedgerEntry[];
  const e = out[index] as ChargeEntry;
  out[index] = { ...e, body: { ...e.body, charge: signed.charge }, siteSignature: signed.siteSignature };
  return out;
}

/** A new accepted charge entry (to be resealed into place). */
function chargeEntry(signed: SignedCharge): ChargeEntry {
  return { seq: 0, prevHash: "", hash: "", at: Date.UTC(2026, 2, 2), kind: "charge", body: { charge: signed.charge, accepted: true }, siteSignature: signed.siteSignature };
}

function expectFailure(result: LedgerVerification, index: number, reason: RegExp): void {
  if (result.ok) throw new Error(`expected entry ${index} to fail (${reason}), but the ledger verified`);
  expect({ index: result.index, reason: result.reason }).toEqual({ index, reason: expect.stringMatching(reason) });
}

describe("verifyLedger on a valid ledger", () => {
  it("verifies a chain with every kind of entry and recomputes each site's spend", () => {
    const { entries, copies } = buildTestLedger();
    expect(new Set(entries.map((e) => e.kind))).toEqual(new Set(["genesis", "enrolment", "study-created", "charge", "refusal", "release", "head"]));
    const result = verifyLedger(entries);
    if (!result.ok) throw new Error(describeVerification(result));
    const s = result.summary;
    expect(s).toMatchObject({ ledgerId: "test-ledger", entries: entries.length, headSeq: entries.length - 1, headHash: entries.at(-1)!.hash });
    expect(s.kinds).toEqual({ genesis: 1, enrolment: 2, "study-created": 1, charge: 3, refusal: 1, release: 1, head: 3 });
    expect(s.sites).toEqual(["alpha", "beta"]);
    // The rejected update of beta counts: it left the site.
    expect(s.spend).toEqual([
      { siteName: "alpha", studyId: "study-1", charges: 2, delta: TEST_DELTA, epsilon: copies.alpha[1].charge.epsilonStudyTotal },
      { siteName: "beta", studyId: "study-1", charges: 1, delta: TEST_DELTA, epsilon: copies.beta[0].charge.epsilonStudyTotal },
    ]);
    expect(describeVerification(result)).toMatch(/^ok: 12 entries/);
  });

  it("verifies its JSONL export, and the export is one canonical line per entry", () => {
    const { entries } = buildTestLedger();
    const text = exportJsonl(entries);
    expect(text.split("\n")).toHaveLength(entries.length + 1);
    expect(verifyJsonl(text).ok).toBe(true);
    expect(verifyJsonl(Buffer.from(text)).ok).toBe(true);
  });
});

describe("verifyLedger names the first bad entry", () => {
  it("for a change of any byte of any exported line", () => {
    const { entries } = buildTestLedger();
    const lines = exportJsonl(entries).split("\n").slice(0, -1).map((l) => Buffer.from(l));
    // Some 9000 verifications of the unchanged lines before the edited one: remember signature verdicts
    // (by message, signature and key, so an edited one is checked afresh) to keep this test quick.
    const verdicts = new Map<string, boolean>();
    const checkSignature: SignatureCheck = (message, signature, publicKey) => {
      const key = `${Buffer.from(message).toString("base64")}|${String(signature)}|${String(publicKey)}`;
      let ok = verdicts.get(key);
      if (ok === undefined) verdicts.set(key, (ok = verifySignatureText(message, signature, publicKey)));
      return ok;
    };
    let tried = 0;
    for (let k = 0; k < lines.length; k++) {
      for (let i = 0; i < lines[k].length; i++) {
        for (const flip of [0x01, 0x20]) {
          const edited = lines.map((l) => l);
          edited[k] = Buffer.from(lines[k]);
          edited[k][i] ^= flip;
          const result = verifyJsonl(Buffer.concat(edited.flatMap((l) => [l, Buffer.from("\n")])), { checkSignature });
          if (result.ok || result.index !== k) {
            throw new Error(`byte ${i} of line ${k} (${lines[k].toString().slice(Math.max(0, i - 20), i + 20)}) ^ ${flip}: ${describeVerification(result)}`);
          }
          tried++;
        }
      }
    }
    expect(tried).toBeGreaterThan(8000);
  });

  it("for a dropped entry, at its place", () => {
    const { entries } = buildTestLedger();
    for (let k = 0; k < entries.length; k++) {
      const dropped = entries.filter((_, i) => i !== k);
      const result = verifyLedger(dropped);
      const lastHead = dropped.map((e) => e.kind).lastIndexOf("head");
      if (k === entries.length - 1) expectFailure(result, lastHead + 1, /not covered by a coordinator-signed head/);
      else if (k === 0) expectFailure(result, 0, /seq 1 where seq 0 belongs/);
      else expectFailure(result, k, new RegExp(`seq ${k + 1} where seq ${k} belongs`));
    }
  });

  it("for a duplicated entry, at the copy", () => {
    const { entries } = buildTestLedger();
    for (let k = 0; k < entries.length; k++) {
      const doubled = [...entries.slice(0, k + 1), clone(entries[k]), ...entries.slice(k + 1)];
      expectFailure(verifyLedger(doubled), k + 1, /an entry is missing, duplicated or out of order/);
    }
  });

  it("for two entries swapped, at the first of them", () => {
    const { entries } = buildTestLedger();
    for (let k = 0; k + 1 < entries.length; k++) {
      const swapped = [...entries];
      [swapped[k], swapped[k + 1]] = [swapped[k + 1], swapped[k]];
      expectFailure(verifyLedger(swapped), k, /out of order/);
    }
  });

  it("for an empty ledger, or one that does not end with a head", () => {
    expectFailure(verifyLedger([]), 0, /empty/);
    const { writer } = buildTestLedger();
    writer.appendRefusal({ siteName: "beta", studyId: "study-1", round: null, by: "coordinator", reason: "late" });
    writer.appendRefusal({ siteName: "alpha", studyId: "study-1", round: 1, by: "coordinator", reason: "late" });
    expectFailure(verifyLedger(writer.entries()), 12, /this entry and the 1 after it are not covered/);
  });

  it("for a lowered epsilon, even when the site signed it and the chain was resealed", () => {
    const { entries, coordinator, keys } = buildTestLedger();
    const index = entries.findIndex((e) => e.kind === "charge" && e.body.charge.siteName === "alpha" && e.body.charge.round === 2);
    const charge = entries[index] as ChargeEntry;
    const recomputed = charge.body.charge.epsilonTask;

    // Edited in place: the hash no longer matches.
    const edited = clone(entries);
    (edited[index] as ChargeEntry).body.charge.epsilonTask = recomputed / 2;
    expectFailure(verifyLedger(edited), index, /the recorded hash .* the entry was changed/);
    // Resealed by a forger with the coordinator's key: the site's signature no longer matches.
    expectFailure(verifyLedger(resealLedger(edited, coordinator.secretKey)), index, /site signature does not verify/);
    // Signed by the site itself as well: the recomputation still catches it.
    const forged = withCharge(entries, index, signCharge({ ...charge.body.charge, epsilonTask: recomputed * (1 - 1e-6) }, keys.alpha.secretKey));
    expectFailure(verifyLedger(resealLedger(forged, coordinator.secretKey)), index, /recorded epsilonTask .* below .* recomputed from the recorded mechanisms/);
    const lowTotal = withCharge(entries, index, signCharge({ ...charge.body.charge, epsilonStudyTotal: charge.body.charge.epsilonTask }, keys.alpha.secretKey));
    expectFailure(verifyLedger(resealLedger(lowTotal, coordinator.secretKey)), index, /recorded epsilonStudyTotal .* below/);
    // Within the relative tolerance of 1e-9 it still verifies; higher is always fine.
    for (const epsilonTask of [recomputed * (1 - 1e-10), recomputed * 2]) {
      const close = withCharge(entries, index, signCharge({ ...charge.body.charge, epsilonTask }, keys.alpha.secretKey));
      expect(verifyLedger(resealLedger(close, coordinator.secretKey)).ok).toBe(true);
    }
  });

  it("for a changed mechanism the site signed, since the charge then no longer covers its totals", () => {
    const { entries, coordinator, keys } = buildTestLedger();
    const index = entries.findIndex((e) => e.kind === "charge");
    const c = (entries[index] as ChargeEntry).body.charge;
    const forged = withCharge(entries, index, signCharge({ ...c, mechanisms: [{ ...TEST_MECHANISMS[0], sigma: 1 }, TEST_MECHANISMS[1]] }, keys.alpha.secretKey));
    expectFailure(verifyLedger(resealLedger(forged, coordinator.secretKey)), index, /recorded epsilonTask .* below/);
    const invalid = withCharge(entries, index, signCharge({ ...c, mechanisms: [{ ...TEST_MECHANISMS[0], sigma: -1 }] }, keys.alpha.secretKey));
    expectFailure(verifyLedger(resealLedger(invalid, coordinator.secretKey)), index, /mechanisms\[0\] is invalid: .*sigma/);
  });

  it("for forged signatures: another key, another site's key, an unenrolled site, a forged head", () => {
    const { entries, coordinator, keys } = buildTestLedger();
    const index = entries.findIndex((e) => e.kind === "charge");
    const c = (entries[index] as ChargeEntry).body.charge;
    for (const secretKey of [generateSigningKeyPair().secretKey, keys.beta.secretKey]) {
      const forged = withCharge(entries, index, signCharge(c, secretKey));
      expectFailure(verifyLedger(resealLedger(forged, coordinator.secretKey)), index, /site signature does not verify with the key site "alpha" enrolled at seq 1/);
    }
    const stranger = withCharge(entries, index, signCharge({ ...c, siteName: "gamma" }, generateSigningKeyPair().secretKey));
    expectFailure(verifyLedger(resealLedger(stranger, coordinator.secretKey)), index, /site "gamma", which has no earlier enrolment entry/);

    const impostor = generateSigningKeyPair();
    const resealed = resealLedger(entries, impostor.secretKey);
    const firstHead = entries.findIndex((e) => e.kind === "head");
    expectFailure(verifyLedger(resealed), firstHead, /coordinator signature does not verify with the coordinator key of the genesis entry/);
    // The impostor also swaps the genesis key: then every entry is its, and the genesis hash differs
    // from the one the real coordinator's heads pinned — only someone holding an earlier head can tell.
    const swapped = clone(entries);
    (swapped[0] as LedgerEntry & { body: { coordinatorPublicKey: string } }).body.coordinatorPublicKey = encodeBase64(impostor.publicKey);
    expect(verifyLedger(resealLedger(swapped, impostor.secretKey)).ok).toBe(true);
    expect(resealLedger(swapped, impostor.secretKey).at(-1)!.hash).not.toBe(entries.at(-1)!.hash);
  });

  it("for a key replaced by a later enrolment: charges must use the key of the latest enrolment before them", () => {
    const { writer, keys } = buildTestLedger();
    const fresh = generateSigningKeyPair();
    writer.enrolSite({ siteName: "beta", publicKey: encodeBase64(fresh.publicKey) });
    const stale = signCharge(statementFor("beta", 2, [TEST_MECHANISMS], { taskId: "retry" }), keys.beta.secretKey);
    expect(() => writer.appendCharge(stale, { accepted: true })).toThrow(/key site "beta" enrolled at seq 12/);
    writer.appendCharge(signCharge(stale.charge, fresh.secretKey), { accepted: true });
    writer.signHead();
    expect(verifyLedger(writer.entries()).ok).toBe(true);
  });

  it("for a charge over the study's budget, a site's cap for the study, or its overall cap", () => {
    const { entries, coordinator, keys, budget } = buildTestLedger();
    const head = entries.length - 1;
    const over = (extra: Parameters<typeof statementFor>[3], history = [TEST_MECHANISMS, TEST_MECHANISMS], site: "alpha" | "beta" = "alpha"): LedgerEntry[] => {
      const signed = signCharge(statementFor(site, 2, history, { taskId: "one-more", ...extra }), keys[site].secretKey);
      return resealLedger([...entries.slice(0, head), chargeEntry(signed), entries[head]], coordinator.secretKey);
    };
    // alpha already spent two rounds' worth; a third charge takes it over the study's budget.
    expectFailure(verifyLedger(over({})), head, new RegExp(`site "alpha" has spent epsilon .* in study "study-1", over the study's budget ${budget}`));

    // beta's cap for the study is lower than the study's budget.
    const tight = clone(entries);
    const study = tight[3] as LedgerEntry & { body: { siteCaps: Record<string, { epsilon: number; delta: number }> } };
    study.body.siteCaps.beta.epsilon = Accountant.epsilonOf(TEST_MECHANISMS, TEST_DELTA) * 1.01;
    const betaAgain = signCharge(statementFor("beta", 2, [TEST_MECHANISMS], { taskId: "beta-2" }), keys.beta.secretKey);
    expectFailure(verifyLedger(resealLedger([...tight.slice(0, head), chargeEntry(betaAgain), tight[head]], coordinator.secretKey)), head, /over its cap .* for this study/);

    // alpha's overall cap (from its enrolment) is lower than what it has spent.
    const capped = clone(entries);
    (capped[1] as LedgerEntry & { body: { cap: { epsilon: number } } }).body.cap.epsilon = Accountant.epsilonOf(TEST_MECHANISMS, TEST_DELTA) * 1.01;
    const alphaRound2 = entries.findIndex((e) => e.kind === "charge" && e.body.charge.siteName === "alpha" && e.body.charge.round === 2);
    expectFailure(verifyLedger(resealLedger(capped, coordinator.secretKey)), alphaRound2, /over all its studies, over the cap .* it enrolled with/);

    // The writer refuses the same charge with the same reason.
    const { writer, keys: k2 } = buildTestLedger();
    const third = signCharge(statementFor("alpha", 2, [TEST_MECHANISMS, TEST_MECHANISMS], { taskId: "one-more" }), k2.alpha.secretKey);
    expect(() => writer.appendCharge(third, { accepted: false })).toThrow(/the ledger refuses this charge entry: .*over the study's budget/);
    expect(verifyLedger(writer.entries()).ok).toBe(true);
  });

  it("for charges that break the study's terms: a replayed task, another delta, an uninvited site, a round past the last", () => {
    const { entries, coordinator, keys } = buildTestLedger();
    const head = entries.length - 1;
    const cases: [Parameters<typeof statementFor>[3], RegExp][] = [
      [{ taskId: "task-alpha-1", round: 1 }, /task "task-alpha-1" of site "alpha" was already charged at seq 5/],
      [{ delta: 1e-6, taskId: "x" }, /at delta 0.000001, but study "study-1" has delta 0.00001/],
      [{ studyId: "study-2", taskId: "x" }, /study "study-2", which has no earlier study-created entry/],
      [{ round: 3, taskId: "x" }, /round 3 of study "study-1", which has 2 rounds/],
    ];
    for (const [extra, reason] of cases) {
      const signed = signCharge(statementFor("alpha", 1, [], extra), keys.alpha.secretKey);
      expectFailure(verifyLedger(resealLedger([...entries.slice(0, head), chargeEntry(signed), entries[head]], coordinator.secretKey)), head, reason);
    }
    const uninvited = clone(entries);
    (uninvited[3] as LedgerEntry & { body: { sites: string[]; siteCaps?: unknown } }).body.sites = ["alpha"];
    delete (uninvited[3] as LedgerEntry & { body: { siteCaps?: unknown } }).body.siteCaps;
    expectFailure(verifyLedger(resealLedger(uninvited, coordinator.secretKey)), 6, /site "beta" is charged in study "study-1" but was not invited/);
  });

  it("for a release naming a site without an accepted charge in that round", () => {
    const { entries, coordinator } = buildTestLedger();
    const index = entries.findIndex((e) => e.kind === "release");
    for (const [contributors, reason] of [[["alpha", "beta"], /contributor "beta" has no accepted charge in round 2/], [["alpha", "alpha"], /listed twice/], [[], /no contributors/]] as const) {
      const edited = clone(entries);
      (edited[index] as LedgerEntry & { body: { contributors: string[] } }).body.contributors = [...contributors];
      expectFailure(verifyLedger(resealLedger(edited, coordinator.secretKey)), index, reason);
    }
  });

  it("for an entry dated after the verification, a second genesis, an unknown field or kind", () => {
    const { entries, coordinator } = buildTestLedger();
    const last = entries.at(-1)!;
    expectFailure(verifyLedger(entries, { now: last.at - 1 }), entries.length - 1, /dated .* after the time of verification/);
    expect(verifyLedger(entries, { now: new Date(last.at) }).ok).toBe(true);

    const twice = resealLedger([...entries.slice(0, 2), clone(entries[0]), ...entries.slice(2)], coordinator.secretKey);
    expectFailure(verifyLedger(twice), 2, /a second genesis entry/);
    const extra = clone(entries) as unknown as Record<string, unknown>[];
    extra[4].note = "hello";
    expectFailure(verifyLedger(extra), 4, /note is not a field of this format/);
    const kind = clone(entries) as unknown as Record<string, unknown>[];
    kind[4].kind = "bonus";
    expectFailure(verifyLedger(kind), 4, /unknown kind "bonus"/);
    expectFailure(verifyLedger([...entries.slice(0, 3), null, ...entries.slice(3)]), 3, /not a JSON object/);
  });
});
