/** The coordinator's round lifecycle over a real SQLite store in a temporary directory. */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Coordinator } from "./coordinator.js";
import { openSqliteStore, type SqliteStore } from "./store/sql-store.js";
import { MIGRATIONS } from "./store/migrations.js";
import type { AgentBound, SiteSession } from "./sessions.js";
import { createLogger } from "../shared/telemetry/log.js";
import { getEngine } from "../shared/engines/registry.js";
import { chooseEngine } from "../shared/engines/engine-choice.js";
import { parseSchema } from "../shared/schema/parse-schema.js";
import { parseTable } from "../shared/schema/read-csv.js";
import { SecureRng } from "../shared/random/rng.js";
import { sha256Hex, vectorToBytes } from "../shared/util/vector-bytes.js";
import type { TaskAssignment } from "../shared/federation/task.js";
import { FedsynthError } from "../shared/errors.js";
import { Accountant } from "../shared/privacy/accountant.js";
import { signChargeClaim } from "../shared/federation/charge-statement.js";
import { verifyLedger } from "../shared/ledger/index.js";
import nacl from "tweetnacl";

const SCHEMA_JSON = JSON.stringify({
  columns: [
    { name: "age", type: "numeric", min: 0, max: 100, integer: true },
    { name: "smoker", type: "categorical", values: ["no", "yes"] },
  ],
});
const schema = parseSchema(SCHEMA_JSON, "test");
const table = parseTable("age,smoker\n30,no\n41,yes\n55,no\n", "site.csv", schema).table;

class RecordingSession implements SiteSession {
  readonly connectedAt = Date.now();
  received: AgentBound[] = [];
  closed = false;
  constructor(readonly siteName: string) {}
  send(m: AgentBound) { this.received.push(m); }
  close() { this.closed = true; }
  tasks(): TaskAssignment[] { return this.received.flatMap((m) => (m.kind === "task" ? [m.task] : [])); }
  invitations(): string[] { return this.received.flatMap((m) => (m.kind === "invitation" ? [m.study.studyId] : [])); }
}

/** What a well-behaved site computes for a task. */
function resultFor(task: TaskAssignment, epsilonSoFar: number[]) {
  const engine = getEngine(task.study.engine);
  const ctx = { schema, privacy: { epsilon: task.study.epsilon, delta: task.study.delta, rounds: task.study.rounds }, config: task.study.engineConfig, round: task.round, roundConfig: task.roundConfig };
  const update = engine.localUpdate(ctx, null, table, new SecureRng());
  return { taskId: task.taskId, update, updateSha256: sha256Hex(vectorToBytes(update)), epsilon: epsilonSoFar[task.round - 1], delta: task.study.delta, signature: new Uint8Array(64) };
}

/** Each test site's signing key (registered with the coordinator in development mode, trust on first use). */
const SITE_KEYS = new Map(["a", "b"].map((name) => [name, nacl.sign.keyPair()]));

