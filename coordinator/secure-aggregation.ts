/**
 * The coordinator's side of secure aggregation for its rounds: one SecureRound per open round, fed the
 * sites' messages, advanced phase by phase, and durable. Every message it takes is stored with the round
 * (secagg_messages); each masked input's charge and the running masked sum that holds it commit in one
 * transaction (secagg_sessions), so an input counts exactly once; each phase is stored as it opens, before
 * its relays go out. After a restart or a takeover, the session is rebuilt from the store (SecureRound.resume)
 * and carries on; the sites that reconnect are asked again what its open phase asks of them, and what they
 * send again is recognised and not taken twice. The unmasked sum goes to the coordinator's aggregation.
 *
 * The studies, the ledgers and the charges stay the coordinator's (coordinator.ts): it hands this module
 * what it needs of them (SecureAggregationHost).
 */
import { FedsynthError } from "../shared/errors.js";
import type { Mechanism } from "../shared/privacy/mechanism.js";
import type { SecureSessionSpec } from "../shared/federation/task.js";
import type { Logger } from "../shared/telemetry/log.js";
import type { RefusalBody } from "../shared/ledger/index.js";
import { decodeMessage, isClientMessage, maskedInputDigest, newSessionNonce, SecAggError } from "../shared/crypto/secagg/index.js";
import { bytesEqual } from "../shared/crypto/identity.js";
import { decodeSum } from "../shared/federation/secure-contribution.js";
import type { CoordinatorStore } from "./store/store.js";
import type { RoundRecord, StudyRecord, TaskRecord } from "./store/records.js";
import type { SessionHub, SiteSession } from "./sessions.js";
import type { StudyContexts } from "./study/study-context.js";
import type { ParticipantCharge } from "./coordinator.js";
import { SecureRound, phaseOf } from "./secure-round.js";

export interface SecureAggregationHost {
  store: CoordinatorStore;
  log: Logger;
  now: () => number;
  sessions: SessionHub;
  contexts: StudyContexts;
  /** How long a phase waits for a connected site that has not answered. */
  phaseTimeoutMs: number;
  requireStudy(studyId: string): StudyRecord;
  /** Why a masked input's signed charge cannot be accepted, or undefined. */
  checkCharge(study: StudyRecord, task: TaskRecord, round: RoundRecord, claim: { updateSha256: string; epsilon: number; delta: number; signature: Uint8Array }): string | undefined;
  chargeSoFar(study: StudyRecord, siteName: string, extra: Mechanism[]): ParticipantCharge;
  /** The charge on both ledgers; call inside the transaction that takes the input. */
  appendCharge(study: StudyRecord, task: TaskRecord, round: RoundRecord, updateSha256: string, epsilonStudyTotal: number, accepted: boolean, reason: string,
    claim: { epsilon: number; signature: Uint8Array }): void;
  refusal(body: RefusalBody): void;
  closeStudy(study: StudyRecord, state: "failed" | "cancelled", message: string): void;
  commitRound(study: StudyRecord, round: RoundRecord, sum: Float64Array, contributors: string[], expired: TaskRecord[], releaseDetail: Record<string, string[] | number>): void;
}

export class SecureAggregation {
  /** The sessions of open rounds, by `${studyId}/${round}`. */
  private readonly rounds = new Map<string, SecureRound>();

  constructor(private readonly host: SecureAggregationHost) {}

  /** A site connected: the open phases ask it again what it may not have heard (it was away, or the coordinator that asked has gone). */
  siteConnected(session: SiteSession): void {
    for (const [key, secure] of this.rounds) {
      const again = secure.rejoin(session.siteName);
      if (again.length === 0) continue;
      const [studyId, round] = splitKey(key);
      const task = this.host.store.listTasks(studyId, round).find((t) => t.siteName === session.siteName);
      if (task) for (const message of again) session.send({ kind: "secagg-relay", taskId: task.taskId, message });
    }
  }

  /** A phase stops waiting for a site that has gone. */
  siteDisconnected(siteName: string): void {
    for (const [key, secure] of [...this.rounds]) {
      if (!secure.params.siteKeys.has(siteName)) continue;
      secure.depart(siteName);
      const [studyId, round] = splitKey(key);
      this.advance(studyId, round);
    }
  }

  /** The round has ended (its stored state goes in the same transaction, with the store's deleteSecAggSession). */
  forget(studyId: string, round: number): void {
    this.rounds.delete(roundKey(studyId, round));
  }

