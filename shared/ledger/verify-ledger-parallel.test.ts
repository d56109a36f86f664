import { describe, expect, it } from "vitest";
import { generateSigningKeyPair } from "../crypto/identity.js";
import type { ChargeEntry, LedgerEntry } from "./entry.js";
import { buildSampleLedger, resealLedger } from "./sample-ledger.js";
import { signCharge } from "./signatures.js";
import { verifyLedger } from "./verify-ledger.js";
import { verifyLedgerInParallel } from "./verify-ledger-parallel.js";

describe("verifyLedgerInParallel", () => {
  const sample = buildSampleLedger({ entries: 700, sites: 6, rounds: 3, parameterSets: 3 });
  const { coordinator, siteKeys } = sample;
  const entries = [...sample.entries];
  const charges = entries.flatMap((e, i) => (e.kind === "charge" ? [i] : []));
  const now = Date.UTC(2027, 0, 1);

  /** The ledger with the charge at `index` signed by a stranger (resealed, so only that signature is wrong). */
  const badSignatureAt = (list: readonly LedgerEntry[], index: number): LedgerEntry[] => {
    const out = structuredClone(list) as LedgerEntry[];
    const e = out[index] as ChargeEntry;
    out[index] = { ...e, siteSignature: signCharge(e.body.charge, generateSigningKeyPair().secretKey).siteSignature };
    return resealLedger(out, coordinator.secretKey);
  };
  /** The ledger with the charge at `index` claiming less than it spent, signed by its site. */
  const lowEpsilonAt = (list: readonly LedgerEntry[], index: number): LedgerEntry[] => {
    const out = structuredClone(list) as LedgerEntry[];
    const e = out[index] as ChargeEntry;
    const signed = signCharge({ ...e.body.charge, epsilonTask: e.body.charge.epsilonTask / 2 }, siteKeys.get(e.body.charge.siteName)!.secretKey);
    out[index] = { ...e, body: { ...e.body, charge: signed.charge }, siteSignature: signed.siteSignature };
    return resealLedger(out, coordinator.secretKey);
  };

  it("gives exactly the sequential verdict, on a valid ledger and on bad ones", async () => {
    expect(entries.length).toBe(700);
    expect(entries.filter((e) => e.kind === "charge" || e.kind === "head").length).toBeGreaterThan(512); // several chunks of signatures
    const early = charges[3];
    const late = charges[charges.length - 5];
    const cases: (readonly unknown[])[] = [
      entries,
      badSignatureAt(entries, late),
      badSignatureAt(entries, early),
      lowEpsilonAt(badSignatureAt(entries, late), early), // the audit's failure comes first
      badSignatureAt(lowEpsilonAt(entries, late), early), // the signature's failure comes first
      badSignatureAt(lowEpsilonAt(entries, late), late), // both at once: the signature is checked first
      resealLedger(entries, generateSigningKeyPair().secretKey), // every head forged
      entries.map((e, i) => (i === late ? { ...e, siteSignature: "not base64" } : e)),
      entries.slice(0, -1),
    ];
    const verdicts = [];
    for (const list of cases) {
      const sequential = verifyLedger(list, { now });
      const parallel = await verifyLedgerInParallel(list, { now, threads: 2, minEntries: 0 });
      expect(parallel).toEqual(sequential);
      verdicts.push(parallel.ok ? "ok" : `${parallel.index}: ${parallel.reason.split(" ").slice(0, 4).join(" ")}`);
    }
    expect(verdicts.slice(0, 7)).toEqual([
      "ok", `${late}: the site signature does`, `${early}: the site signature does`, `${early}: the recorded epsilonTask ${(entries[early] as ChargeEntry).body.charge.epsilonTask / 2}`,
      `${early}: the site signature does`, `${late}: the site signature does`, `${entries.findIndex((e) => e.kind === "head")}: the head's coordinator signature`,
    ]);
  });

  it("verifies short ledgers on the calling thread", async () => {
    const small = buildSampleLedger({ sites: 2, studies: 1, rounds: 1 });
    expect(await verifyLedgerInParallel(small.entries)).toEqual(verifyLedger(small.entries));
  });
});
