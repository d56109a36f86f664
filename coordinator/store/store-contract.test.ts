/**
 * One test suite for every CoordinatorStore: the embedded SQLite store and the PostgreSQL store run the
 * same cases, so the coordinator can rely on the same behaviour from either (records round-trip exactly,
 * transactions roll back as a whole, leases change hands only when free or expired, a fenced store
 * refuses writes once its lease is gone).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from "vitest";
import { openPostgresStore, openSqliteStore, type SqlStore } from "./sql-store.js";
import { postgresUnavailable, startPostgres, type TestPostgres } from "../../test/support/postgres.js";
import type { RoundRecord, StudyRecord } from "./records.js";

const noPostgres = postgresUnavailable();
if (noPostgres) console.warn(`store contract: PostgreSQL cases skipped: ${noPostgres}`);

let pg: TestPostgres | undefined;
let dbCount = 0;
beforeAll(async () => {
  if (!noPostgres) pg = await startPostgres();
});
afterAll(() => pg?.stop());

const kinds: { name: string; open: () => SqlStore; reopen: (s: SqlStore) => SqlStore; skip?: string }[] = [
  {
    name: "sqlite",
    open: () => openSqliteStore(mkdtempSync(join(tmpdir(), "fedsynth-store-"))),
    reopen: (s) => openSqliteStore(join(s.path, "..")),
  },
  {
    name: "postgres",
    skip: noPostgres,
    open: () => openPostgresStore(pg!.database(`contract${++dbCount}`)),
    reopen: () => openPostgresStore(pg!.database(`contract${dbCount}`)),
  },
];

function study(id: string): StudyRecord {
  return {
    studyId: id, name: "heart", schemaJson: '{"columns":[]}', engine: "independent", engineReason: "named by the operator", epsilon: 0.1 + 0.2, delta: 1e-5,
    rounds: 2, minSites: 2, roundDeadlineSeconds: 3600, engineConfig: { bins: 8, nested: { a: [1, 2] } }, secureThreshold: 3,
    state: "created", statusMessage: "", completedRounds: 0, invitationDeadlineAt: null, createdAt: 1_764_000_000_123, updatedAt: 1_764_000_000_123,
    participants: [{ siteName: "b", state: "invited", message: "" }, { siteName: "a", state: "invited", message: "" }],
  };
}

function round(studyId: string, n: number): RoundRecord {
  return {
    studyId, round: n, state: "collecting", roundConfig: { lr: 80 }, mechanisms: [{ kind: "gaussian", sigma: 1.5, sensitivity: 1 } as never],
    updateLength: 3, modelId: null, startedAt: 1_764_000_001_000, deadlineAt: 1_764_000_004_600, finishedAt: null, sessionNonce: new Uint8Array([9, 8, 7]),
  };
}

for (const kind of kinds) {
  describe.skipIf(!!kind.skip)(`CoordinatorStore on ${kind.name}`, () => {
    let store: SqlStore;
    beforeEach(() => {
      store = kind.open();
    });
    afterEach(() => store.close());

    it("migrates to the latest schema version, and reopening keeps it", () => {
      expect(store.schemaVersion()).toBe(7);
      store.insertStudy(study("s1"));
      store.close();
      store = kind.reopen(store);
      expect(store.schemaVersion()).toBe(7);
      expect(store.getStudy("s1")?.name).toBe("heart");
    });

    it("round-trips studies, rounds, tasks, submissions and models exactly", () => {
      store.insertStudy(study("s1"));
      expect(store.getStudy("s1")).toEqual(study("s1"));
      store.updateStudy("s1", { state: "running", invitationDeadlineAt: 1_764_000_009_999 }, 1_764_000_000_500);
      store.setParticipant("s1", "a", "active", "ok");
      const s = store.getStudy("s1")!;
      expect([s.state, s.invitationDeadlineAt, s.updatedAt, s.participants.map((p) => [p.siteName, p.state])]).toEqual(
        ["running", 1_764_000_009_999, 1_764_000_000_500, [["b", "invited"], ["a", "active"]]]);

      store.insertRound(round("s1", 1));
      expect(store.getRound("s1", 1)).toEqual(round("s1", 1));
      expect(store.listRoundsInState("collecting").map((r) => r.round)).toEqual([1]);

      store.insertTask({ taskId: "t-b", studyId: "s1", round: 1, siteName: "b", state: "pending", message: "", createdAt: 5 });
      store.insertTask({ taskId: "t-a", studyId: "s1", round: 1, siteName: "a", state: "pending", message: "", createdAt: 6 });
      expect(store.pendingTasksForSite("a").map((t) => t.taskId)).toEqual(["t-a"]);
      const update = new Float64Array([0.1, -2.5e-300, 1e300]);
      store.insertSubmission({ taskId: "t-a", studyId: "s1", round: 1, siteName: "a", update, updateSha256: "ab", epsilon: 0.30000000000000004, delta: 1e-5, receivedAt: 7, signature: "sig" });
      store.updateTask("t-a", "submitted", "");
      expect(store.getSubmission("t-a")?.update).toEqual(update);
      expect(store.getSubmission("t-a")?.epsilon).toBe(0.30000000000000004);
      expect(store.pendingTasksForSite("a")).toEqual([]);
      store.purgeSubmissionUpdates("s1", 1);
      expect(store.listSubmissions("s1", 1)[0].update).toBeNull();

      const bytes = new Uint8Array(70_000).map((_, i) => i % 251);
      store.insertModel({ modelId: "m1", studyId: "s1", round: 1, engine: "independent", bytes, sha256: "ff", createdAt: 8 });
      expect(store.latestModel("s1")?.bytes).toEqual(bytes);
      store.finishRound("s1", 1, "aggregated", 9);
      expect(store.getRound("s1", 1)?.finishedAt).toBe(9);
    });

    it("keeps a secure-aggregation session's phase, running sum and messages until it is dropped or replaced", () => {
      const nonce = new Uint8Array(16).map((_, i) => 200 + i);
      store.openSecAggSession("s1", 2, nonce, 10);
      expect(store.getSecAggSession("s1", 2)).toEqual({ studyId: "s1", round: 2, sessionNonce: nonce, phase: "AdvertiseKeys", summedSites: [], runningSum: null, updatedAt: 10 });
      const advert = new Uint8Array([1, 0, 255, 3]);
      store.insertSecAggMessage("s1", 2, { phase: "AdvertiseKeys", siteName: "b", message: advert, receivedAt: 11 });
      store.insertSecAggMessage("s1", 2, { phase: "AdvertiseKeys", siteName: "a", message: new Uint8Array([9]), receivedAt: 12 });
      // One message per site and phase: a second is an error, never a silent overwrite.
      expect(() => store.insertSecAggMessage("s1", 2, { phase: "AdvertiseKeys", siteName: "b", message: new Uint8Array([7]), receivedAt: 13 })).toThrow();
      store.setSecAggPhase("s1", 2, "MaskedInput", 14);
      const sum = new Uint8Array(40_004).map((_, i) => (i * 7) % 256);
      store.transaction(() => store.setSecAggSum("s1", 2, ["a", "b"], sum, 15));
      expect(store.getSecAggSession("s1", 2)).toMatchObject({ phase: "MaskedInput", summedSites: ["a", "b"], runningSum: sum, updatedAt: 15 });
      expect(store.listSecAggMessages("s1", 2)).toEqual([
        { phase: "AdvertiseKeys", siteName: "b", message: advert, receivedAt: 11 },
        { phase: "AdvertiseKeys", siteName: "a", message: new Uint8Array([9]), receivedAt: 12 },
      ]);
      // A rolled-back sum update leaves the sum before it.
      expect(() => store.transaction(() => { store.setSecAggSum("s1", 2, ["a", "b", "c"], new Uint8Array(4), 16); throw new Error("boom"); })).toThrow("boom");
      expect(store.getSecAggSession("s1", 2)?.summedSites).toEqual(["a", "b"]);
      // A new session of the round starts from nothing; dropping it leaves nothing behind.
      store.openSecAggSession("s1", 2, new Uint8Array(16), 17);
      expect(store.getSecAggSession("s1", 2)).toMatchObject({ phase: "AdvertiseKeys", summedSites: [], runningSum: null });
      expect(store.listSecAggMessages("s1", 2)).toEqual([]);
      store.deleteSecAggSession("s1", 2);
      expect(store.getSecAggSession("s1", 2)).toBeUndefined();
      expect(() => store.setSecAggPhase("s1", 2, "ShareKeys", 18)).toThrow(/no stored secure-aggregation session/);
    });

    it("keeps sites, tokens, secrets, the ledger chain and the event log", () => {
      store.upsertSite("a", "0.1.0", 1);
      store.setSiteIdentity("a", { certSerial: "01", certFingerprint: "fp", signingPublicKey: "pk" }, "0.1.0", 2);
      store.revokeSite("a", "lost laptop", 3);
      expect(store.getSite("a")).toMatchObject({ certSerial: "01", signingPublicKey: "pk", revokedAt: 3, revokedReason: "lost laptop" });
      store.insertEnrollmentToken({ tokenHash: "h", siteName: "a", issuedAt: 1, expiresAt: 2, usedAt: null });
      store.markEnrollmentTokenUsed("h", 4);
      expect(store.getEnrollmentToken("h")?.usedAt).toBe(4);
      store.putSecret("k", new Uint8Array([0, 255, 7]));
      expect(store.getSecret("k")).toEqual(new Uint8Array([0, 255, 7]));
      expect(store.lastChainSeq()).toBe(-1);
      store.appendChainEntry(0, '{"seq":0}');
      store.appendChainEntry(1, '{"seq":1}');
      expect([store.lastChainSeq(), store.listChainEntries()]).toEqual([1, ['{"seq":0}', '{"seq":1}']]);
      const first = store.appendLedger({ at: 1, kind: "charge", studyId: "s", siteName: "a", round: 1, body: { epsilon: 0.5 } });
      const second = store.appendLedger({ at: 2, kind: "release", studyId: "s", siteName: null, round: 1, body: {} });
      expect(second.seq).toBeGreaterThan(first.seq);
      expect(store.listLedger({ siteName: "a" }).map((e) => e.body)).toEqual([{ epsilon: 0.5 }]);
    });

    it("rolls a failed transaction back as a whole, nested ones included", () => {
      store.insertStudy(study("s1"));
      expect(() => store.transaction(() => {
        store.updateStudy("s1", { statusMessage: "half done" }, 10);
        store.transaction(() => store.appendChainEntry(0, "{}"));
        throw new Error("boom");
      })).toThrow("boom");
      expect(store.getStudy("s1")?.statusMessage).toBe("");
      expect(store.lastChainSeq()).toBe(-1);
      // An inner failure caught inside keeps the outer work.
      store.transaction(() => {
        store.updateStudy("s1", { statusMessage: "kept" }, 11);
        expect(() => store.transaction(() => { store.appendChainEntry(0, "{}"); throw new Error("inner"); })).toThrow("inner");
      });
      expect([store.getStudy("s1")?.statusMessage, store.lastChainSeq()]).toEqual(["kept", -1]);
      // A duplicate key is an error, not a silent overwrite.
      expect(() => store.insertStudy(study("s1"))).toThrow();
    });

    it("gives a lease to one holder at a time, and to another only once it is released or expired", async () => {
      const a = store.acquireLease("driver", "replica-a", 60_000);
      expect(a).toMatchObject({ holder: "replica-a", term: 1 });
      expect(store.acquireLease("driver", "replica-b", 60_000)).toBeUndefined();
      const renewed = store.acquireLease("driver", "replica-a", 60_000)!;
      expect(renewed.term).toBe(1);
      expect(renewed.expiresAt).toBeGreaterThanOrEqual(a!.expiresAt);
      expect(store.getLease("driver")).toMatchObject({ holder: "replica-a", live: true });
      store.releaseLease("driver", "replica-b"); // not the holder: no effect
      expect(store.acquireLease("driver", "replica-b", 60_000)).toBeUndefined();
      store.releaseLease("driver", "replica-a");
      expect(store.getLease("driver")?.live).toBe(false);
      expect(store.acquireLease("driver", "replica-b", 50)).toMatchObject({ holder: "replica-b", term: 2 });
      await new Promise((r) => setTimeout(r, 120));
      expect(store.acquireLease("driver", "replica-a", 60_000)).toMatchObject({ holder: "replica-a", term: 3 });
    });

    it("refuses every write from a fenced store whose lease has passed to another holder", () => {
      store.insertStudy(study("s1"));
      const lease = store.acquireLease("driver", "replica-a", 60_000)!;
      const lost: string[] = [];
      store.fenceWith(lease, (why) => lost.push(why));
      store.updateStudy("s1", { statusMessage: "while holding" }, 12);
      store.releaseLease("driver", "replica-a");
      // Another replica takes over (in the same database).
      expect(store.acquireLease("driver", "replica-b", 60_000)).toMatchObject({ term: 2 });
      expect(() => store.updateStudy("s1", { statusMessage: "after losing it" }, 13)).toThrow(/no longer holds the 'driver' lease: another replica \(replica-b\)/);
      expect(() => store.transaction(() => store.appendChainEntry(0, "{}"))).toThrow(/no longer holds/);
      expect(lost.length).toBe(2);
      expect(store.getStudy("s1")?.statusMessage).toBe("while holding");
      expect(store.lastChainSeq()).toBe(-1);
    });
  });
}