  /** The round's sites with the Ed25519 keys they enrolled with (a site without one cannot take part). */
  sessionSpec(study: StudyRecord, round: RoundRecord): SecureSessionSpec {
    const siteKeys = this.host.store.listTasks(study.studyId, round.round).map((t) => {
      const key = this.host.store.getSite(t.siteName)?.signingPublicKey;
      if (!key) throw new FedsynthError("failed-precondition", `site ${t.siteName} has no signing key registered, so it cannot take part in secure aggregation`);
      return { siteName: t.siteName, publicKey: new Uint8Array(Buffer.from(key, "base64")) };
    });
    return { sessionNonce: round.sessionNonce!, threshold: study.secureThreshold, siteKeys };
  }

  /** Opens the round's session, stored from its first phase; call inside the transaction that plans the round. */
  open(study: StudyRecord, round: RoundRecord, tasks: TaskRecord[]): void {
    const params = this.secureParams(study, round);
    const spec = { sessionNonce: params.context.sessionNonce, threshold: params.threshold };
    this.host.store.openSecAggSession(study.studyId, round.round, spec.sessionNonce, this.host.now());
    this.rounds.set(roundKey(study.studyId, round.round), new SecureRound(params, this.host.phaseTimeoutMs, this.host.now()));
    this.host.log.info("secure aggregation session opened", { study: study.studyId, round: round.round, threshold: spec.threshold, sites: tasks.length });
  }

  private secureParams(study: StudyRecord, round: RoundRecord) {
    const spec = this.sessionSpec(study, round);
    return {
      context: { studyId: study.studyId, round: round.round, sessionNonce: spec.sessionNonce },
      threshold: spec.threshold, vectorLength: round.updateLength,
      siteKeys: new Map(spec.siteKeys.map((k) => [k.siteName, k.publicKey])),
    };
  }

  /** The open round's session: in memory, or rebuilt from the store (after a restart, a takeover, or a failed write). */
  private secureRoundOf(study: StudyRecord, round: RoundRecord): SecureRound | undefined {
    const key = roundKey(study.studyId, round.round);
    const live = this.rounds.get(key);
    if (live || study.state !== "running" || round.state !== "collecting" || !round.sessionNonce) return live;
    const saved = this.storedSession(round);
    if (!saved) return undefined;
    const messages = this.host.store.listSecAggMessages(study.studyId, round.round);
    let secure: SecureRound;
    try {
      secure = SecureRound.resume(this.secureParams(study, round), this.host.phaseTimeoutMs, this.host.now(), {
        phase: saved.phase, summedSites: saved.summedSites, runningSum: saved.runningSum, messages,
      });
    } catch (err) {
      // The stored state does not fit the session (it was altered, or a site's key changed): nothing is
      // taken from it, and the round cannot go on; its charges stay on the ledger.
      this.host.closeStudy(study, "failed", `round ${round.round}: the stored secure-aggregation session cannot be resumed: ${FedsynthError.from(err).message}`);
      return undefined;
    }
    this.rounds.set(key, secure);
    this.host.log.info("secure aggregation session resumed from the store", {
      study: study.studyId, round: round.round, phase: secure.phase, summed: saved.summedSites.join(","), waiting_for: secure.pending().join(","),
    });
    // The sites connected already are asked again what the open phase asks of them.
    const tasks = this.host.store.listTasks(study.studyId, round.round);
    for (const t of tasks) {
      if (!this.host.sessions.isConnected(t.siteName)) continue;
      for (const message of secure.rejoin(t.siteName)) this.host.sessions.send(t.siteName, { kind: "secagg-relay", taskId: t.taskId, message });
    }
    return secure;
  }

  /** The round's stored session state, if it is of the round's current session. */
  private storedSession(round: RoundRecord) {
    const saved = round.sessionNonce ? this.host.store.getSecAggSession(round.studyId, round.round) : undefined;
    return saved && bytesEqual(saved.sessionNonce, round.sessionNonce!) ? saved : undefined;
  }

  /** Forgets the in-memory session after a write that failed: the next use rebuilds it from what the store holds. */
  private dropSecureRound(studyId: string, roundNo: number, err: unknown): void {
    this.rounds.delete(roundKey(studyId, roundNo));
    this.host.log.error("a secure-aggregation state change could not be stored; the session will be rebuilt from the store", { study: studyId, round: roundNo, error: FedsynthError.from(err).message });
  }

