import { afterEach, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import nacl from "tweetnacl";
import { openSqliteStore, type SqliteStore } from "./store/sql-store.js";
import { PrivacyLedger } from "./privacy-ledger.js";
import { verifyLedger, type LedgerEntry } from "../shared/ledger/index.js";

const key = () => Buffer.from(nacl.sign.keyPair().publicKey).toString("base64");
const stored = (store: SqliteStore) => store.listChainEntries().map((j) => JSON.parse(j) as LedgerEntry);

describe("the coordinator's privacy ledger", () => {
  let store: SqliteStore;
  afterEach(() => store.close());

  it("keeps its chain in the store, signed, across a reopen with the same key", () => {
    const dir = mkdtempSync(join(tmpdir(), "fedsynth-ledger-"));
    store = openSqliteStore(dir);
    const ledger = PrivacyLedger.open(store);
    ledger.enrol({ siteName: "a", publicKey: key() });
    ledger.close();
    store.close();
    store = openSqliteStore(dir);
    const again = PrivacyLedger.open(store);
    again.enrol({ siteName: "b", publicKey: key() });
    again.close();
    const entries = stored(store);
    expect(entries.map((e) => e.kind)).toEqual(["genesis", "head", "enrolment", "head", "enrolment", "head"]);
    expect(verifyLedger(entries).ok).toBe(true);
  });

  it("stays consistent with the store when a transaction that appended to it rolls back", () => {
    store = openSqliteStore(mkdtempSync(join(tmpdir(), "fedsynth-ledger-")));
    const ledger = PrivacyLedger.open(store);
    expect(() => store.transaction(() => {
      ledger.enrol({ siteName: "lost", publicKey: key() });
      throw new Error("the state change failed");
    })).toThrow(/failed/);
    ledger.enrol({ siteName: "kept", publicKey: key() });
    ledger.seal();
    const entries = stored(store);
    expect(entries.filter((e) => e.kind === "enrolment").map((e) => (e.body as { siteName: string }).siteName)).toEqual(["kept"]);
    expect(verifyLedger(entries).ok).toBe(true);
    expect(ledger.entries()).toHaveLength(entries.length);
  });
});
