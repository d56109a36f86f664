import { describe, expect, it } from "vitest";
import { FedsynthError } from "../errors.js";
import { generateSigningKeyPair } from "../crypto/identity.js";
import { encodeBase64 } from "./base64.js";
import { GENESIS_PREV_HASH, type ChargeStatement } from "./entry.js";
import { computeEntryHash } from "./entry-hash.js";
import { LedgerWriter } from "./ledger-writer.js";
import { signCharge, verifyHeadSignature } from "./signatures.js";
import { buildTestLedger, statementFor, TEST_MECHANISMS } from "./test-ledger.js";
import { verifyLedger } from "./verify-ledger.js";

describe("LedgerWriter", () => {
  it("chains entries from a genesis that records the coordinator's key, and signs heads with it", () => {
    const coordinator = generateSigningKeyPair();
    const w = LedgerWriter.start(coordinator.secretKey, { ledgerId: "L", at: 1000 });
    const enrolment = w.enrolSite({ siteName: "alpha", publicKey: encodeBase64(generateSigningKeyPair().publicKey) }, 2000);
    const head = w.signHead(3000);
    const [genesis] = w.entries();
    expect(genesis).toMatchObject({ seq: 0, prevHash: GENESIS_PREV_HASH, at: 1000, kind: "genesis", body: { format: "fedsynth-ledger/1", ledgerId: "L", coordinatorPublicKey: encodeBase64(coordinator.publicKey) } });
    expect(enrolment).toMatchObject({ seq: 1, prevHash: genesis.hash, hash: computeEntryHash(enrolment) });
    expect(head).toMatchObject({ seq: 2, prevHash: enrolment.hash, body: {} });
    expect(verifyHeadSignature(head.hash, head.coordinatorSignature, encodeBase64(coordinator.publicKey))).toBe(true);
    expect(w.unsignedCount).toBe(0);
    w.enrolSite({ siteName: "beta", publicKey: encodeBase64(generateSigningKeyPair().publicKey) });
    expect(w.unsignedCount).toBe(1);
  });

  it("lets a site sign its charge before it knows where the charge goes in the chain", () => {
    const { writer, keys } = buildTestLedger();
    const statement: ChargeStatement = statementFor("beta", 2, [TEST_MECHANISMS], { taskId: "late-retry" });
    const signed = signCharge(statement, keys.beta.secretKey); // signed first…
    writer.appendRefusal({ siteName: "alpha", studyId: "study-1", round: 2, by: "coordinator", reason: "duplicate" }); // …other entries land…
    const entry = writer.appendCharge(signed, { accepted: true }); // …and it is chained after them, unchanged.
    expect(entry.body.charge).toEqual(statement);
    expect(entry.siteSignature).toBe(signed.siteSignature);
    writer.signHead();
    expect(verifyLedger(writer.entries()).ok).toBe(true);
  });

  it("refuses an entry the verifier would refuse, and stays usable", () => {
    const { writer, keys } = buildTestLedger();
    const before = writer.entries().length;
    const cases: [() => unknown, RegExp][] = [
      [() => writer.appendCharge(signCharge(statementFor("gamma", 1, []), keys.alpha.secretKey), { accepted: true }), /no earlier enrolment entry/],
      [() => writer.appendCharge(signCharge(statementFor("beta", 2, [TEST_MECHANISMS]), keys.alpha.secretKey), { accepted: true }), /site signature does not verify/],
      [() => writer.appendCharge({ ...signCharge(statementFor("beta", 2, [TEST_MECHANISMS]), keys.beta.secretKey), siteSignature: "AAAA" }, { accepted: true }), /site signature does not verify/],
      [() => writer.enrolSite({ siteName: "gamma", publicKey: "not base64!" }), /not a 32-byte Ed25519 key/],
      [() => writer.createStudy({ studyId: "study-1", name: "again", schema: {}, engine: "independent", epsilon: 1, delta: 1e-5, rounds: 1, sites: [] }), /already created at seq 3/],
      [() => writer.appendRelease({ studyId: "study-9", round: 1, modelSha256: "0".repeat(64), contributors: ["alpha"] }), /study "study-9"/],
      [() => writer.appendRefusal({ siteName: "alpha", studyId: "study-1", round: 0, by: "site", reason: "x" }), /round must be a whole number >= 1/],
      [() => writer.enrolSite({ siteName: "gamma", publicKey: encodeBase64(new Uint8Array(32)), cap: { epsilon: NaN, delta: 0 } }), /NaN/],
    ];
    for (const [append, reason] of cases) {
      let error: unknown;
      try {
        append();
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(FedsynthError);
      expect((error as FedsynthError).message).toMatch(reason);
      expect((error as FedsynthError).hint).toBeTruthy();
    }
    expect(writer.entries()).toHaveLength(before);
    writer.appendCharge(signCharge(statementFor("beta", 2, [TEST_MECHANISMS]), keys.beta.secretKey), { accepted: true });
    writer.signHead();
    expect(verifyLedger(writer.entries()).ok).toBe(true);
  });

  it("keeps its own copy of what it was given", () => {
    const { writer, keys } = buildTestLedger();
    const signed = signCharge(statementFor("beta", 2, [TEST_MECHANISMS]), keys.beta.secretKey);
    writer.appendCharge(signed, { accepted: true, reason: undefined });
    signed.charge.epsilonTask = 0;
    signed.charge.mechanisms.length = 0;
    writer.signHead();
    expect(writer.entries().at(-2)!).not.toHaveProperty("body.reason");
    expect(verifyLedger(writer.entries()).ok).toBe(true);
  });

  it("resumes a stored ledger with its coordinator's key only, and continues the chain", () => {
    const { entries, coordinator, keys } = buildTestLedger();
    const resumed = LedgerWriter.resume(entries.slice(0, -1), coordinator.secretKey); // crashed before the last head
    resumed.appendCharge(signCharge(statementFor("beta", 2, [TEST_MECHANISMS]), keys.beta.secretKey), { accepted: true });
    resumed.signHead();
    expect(verifyLedger(resumed.entries()).ok).toBe(true);
    expect(() => LedgerWriter.resume(entries, generateSigningKeyPair().secretKey)).toThrow(/not the one the ledger's genesis entry records/);
    expect(() => LedgerWriter.resume([entries[0], entries[2]], coordinator.secretKey)).toThrow(/fails at entry 1 \(seq 2\)/);
    expect(() => LedgerWriter.resume([], coordinator.secretKey)).toThrow(/empty/);
  });
});