  /**
   * After a restart (or a takeover) the session is rebuilt from the store and carries on from its open
   * phase. A store written before sessions were stored has none: before any masked input was accepted
   * nothing was spent, and the round starts again with a new session; after, the round cannot be
   * completed (its sum is lost) nor repeated within the sites' budgets, so the study fails cleanly.
   */
  resume(study: StudyRecord, round: RoundRecord): void {
    if (this.storedSession(round)) {
      if (this.secureRoundOf(study, round)) this.advance(study.studyId, round.round);
      return;
    }
    const tasks = this.host.store.listTasks(study.studyId, round.round);
    const submitted = tasks.filter((t) => t.state === "submitted").map((t) => t.siteName);
    if (submitted.length > 0) {
      this.host.closeStudy(study, "failed", `round ${round.round}: the coordinator restarted during secure aggregation after ${submitted.join(", ")} had sent masked inputs; ` +
        "a session cannot be resumed, and repeating the round would charge those sites again (their charges are on the ledger)");
      return;
    }
    this.host.store.transaction(() => {
      this.host.store.setRoundSession(study.studyId, round.round, newSessionNonce());
      this.open(study, this.host.store.getRound(study.studyId, round.round)!, tasks.filter((t) => t.state === "pending"));
    });
  }

  /** A site's secure-aggregation message for its task (a masked input carries the site's signed charge). */
  receive(siteName: string, taskId: string, bytes: Uint8Array, charge?: { epsilon: number; delta: number; signature: Uint8Array }): { accepted: boolean; message: string } {
    const refuse = (message: string) => {
      this.host.log.warn("secure-aggregation message refused", { site: siteName, task: taskId, reason: message });
      if (task && task.siteName === siteName) {
        this.host.refusal({ siteName, studyId: task.studyId, round: task.round, by: "coordinator", reason: "secure-aggregation-message-refused", message, taskId });
      }
      return { accepted: false, message };
    };
    const task = this.host.store.getTask(taskId);
    if (!task || task.siteName !== siteName) return refuse(`task ${taskId} is not assigned to site ${siteName}`);
    const study = this.host.requireStudy(task.studyId);
    const round = this.host.store.getRound(task.studyId, task.round);
    const secure = round && this.secureRoundOf(study, round);
    if (study.state !== "running" || !round || round.state !== "collecting" || !secure) {
      return refuse(`round ${task.round} of study ${study.studyId} has no secure-aggregation session open`);
    }
    let message;
    try {
      message = decodeMessage(bytes);
    } catch (err) {
      return refuse(`the secure-aggregation message cannot be read: ${FedsynthError.from(err).message}`);
    }
    if (!isClientMessage(message)) {
      return refuse(`site ${siteName} sent a ${message.kind} message, which only the coordinator sends`);
    }
    // A site sends its last message again after a reconnection: one already taken is acknowledged, once.
    if (message.kind !== "masked-input" && secure.isRepeat(siteName, message, bytes)) {
      this.host.log.info("secure-aggregation message received again; already taken", { site: siteName, task: taskId, kind: message.kind });
      return { accepted: true, message: "already accepted" };
    }
    const now = this.host.now();
    if (message.kind !== "masked-input") {
      try {
        secure.receive(siteName, message);
      } catch (err) {
        if (err instanceof SecAggError || err instanceof FedsynthError) return refuse(err.message);
        throw err;
      }
      try {
        this.host.store.insertSecAggMessage(task.studyId, task.round, { phase: phaseOf(message.kind), siteName, message: bytes, receivedAt: now });
      } catch (err) {
        this.dropSecureRound(task.studyId, task.round, err);
        throw err;
      }
      secure.remember(siteName, message, bytes);
    } else {
      const digest = maskedInputDigest(message.masked);
      const sha = Buffer.from(digest).toString("hex");
      // The masked input is in the sum already (it was sent again after a reconnection): no second add, no second charge.
      if (task.state === "submitted" && this.host.store.getSubmission(taskId)?.updateSha256 === sha) {
        this.host.log.info("masked input received again; it is in the running sum already (no new charge)", { site: siteName, task: taskId });
        return { accepted: true, message: "already accepted" };
      }
      if (task.state !== "pending") return refuse(`task ${taskId} is ${task.state} and takes no masked input`);
      if (!charge) return refuse("a masked input must carry the site's signed charge");
      const verdict = this.host.checkCharge(study, task, round, { updateSha256: sha, ...charge });
      if (verdict) return refuse(verdict);
      try {
        secure.receive(siteName, message, digest);
      } catch (err) {
        if (err instanceof SecAggError || err instanceof FedsynthError) return refuse(err.message);
        throw err;
      }
      const spent = this.host.chargeSoFar(study, siteName, round.mechanisms);
      try {
        const summed = secure.maskedSum();
        // The charge and the running sum that holds the input commit together: the input counts exactly once.
        this.host.store.transaction(() => {
          this.host.store.insertSubmission({
            taskId, studyId: task.studyId, round: task.round, siteName, update: null, updateSha256: sha,
            epsilon: spent.epsilon, delta: spent.delta, receivedAt: now, signature: Buffer.from(charge.signature).toString("base64"),
          });
          this.host.store.updateTask(taskId, "submitted", "");
          this.host.store.setParticipant(task.studyId, siteName, "active", "");
          this.host.store.setSecAggSum(task.studyId, task.round, summed.sites, summed.bytes, now);
          this.host.appendCharge(study, task, round, sha, spent.epsilon, true, "", charge);
        });
      } catch (err) {
        this.dropSecureRound(task.studyId, task.round, err);
        throw err;
      }
      this.host.log.info("masked input accepted", { site: siteName, study: task.studyId, round: task.round, epsilon_total: spent.epsilon });
    }
    this.advance(task.studyId, task.round);
    return { accepted: true, message: "accepted" };
  }