describe("Coordinator", () => {
  let dir: string;
  let store: SqliteStore;
  let coordinator: Coordinator;
  const log = createLogger("test", { write: () => undefined });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "fedsynth-coord-"));
    store = openSqliteStore(dir);
    coordinator = new Coordinator({ store, log });
    for (const [name, key] of SITE_KEYS) coordinator.sites.enrollInsecure(name, "test", key.publicKey);
  });

  /** A site's signature over its charge statement, as the agent makes it (site-agent/task-runner.ts). */
  const sign = (task: TaskAssignment, site: string, updateSha256: string, epsilonStudyTotal: number, key = SITE_KEYS.get(site)!.secretKey) =>
    Buffer.from(signChargeClaim({
      siteName: site, studyId: task.study.studyId, round: task.round, taskId: task.taskId, mechanisms: task.mechanisms,
      delta: task.study.delta, epsilonStudyTotal, updateSha256,
    }, key).signature, "base64");

  /** What a well-behaved site sends: its result, signed with its own key. */
  const result = (task: TaskAssignment, epsilonSoFar: number[]) => {
    const r = resultFor(task, epsilonSoFar);
    const site = store.getTask(task.taskId)!.siteName;
    return { ...r, signature: sign(task, site, r.updateSha256, r.epsilon) };
  };
  afterEach(() => {
    coordinator.stop();
    store.close();
  });

  const acceptAll = (studyId: string, sites: string[]) => {
    for (const site of sites) coordinator.answerInvitation(site, { studyId, accepted: true, reason: null, message: "" });
  };

  const create = (over: Partial<Parameters<Coordinator["createStudy"]>[0]> = {}) =>
    coordinator.createStudy({ name: "s", schemaJson: SCHEMA_JSON, engine: "independent", epsilon: 1, delta: 1e-5, rounds: 2, sites: ["a", "b"], minSites: 0, roundDeadlineSeconds: 0, ...over });

  it("runs a study: tasks to connected sites, aggregation per round, completion with a release", () => {
    const study = create();
    const a = new RecordingSession("a");
    const b = new RecordingSession("b");
    coordinator.attachSession(a, "test");
    coordinator.startStudy(study.studyId);
    expect(a.invitations()).toEqual([study.studyId]);
    coordinator.answerInvitation("a", { studyId: study.studyId, accepted: true, reason: null, message: "" });
    expect(a.tasks()).toHaveLength(0); // no round begins before every invited site has answered
    coordinator.attachSession(b, "test"); // a late site gets its invitation on connect
    expect(b.invitations()).toEqual([study.studyId]);
    coordinator.answerInvitation("b", { studyId: study.studyId, accepted: true, reason: null, message: "" });
    expect(a.tasks()).toHaveLength(1);
    expect(b.tasks()).toHaveLength(1);

    const detail = coordinator.studyDetail(study.studyId);
    const mechanisms = detail.rounds[0].round.mechanisms;
    const eps = [Accountant.epsilonOf(mechanisms, 1e-5), Accountant.epsilonOf([...mechanisms, ...mechanisms], 1e-5)];

    expect(coordinator.submitResult("a", result(a.tasks()[0], eps)).accepted).toBe(true);
    expect(store.getStudy(study.studyId)!.completedRounds).toBe(0);
    expect(coordinator.submitResult("b", result(b.tasks()[0], eps)).accepted).toBe(true);
    expect(store.getStudy(study.studyId)!.completedRounds).toBe(1);
    // Individual updates are not kept once the round is aggregated.
    expect(store.listSubmissions(study.studyId, 1).every((s) => s.update === null)).toBe(true);

    expect(a.tasks()).toHaveLength(2);
    coordinator.submitResult("a", result(a.tasks()[1], eps));
    coordinator.submitResult("b", result(b.tasks()[1], eps));
    const done = store.getStudy(study.studyId)!;
    expect(done.state).toBe("completed");
    expect(eps[1]).toBeLessThanOrEqual(1);
    expect(coordinator.studyDetail(study.studyId).charges.get("a")!.epsilon).toBeCloseTo(eps[1], 12);
    expect(store.listLedger({ studyId: study.studyId, kind: "release" })).toHaveLength(1);
    // The auditor's chain: every charge as the sites signed it, each round's release, ending in a signed head.
    coordinator.ledger.seal();
    const chain = [...coordinator.ledger.entries()];
    const verdict = verifyLedger(chain);
    expect(verdict.ok, JSON.stringify(verdict)).toBe(true);
    expect(chain.filter((e) => e.kind === "charge")).toHaveLength(4);
    expect(chain.filter((e) => e.kind === "release")).toHaveLength(2);
    expect(chain.filter((e) => e.kind === "enrolment").map((e) => (e.body as { siteName: string }).siteName).sort()).toEqual(["a", "b"]);
    expect(store.listLedger({ studyId: study.studyId, kind: "charge" })).toHaveLength(4);
    expect(a.received.some((m) => m.kind === "study-closed" && m.state === "completed")).toBe(true);
    expect(coordinator.exportModel(study.studyId).round).toBe(2);
  });

  it("accepts a resent identical result once and refuses a different one for the same task", () => {
    const study = create({ rounds: 1 });
    const a = new RecordingSession("a");
    coordinator.attachSession(a, "test");
    coordinator.attachSession(new RecordingSession("b"), "test");
    coordinator.startStudy(study.studyId);
    acceptAll(study.studyId, ["a", "b"]);
    const task = a.tasks()[0];
    const mech = coordinator.studyDetail(study.studyId).rounds[0].round.mechanisms;
    const eps = [Accountant.epsilonOf(mech, 1e-5)];
    const first = result(task, eps);
    expect(coordinator.submitResult("a", first)).toEqual({ accepted: true, message: "accepted" });
    expect(coordinator.submitResult("a", first)).toEqual({ accepted: true, message: "already accepted" });
    const other = result(task, eps);
    expect(coordinator.submitResult("a", other).accepted).toBe(false);
    expect(coordinator.submitResult("a", other).accepted).toBe(false);
    // The second, different update left the site too: it is charged once, marked as not accepted.
    expect(store.listLedger({ studyId: study.studyId, kind: "charge" }).map((e) => e.body.accepted)).toEqual([true, false]);
  });

  it("rejects a result of the wrong length, a wrong hash, a wrong claimed epsilon, and a task of another site", () => {
    const study = create({ rounds: 1 });
    const a = new RecordingSession("a");
    coordinator.attachSession(a, "test");
    coordinator.attachSession(new RecordingSession("b"), "test");
    coordinator.startStudy(study.studyId);
    acceptAll(study.studyId, ["a", "b"]);
    const task = a.tasks()[0];
    const mech = coordinator.studyDetail(study.studyId).rounds[0].round.mechanisms;
    const good = result(task, [Accountant.epsilonOf(mech, 1e-5)]);
    const short = new Float64Array(3);
    expect(coordinator.submitResult("a", { ...good, update: short, updateSha256: sha256Hex(vectorToBytes(short)) }).message).toMatch(/has 3 values/);
    expect(coordinator.submitResult("a", { ...good, updateSha256: "00" }).message).toMatch(/SHA-256/);
    expect(coordinator.submitResult("a", { ...good, epsilon: good.epsilon / 2 }).message).toMatch(/the coordinator computes/);
    expect(coordinator.submitResult("b", good).message).toMatch(/not assigned to site b/);
    const forged = sign(task, "a", good.updateSha256, good.epsilon, SITE_KEYS.get("b")!.secretKey);
    expect(coordinator.submitResult("a", { ...good, signature: forged }).message).toMatch(/not signed with site a's registered signing key/);
    expect(coordinator.submitResult("a", { ...good, signature: new Uint8Array(64) }).message).toMatch(/not signed/);
    // Malformed results are refused outright; the site's own ledger keeps what it sent.
    expect(store.listLedger({ kind: "charge" })).toHaveLength(0);
  });

  it("fails the study before any round when a site declines the invitation and too few remain", () => {
    const study = create({ rounds: 1 });
    const a = new RecordingSession("a");
    const b = new RecordingSession("b");
    coordinator.attachSession(a, "test");
    coordinator.attachSession(b, "test");
    coordinator.startStudy(study.studyId);
    coordinator.answerInvitation("a", { studyId: study.studyId, accepted: true, reason: null, message: "" });
    coordinator.answerInvitation("b", { studyId: study.studyId, accepted: false, reason: "budget-cap", message: "cap is 0.5" });
    const s = store.getStudy(study.studyId)!;
    expect(s.state).toBe("failed");
    expect(s.statusMessage).toMatch(/b declined \(cap is 0.5\)/);
    expect(a.tasks()).toHaveLength(0);
    expect(store.listRounds(study.studyId)).toHaveLength(0);
    expect(store.listLedger({ kind: "refusal" })[0].body).toMatchObject({ stage: "invitation", reason: "budget-cap", message: "cap is 0.5" });
  });

  it("fails the study with the site's reason when a site declines a round task", () => {
    const study = create({ rounds: 1 });
    const a = new RecordingSession("a");
    coordinator.attachSession(a, "test");
    coordinator.attachSession(new RecordingSession("b"), "test");
    coordinator.startStudy(study.studyId);
    acceptAll(study.studyId, ["a", "b"]);
    coordinator.decline("a", { taskId: a.tasks()[0].taskId, studyId: study.studyId, reason: "budget-cap", message: "cap is 0.5" });
    const s = store.getStudy(study.studyId)!;
    expect(s.state).toBe("failed");
    expect(s.statusMessage).toMatch(/a declined \(cap is 0.5\)/);
  });

  it("completes a round at its deadline with the sites that submitted, when enough did", () => {
    let now = 1_000_000;
    coordinator = new Coordinator({ store, log, now: () => now });
    const study = create({ rounds: 1, minSites: 1, roundDeadlineSeconds: 60 });
    const a = new RecordingSession("a");
    const b = new RecordingSession("b");
    coordinator.attachSession(a, "test");
    coordinator.attachSession(b, "test");
    coordinator.startStudy(study.studyId);
    acceptAll(study.studyId, ["a", "b"]);
    const mech = coordinator.studyDetail(study.studyId).rounds[0].round.mechanisms;
    coordinator.submitResult("a", result(a.tasks()[0], [Accountant.epsilonOf(mech, 1e-5)]));
    expect(store.getStudy(study.studyId)!.state).toBe("running");
    now += 61_000;
    coordinator.start(); // a restart re-checks open rounds (and gives them a fresh deadline)
    expect(store.getStudy(study.studyId)!.state).toBe("running");
    now += 3_600_000;
    (coordinator as any).checkDeadlines();
    const s = store.getStudy(study.studyId)!;
    expect(s.state).toBe("completed");
    expect(store.listTasks(study.studyId, 1).find((t) => t.siteName === "b")!.state).toBe("expired");
    // b's update arrives after the round closed: refused, but its spend is recorded (it left the site).
    const late = coordinator.submitResult("b", result(b.tasks()[0], [Accountant.epsilonOf(mech, 1e-5)]));
    expect(late).toMatchObject({ accepted: false });
    const bCharges = store.listLedger({ studyId: study.studyId, siteName: "b", kind: "charge" });
    expect(bCharges.map((e) => e.body.accepted)).toEqual([false]);
    expect(coordinator.studyDetail(study.studyId).charges.get("b")!.epsilon).toBeGreaterThan(0);
  });

  it("begins with the sites that accepted when others stay silent past the invitation deadline", () => {
    let now = 5_000_000;
    coordinator = new Coordinator({ store, log, now: () => now });
    const study = create({ rounds: 1, minSites: 1, roundDeadlineSeconds: 60 });
    const a = new RecordingSession("a");
    coordinator.attachSession(a, "test");
    coordinator.startStudy(study.studyId);
    coordinator.answerInvitation("a", { studyId: study.studyId, accepted: true, reason: null, message: "" });
    expect(a.tasks()).toHaveLength(0);
    now += 61_000;
    (coordinator as any).checkDeadlines();
    expect(a.tasks()).toHaveLength(1);
    const s = store.getStudy(study.studyId)!;
    expect(s.participants.find((p) => p.siteName === "b")).toMatchObject({ state: "dropped" });
    expect(store.listTasks(study.studyId, 1).map((t) => t.siteName)).toEqual(["a"]);
  });

  it("refuses bad study requests with a message and a hint", () => {
    const bad: [Partial<Parameters<Coordinator["createStudy"]>[0]>, RegExp][] = [
      [{ epsilon: 0 }, /epsilon must be a positive number/],
      [{ delta: 1 }, /delta must be between 0 and 1/],
      [{ rounds: -1 }, /rounds must be a whole number/],
      [{ sites: [] }, /invites no sites/],
      [{ sites: ["a", "a"] }, /invited twice/],
      [{ sites: ["bad name"] }, /not valid/],
      [{ minSites: 3 }, /minimum number of sites/],
      [{ engine: "gan" }, /gan/],
      [{ schemaJson: "{" }, /schema/],
      [{ expectedRows: -5 }, /expected number of rows must be a whole number/],
      [{ budgetSplit: "fast" as never }, /budget split must be equal or annealed, got "fast"/],
      [{ budgetSplit: "annealed" }, /the independent engine splits its budget equally over the rounds and cannot anneal it/],
      [{ engine: "neural", budgetSplit: "annealed" }, /the neural engine splits its budget equally/],
    ];
    for (const [patch, pattern] of bad) {
      let err: unknown;
      try {
        create(patch);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(patch)).toBeInstanceOf(FedsynthError);
      expect((err as FedsynthError).message).toMatch(pattern);
    }
    expect(store.listStudies()).toHaveLength(0);
  });

  it("chooses the engine of a study that names none, and keeps why", () => {
    const chosen = create({ engine: "", expectedRows: 800 });
    const expected = chooseEngine(parseSchema(SCHEMA_JSON, "s"), { sites: 2, expectedRows: 800 });
    expect([chosen.engine, chosen.engineReason]).toEqual([expected.engine, expected.reason]);
    expect(store.getStudy(chosen.studyId)?.engineReason).toBe(expected.reason);
    expect(create({ engine: "independent" }).engineReason).toBe("named by the operator");
  });

  it("anneals the budget of a marginal study that asks for it, and passes over engines that cannot when it chooses", () => {
    const marginal = getEngine("marginal");
    const annealed = create({ engine: "marginal", rounds: 4, budgetSplit: "annealed" });
    expect(marginal.budgetSplit!(annealed.engineConfig)).toBe("annealed");
    expect(marginal.budgetSplit!(create({ engine: "marginal", rounds: 4 }).engineConfig)).toBe("equal");
    expect(marginal.budgetSplit!(create({ engine: "marginal", rounds: 4, budgetSplit: "equal" }).engineConfig)).toBe("equal");
    // A large cohort would get the neural engine; annealing it cannot, so the choice moves on and says why.
    const chosen = create({ engine: "", expectedRows: 1_000_000, budgetSplit: "annealed" });
    expect(chosen.engine).toBe("marginal");
    expect(chosen.engineReason).toMatch(/not neural: splits its budget equally over the rounds and cannot anneal it/);
    expect(marginal.budgetSplit!(store.getStudy(chosen.studyId)!.engineConfig)).toBe("annealed");
  });

  it("keeps everything across a reopen of the store", () => {
    const study = create();
    // As a process does: the coordinator stops (sealing its ledger) before its store closes.
    coordinator.stop();
    store.close();
    store = openSqliteStore(dir);
    coordinator = new Coordinator({ store, log });
    expect(store.getStudy(study.studyId)!.participants.map((p) => p.siteName)).toEqual(["a", "b"]);
    expect(store.schemaVersion()).toBe(MIGRATIONS.at(-1)!.version);
    expect(readFileSync(join(dir, "coordinator.sqlite")).subarray(0, 15).toString()).toBe("SQLite format 3");
  });
});