  /** Closes the open phase if it can close now, relays what it yields, and hands the unmasked sum on at the end. */
  advance(studyId: string, roundNo: number): void {
    const key = roundKey(studyId, roundNo);
    const study = this.host.store.getStudy(studyId);
    const round = this.host.store.getRound(studyId, roundNo);
    if (!study || study.state !== "running" || !round || round.state !== "collecting") return;
    const secure = this.secureRoundOf(study, round);
    if (!secure) return;
    const tasks = this.host.store.listTasks(studyId, roundNo);
    let step;
    try {
      // A phase stops waiting for a site that declined or failed its task.
      const gone = new Set(tasks.filter((t) => t.state !== "pending" && t.state !== "submitted").map((t) => t.siteName));
      step = secure.advance(this.host.now(), (site) => gone.has(site));
    } catch (err) {
      this.rounds.delete(key);
      this.host.closeStudy(study, "failed", `round ${roundNo}: secure aggregation failed: ${FedsynthError.from(err).message}`);
      return;
    }
    if (step.closed && !step.result) {
      // The phase that opened is stored before its relays go out: a successor resumes it, not the one before.
      try {
        this.host.store.setSecAggPhase(studyId, roundNo, secure.phase, this.host.now());
      } catch (err) {
        this.dropSecureRound(studyId, roundNo, err);
        return;
      }
      this.host.log.info("secure aggregation: phase opened", { study: studyId, round: roundNo, phase: secure.phase });
    }
    const taskOf = new Map(tasks.map((t) => [t.siteName, t.taskId]));
    for (const r of step.relays) this.host.sessions.send(r.siteName, { kind: "secagg-relay", taskId: taskOf.get(r.siteName)!, message: r.message });
    if (!step.result) {
      this.host.store.updateStudy(studyId, {
        statusMessage: `round ${roundNo}: secure aggregation, ${secure.phase}; waiting for ${secure.pending().join(", ") || "the relays"}`,
      }, this.host.now());
      return;
    }
    this.rounds.delete(key);
    const { sum, contributors, droppedBeforeInput, silentInUnmasking } = step.result;
    if (contributors.length < study.minSites) {
      this.host.closeStudy(study, "failed", `round ${roundNo}: only ${contributors.length} of the ${study.minSites} sites needed sent a masked input (${droppedBeforeInput.join(", ") || "none"} dropped before)`);
      return;
    }
    const ctx = this.host.contexts.get(study);
    try {
      const decoded = decodeSum(sum, ctx.engine.secure!.grid(ctx.taskContext(roundNo, round.roundConfig)));
      this.host.commitRound(study, round, decoded, contributors, tasks.filter((t) => t.state === "pending"), {
        secureAggregationThreshold: study.secureThreshold, droppedBeforeInput, silentInUnmasking,
      });
    } catch (err) {
      const e = FedsynthError.from(err);
      this.host.log.error("aggregation failed", { study: studyId, round: roundNo, error: e.message });
      this.host.closeStudy(study, "failed", `round ${roundNo}: aggregation failed: ${e.message}`);
    }
  }
}

function roundKey(studyId: string, round: number): string {
  return `${studyId}/${round}`;
}

function splitKey(key: string): [string, number] {
  const at = key.lastIndexOf("/");
  return [key.slice(0, at), Number(key.slice(at + 1))];
}
