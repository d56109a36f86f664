/**
 * The coordinator's domain core: studies, rounds, submissions and the pooled models, over the store.
 * Transport handlers call these methods with plain values. Every state change that matters commits in one
 * store transaction, so a crash leaves either the state before it or the state after it.
 */
import { randomUUID } from "node:crypto";
import { FedsynthError } from "../shared/errors.js";
import { Accountant } from "../shared/privacy/accountant.js";
import type { Mechanism } from "../shared/privacy/mechanism.js";
import type { JsonObject } from "../shared/engines/engine.js";
import { getEngine } from "../shared/engines/registry.js";
import { chooseEngine } from "../shared/engines/engine-choice.js";
import { parseSchema } from "../shared/schema/parse-schema.js";
import { encodeModelBundle } from "../shared/engines/model-file.js";
import type { InvitationAnswer, TaskAssignment, TaskDecline, TaskResult } from "../shared/federation/task.js";
import { sha256Hex, vectorToBytes } from "../shared/util/vector-bytes.js";
import type { Logger } from "../shared/telemetry/log.js";
import type { CoordinatorStore } from "./store/store.js";
import type { RoundRecord, SiteRecord, StudyRecord, TaskRecord } from "./store/records.js";
import { SessionHub, type SiteSession } from "./sessions.js";
import { StudyContexts, specOf } from "./study/study-context.js";
import { validateSiteName, validateStudyInput, type CreateStudyInput } from "./study/study-request.js";
import { SiteRegistry, type CertificateIssuer } from "./sites.js";
import { chargeStatement, verifyChargeClaim, type ChargeClaim } from "../shared/federation/charge-statement.js";
import { checkThreshold, defaultThreshold, newSessionNonce } from "../shared/crypto/secagg/index.js";
import { SecureAggregation } from "./secure-aggregation.js";
import { PrivacyLedger } from "./privacy-ledger.js";
import { CoordinatorTelemetry } from "./telemetry.js";
import type { RefusalBody } from "../shared/ledger/index.js";

export const COORDINATOR_VERSION = "0.1.0";
export const DEFAULT_ROUND_DEADLINE_SECONDS = 3600;
const ANNEALING_UNSUPPORTED = "splits its budget equally over the rounds and cannot anneal it (--budget-split annealed)";
/** How long a secure-aggregation phase waits for a connected site that has not answered. */
export const DEFAULT_SECURE_PHASE_TIMEOUT_SECONDS = 120;
/** Relative slack when comparing two computations of the same epsilon (floating-point noise only). */
const EPSILON_TOLERANCE = 1e-9;

export interface CoordinatorOptions {
  store: CoordinatorStore;
  log: Logger;
  now?: () => number;
  deadlineCheckMs?: number;
  /** The consortium CA: sites enrol with tokens and certificates. Absent: plaintext development mode. */
  issuer?: CertificateIssuer;
  securePhaseTimeoutSeconds?: number;
}

export interface ParticipantCharge {
  epsilon: number;
  delta: number;
}

export interface StudyDetail {
  study: StudyRecord;
  rounds: { round: RoundRecord; tasks: TaskRecord[] }[];
  charges: Map<string, ParticipantCharge>;
}

export class Coordinator {
  readonly sessions = new SessionHub();
  readonly sites: SiteRegistry;
  private readonly store: CoordinatorStore;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly contexts = new StudyContexts();
  private deadlineTimer?: NodeJS.Timeout;
  private readonly deadlineCheckMs: number;
  /** The secure-aggregation sessions of open rounds (durable: rebuilt from the store after a restart or a takeover). */
  private readonly secure: SecureAggregation;
  /** The auditor's ledger (hash chain, signed); the store's event log beside it is operational. */
  readonly ledger: PrivacyLedger;
  /** Round traces, spans and metrics (OpenTelemetry; no-ops unless it is on). */
  readonly telemetry = new CoordinatorTelemetry(this);

  constructor(opts: CoordinatorOptions) {
    this.store = opts.store;
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
    this.deadlineCheckMs = opts.deadlineCheckMs ?? 1000;
    this.secure = new SecureAggregation({
      store: this.store, log: this.log, now: this.now, sessions: this.sessions, contexts: this.contexts,
      phaseTimeoutMs: (opts.securePhaseTimeoutSeconds ?? DEFAULT_SECURE_PHASE_TIMEOUT_SECONDS) * 1000,
      requireStudy: (studyId) => this.requireStudy(studyId),
      checkCharge: (study, task, round, claim) => this.checkCharge(study, task, round, claim),
      chargeSoFar: (study, siteName, extra) => this.chargeSoFar(study, siteName, extra),
      appendCharge: (study, task, round, sha, total, accepted, reason, claim) => this.appendCharge(study, task, round, sha, total, accepted, reason, claim),
      refusal: (body) => this.ledgerRefusal(body),
      closeStudy: (study, state, message) => this.closeStudy(study, state, message),
      commitRound: (study, round, sum, contributors, expired, detail) => this.commitRound(study, round, sum, contributors, expired, detail),
    });
    this.ledger = PrivacyLedger.open(this.store, { caPem: opts.issuer?.caPem, now: this.now });
    this.sites = new SiteRegistry(this.store, this.log, this.now, opts.issuer, (siteName, publicKey, certificatePem) =>
      this.ledger.enrol({ siteName, publicKey, ...(certificatePem ? { certificatePem } : {}) }));
    this.backfillLedger();
  }

  /** Picks up where the last process stopped: open rounds get their full deadline again and are re-checked. */
  start(): void {
    for (const study of this.store.listStudies()) {
      if (study.state !== "running" || this.store.listRounds(study.studyId).length > 0) continue;
      const fresh = this.now() + study.roundDeadlineSeconds * 1000;
      if ((study.invitationDeadlineAt ?? 0) < fresh) this.store.updateStudy(study.studyId, { invitationDeadlineAt: fresh }, this.now());
      this.log.info("resuming the invitation phase", { study: study.studyId });
      this.tryBeginStudy(study.studyId);
    }
    for (const round of this.store.listRoundsInState("collecting")) {
      const study = this.store.getStudy(round.studyId);
      if (!study || study.state !== "running") continue;
      const fresh = this.now() + study.roundDeadlineSeconds * 1000;
      if (round.deadlineAt < fresh) this.store.extendRoundDeadline(round.studyId, round.round, fresh);
      this.log.info("resuming round", { study: study.studyId, round: round.round });
      if (round.sessionNonce) this.secure.resume(study, round);
      else this.tryCompleteRound(study.studyId, round.round);
    }
    this.deadlineTimer = setInterval(() => this.checkDeadlines(), this.deadlineCheckMs);
    this.deadlineTimer.unref();
  }

  stop(): void {
    if (this.deadlineTimer) clearInterval(this.deadlineTimer);
    this.ledger.close();
    this.sessions.closeAll("the coordinator is shutting down");
  }

  // ---- sites -------------------------------------------------------------------------------------------

  /** Revokes a site's certificate and ends its open session at once. */
  revokeSite(siteName: string, reason: string): SiteRecord {
    const site = this.sites.revoke(siteName, reason);
    this.sessions.closeSite(siteName, `site ${siteName} has been revoked`);
    return site;
  }

  /**
   * Stores made before the privacy ledger existed: their enrolled sites and their studies go on the chain
   * (marked by the time they are written) before anything else, so later charges have what they need.
   */
  private backfillLedger(): void {
    const entries = this.ledger.entries();
    const enrolled = new Set(entries.flatMap((e) => (e.kind === "enrolment" ? [e.body.siteName] : [])));
    const studies = new Set(entries.flatMap((e) => (e.kind === "study-created" ? [e.body.studyId] : [])));
    this.store.transaction(() => {
      for (const site of this.store.listSites()) {
        if (site.signingPublicKey && !enrolled.has(site.name)) this.ledger.enrol({ siteName: site.name, publicKey: site.signingPublicKey });
      }
      for (const study of this.store.listStudies()) {
        if (studies.has(study.studyId)) continue;
        this.ledger.studyCreated({
          studyId: study.studyId, name: study.name, schema: JSON.parse(study.schemaJson), engine: study.engine, engineConfig: study.engineConfig,
          epsilon: study.epsilon, delta: study.delta, rounds: study.rounds, sites: study.participants.map((p) => p.siteName),
        });
      }
    });
    this.ledger.seal();
  }

  /**
   * A site's own budget cap, as its agent declares it, goes on the ledger with the site's key (and
   * certificate) whenever it is new or changed, so that auditors can check every spend against it.
   */
  private recordCap(siteName: string, cap: { epsilon: number; delta: number }): void {
    if (!(Number.isFinite(cap.epsilon) && cap.epsilon > 0 && Number.isFinite(cap.delta) && cap.delta >= 0 && cap.delta < 1)) return;
    const last = [...this.ledger.entries()].reverse().find((e) => e.kind === "enrolment" && e.body.siteName === siteName);
    if (!last || last.kind !== "enrolment") return;
    if (last.body.cap?.epsilon === cap.epsilon && last.body.cap?.delta === cap.delta) return;
    try {
      this.ledger.enrol({ ...last.body, cap: { epsilon: cap.epsilon, delta: cap.delta } });
    } catch (err) {
      // A cap below what the site has spent already cannot be recorded; the site's own agent refuses further work.
      this.log.warn("the site's declared budget cap was not recorded on the privacy ledger", { site: siteName, reason: FedsynthError.from(err).message });
    }
  }

  /** Registers a live session and hands it every task it has pending. */
  attachSession(session: SiteSession, agentVersion: string, cap?: { epsilon: number; delta: number }): SiteRecord {
    validateSiteName(session.siteName);
    const site = this.store.upsertSite(session.siteName, agentVersion, this.now());
    if (cap) this.recordCap(session.siteName, cap);
    this.sessions.attach(session);
    this.log.info("site connected", { site: session.siteName });
    for (const study of this.store.listStudies()) {
      if (study.state !== "running" || this.store.listRounds(study.studyId).length > 0) continue;
      if (study.participants.some((p) => p.siteName === session.siteName && p.state === "invited")) this.invite(study, session.siteName);
    }
    for (const task of this.store.pendingTasksForSite(session.siteName)) {
      session.send({ kind: "task", task: this.assignment(task) });
    }
    this.secure.siteConnected(session);
    return site;
  }

  detachSession(session: SiteSession): void {
    this.sessions.detach(session);
    this.store.touchSite(session.siteName, this.now());
    this.log.info("site disconnected", { site: session.siteName });
    this.secure.siteDisconnected(session.siteName);
  }

  touch(siteName: string): void {
    this.store.touchSite(siteName, this.now());
  }

  listSites(): { site: SiteRecord; connected: boolean }[] {
    return this.store.listSites().map((site) => ({ site, connected: this.sessions.isConnected(site.name) }));
  }

  // ---- studies -----------------------------------------------------------------------------------------

  createStudy(input: CreateStudyInput): StudyRecord {
    validateStudyInput(input);
    const budgetSplit = input.budgetSplit ?? "equal";
    const annealed = budgetSplit === "annealed";
    const schema = parseSchema(input.schemaJson, `study '${input.name}' schema`);
    const choice = input.engine ? { engine: input.engine, reason: "named by the operator" }
      : chooseEngine(schema, { sites: input.sites.length, expectedRows: input.expectedRows }, (name) => {
        // An engine refuses a study it cannot run (too few rounds allowed, a network too large) in configure.
        try {
          const candidate = getEngine(name);
          if (annealed && !candidate.budgetSplit) return ANNEALING_UNSUPPORTED;
          candidate.configure(schema, { epsilon: input.epsilon, delta: input.delta, rounds: input.rounds || (candidate.defaultRounds?.(false) ?? 1), budgetSplit });
          return undefined;
        } catch (err) {
          return FedsynthError.from(err).message;
        }
      });
    const engineName = choice.engine;
    const engine = getEngine(engineName);
    if (annealed && !engine.budgetSplit) {
      throw new FedsynthError("invalid-argument", `the ${engineName} engine ${ANNEALING_UNSUPPORTED}`, { hint: "leave out --budget-split, or use --engine marginal" });
    }
    let secureThreshold = this.chooseSecureThreshold(input, engineName, !!engine.secure);
    const rounds = input.rounds || (engine.defaultRounds?.(secureThreshold > 0) ?? 1);
    const privacy = { epsilon: input.epsilon, delta: input.delta, rounds, budgetSplit };
    let engineConfig: JsonObject;
    try {
      engineConfig = engine.configure(schema, secureThreshold > 0 ? { ...privacy, secureAggregation: { threshold: secureThreshold, sites: input.sites.length } } : privacy);
    } catch (err) {
      // "auto" falls back to local noise when the engine cannot run this study securely (too few rounds, say).
      if (secureThreshold === 0 || (input.secureAggregation ?? "auto") !== "auto" || FedsynthError.from(err).code !== "invalid-argument") throw err;
      this.log.info("secure aggregation is not possible for this study; the sites' updates go up with their own noise", { reason: FedsynthError.from(err).message });
      secureThreshold = 0;
      engineConfig = engine.configure(schema, privacy);
    }
    const now = this.now();
    const study: StudyRecord = {
      studyId: `study-${randomUUID().slice(0, 8)}`,
      name: input.name.trim(),
      schemaJson: input.schemaJson,
      engine: engineName,
      engineReason: choice.reason,
      epsilon: input.epsilon,
      delta: input.delta,
      rounds,
      // A secure round cannot release a sum of fewer than t sites, so fewer can never be enough.
      minSites: Math.max(input.minSites || input.sites.length, secureThreshold),
      roundDeadlineSeconds: input.roundDeadlineSeconds || DEFAULT_ROUND_DEADLINE_SECONDS,
      engineConfig,
      secureThreshold,
      state: "created",
      statusMessage: "created; start it to send tasks to the sites",
      completedRounds: 0,
      invitationDeadlineAt: null,
      createdAt: now,
      updatedAt: now,
      participants: input.sites.map((siteName) => ({ siteName, state: "invited", message: "" })),
    };
    this.store.transaction(() => {
      this.store.insertStudy(study);
      this.store.appendLedger({
        at: now, kind: "study-created", studyId: study.studyId, siteName: null, round: null,
        body: {
          name: study.name, engine: study.engine, epsilon: study.epsilon, delta: study.delta, rounds: study.rounds,
          sites: input.sites, minSites: study.minSites, schemaSha256: sha256Hex(Buffer.from(study.schemaJson)), engineConfig,
          secureAggregationThreshold: secureThreshold,
        },
      });
      this.ledger.studyCreated({
        studyId: study.studyId, name: study.name, schema: JSON.parse(study.schemaJson), engine: study.engine, engineConfig,
        epsilon: study.epsilon, delta: study.delta, rounds: study.rounds, sites: input.sites,
      });
    });
    this.ledger.seal();
    this.log.info("study created", { study: study.studyId, name: study.name, engine: engineName, engine_reason: choice.reason, epsilon: study.epsilon, rounds: study.rounds, secure_threshold: secureThreshold });
    return study;
  }

  /** 0 for a plaintext study, else t; refuses an unsafe threshold or an engine that cannot do it. */
  private chooseSecureThreshold(input: CreateStudyInput, engineName: string, supported: boolean): number {
    const mode = input.secureAggregation ?? "auto";
    const n = input.sites.length;
    if (mode === "off" || (mode === "auto" && (n < 3 || !supported))) {
      if (input.secureThreshold) {
        throw new FedsynthError("invalid-argument", "a secure-aggregation threshold was given for a study without secure aggregation", {
          hint: n < 3 ? "secure aggregation needs 3 or more sites (turn it on explicitly for 2)" : "drop the threshold, or turn secure aggregation on",
        });
      }
      return 0;
    }
    if (!supported) {
      throw new FedsynthError("invalid-argument", `engine ${engineName} does not support secure aggregation`, { hint: "choose the independent engine, or turn secure aggregation off" });
    }
    const t = input.secureThreshold || defaultThreshold(n);
    checkThreshold(t, n);
    return t;
  }

  startStudy(studyId: string): StudyRecord {
    const study = this.requireStudy(studyId);
    if (study.state !== "created") {
      throw new FedsynthError("failed-precondition", `study ${studyId} is ${study.state}; only a created study can be started`);
    }
    const names = study.participants.map((p) => p.siteName);
    this.store.updateStudy(studyId, {
      state: "running", invitationDeadlineAt: this.now() + study.roundDeadlineSeconds * 1000,
      statusMessage: `waiting for the sites to accept: ${names.join(", ")}`,
    }, this.now());
    this.log.info("study started; inviting the sites", { study: studyId, sites: names.join(",") });
    const started = this.requireStudy(studyId);
    for (const name of names) this.invite(started, name);
    return this.requireStudy(studyId);
  }

  /** A site accepts or declines a study before any round begins. */
  answerInvitation(siteName: string, answer: InvitationAnswer): void {
    const study = this.store.getStudy(answer.studyId);
    const participant = study?.participants.find((p) => p.siteName === siteName);
    if (!study || !participant || study.state !== "running" || participant.state !== "invited") return;
    const now = this.now();
    if (answer.accepted) {
      this.store.setParticipant(study.studyId, siteName, "active", "");
      this.log.info("site accepted the study", { site: siteName, study: study.studyId });
    } else {
      this.store.transaction(() => {
        this.store.setParticipant(study.studyId, siteName, "declined", answer.message);
        this.store.appendLedger({
          at: now, kind: "refusal", studyId: study.studyId, siteName, round: null,
          body: { stage: "invitation", reason: answer.reason ?? "unsupported", message: answer.message },
        });
        this.ledger.refusal({ siteName, studyId: study.studyId, round: null, by: "site", reason: answer.reason ?? "unsupported", message: answer.message });
      });
      this.log.warn("site declined the study", { site: siteName, study: study.studyId, reason: answer.reason ?? "", message: answer.message });
    }
    this.tryBeginStudy(study.studyId);
  }

  private invite(study: StudyRecord, siteName: string): void {
    this.sessions.send(siteName, { kind: "invitation", study: specOf(study), answerBy: study.invitationDeadlineAt ?? 0 });
  }

  /**
   * Round 1 begins once every invited site has answered (or the invitation deadline has passed) and enough
   * have accepted; if too few can, the study fails before anyone has spent any budget.
   */
  private tryBeginStudy(studyId: string): void {
    const study = this.store.getStudy(studyId);
    if (!study || study.state !== "running" || this.store.listRounds(studyId).length > 0) return;
    const active = study.participants.filter((p) => p.state === "active");
    const waiting = study.participants.filter((p) => p.state === "invited");
    const deadlinePassed = this.now() >= (study.invitationDeadlineAt ?? Infinity);
    if (active.length + waiting.length < study.minSites || (deadlinePassed && active.length < study.minSites)) {
      const declined = study.participants.filter((p) => p.state === "declined").map((p) => `${p.siteName} declined (${p.message})`);
      const silent = deadlinePassed ? waiting.map((p) => `${p.siteName} did not answer in time`) : [];
      this.closeStudy(study, "failed", `fewer than the ${study.minSites} sites needed accepted the study: ${[...declined, ...silent].join("; ")}`);
      return;
    }
    if (waiting.length > 0 && !deadlinePassed) {
      this.store.updateStudy(studyId, { statusMessage: `waiting for the sites to accept: ${waiting.map((p) => p.siteName).join(", ")}` }, this.now());
      return;
    }
    const tasks = this.store.transaction(() => {
      for (const p of waiting) this.store.setParticipant(studyId, p.siteName, "dropped", "did not answer the invitation before its deadline");
      this.store.updateStudy(studyId, { statusMessage: "round 1: waiting for the sites" }, this.now());
      return this.planRound(this.requireStudy(studyId), 1);
    });
    this.log.info("all sites answered; round 1 begins", { study: studyId, sites: active.map((p) => p.siteName).join(",") });
    this.deliver(tasks);
  }

  cancelStudy(studyId: string, reason: string): StudyRecord {
    const study = this.requireStudy(studyId);
    if (study.state !== "created" && study.state !== "running") {
      throw new FedsynthError("failed-precondition", `study ${studyId} is already ${study.state}`);
    }
    this.closeStudy(study, "cancelled", `cancelled by the operator${reason ? ": " + reason : ""}`);
    return this.requireStudy(studyId);
  }

  listStudies(): StudyRecord[] {
    return this.store.listStudies();
  }

  studyDetail(studyId: string): StudyDetail {
    const study = this.requireStudy(studyId);
    const rounds = this.store.listRounds(studyId).map((round) => ({ round, tasks: this.store.listTasks(studyId, round.round) }));
    const charges = new Map<string, ParticipantCharge>();
    for (const p of study.participants) charges.set(p.siteName, this.chargeSoFar(study, p.siteName, []));
    return { study, rounds, charges };
  }

  /** The latest pooled model of a study as a self-describing file. */
  exportModel(studyId: string): { bytes: Uint8Array; round: number; engine: string } {
    const study = this.requireStudy(studyId);
    const model = this.store.latestModel(studyId);
    if (!model || model.round === 0) {
      throw new FedsynthError("failed-precondition", `study ${studyId} has no pooled model yet (${study.state}, ${study.completedRounds} rounds done)`, {
        hint: "wait until at least one round has been aggregated",
      });
    }
    const bytes = encodeModelBundle({
      engine: study.engine, schemaJson: study.schemaJson, engineConfig: study.engineConfig,
      privacy: {
        epsilon: study.epsilon, delta: study.delta, rounds: study.rounds,
        ...(study.secureThreshold > 0 ? { secureAggregation: { threshold: study.secureThreshold, sites: study.participants.length } } : {}),
      },
      studyId, studyName: study.name, round: model.round, createdAt: new Date(model.createdAt).toISOString(), body: model.bytes,
    });
    return { bytes, round: model.round, engine: study.engine };
  }

  model(modelId: string): { bytes: Uint8Array; sha256: string } {
    const model = this.store.getModel(modelId);
    if (!model) throw new FedsynthError("not-found", `no model ${modelId}`);
    return { bytes: model.bytes, sha256: model.sha256 };
  }

  // ---- tasks and results -------------------------------------------------------------------------------

  submitResult(siteName: string, result: TaskResult): { accepted: boolean; message: string } {
    const task = this.store.getTask(result.taskId);
    if (!task || task.siteName !== siteName) {
      this.log.warn("result for a task this site does not hold", { site: siteName, task: result.taskId });
      return { accepted: false, message: `task ${result.taskId} is not assigned to site ${siteName}` };
    }
    const study = this.requireStudy(task.studyId);
    const round = this.store.getRound(task.studyId, task.round);
    const actualSha = sha256Hex(vectorToBytes(result.update));
    const reject = (message: string) => {
      this.log.warn("result rejected", { site: siteName, task: task.taskId, reason: message });
      this.ledgerRefusal({ siteName, studyId: study.studyId, round: task.round, by: "coordinator", reason: "result-rejected", message, taskId: task.taskId });
      return { accepted: false, message };
    };
    // A well-formed update that arrives when its task can no longer take one (the round closed at its
    // deadline, the study failed) has left the site all the same: its charge goes on the ledger, once.
    const claim = { epsilon: result.epsilon, signature: result.signature };
    const tooLate = (message: string) => {
      if (round) this.recordRejectedRelease(study, task, round, actualSha, message, claim);
      return reject(message);
    };
    if (task.state === "submitted") {
      const previous = this.store.getSubmission(task.taskId);
      if (previous?.updateSha256 === result.updateSha256) return { accepted: true, message: "already accepted" };
      return tooLate(`a different update was already accepted for task ${task.taskId}`);
    }
    if (task.state !== "pending") return tooLate(`task ${task.taskId} is ${task.state} and takes no result`);
    if (study.state !== "running" || !round || round.state !== "collecting") {
      return tooLate(`round ${task.round} of study ${study.studyId} is closed`);
    }
    if (result.update.length !== round.updateLength) {
      return reject(`the update has ${result.update.length} values; the task asked for ${round.updateLength}`);
    }
    if (actualSha !== result.updateSha256) return reject("the update does not match its SHA-256");
    if (!result.update.every(Number.isFinite)) return reject("the update contains values that are not finite numbers");
    const refusal = this.checkCharge(study, task, round, result);
    if (refusal) return reject(refusal);
    const charge = this.chargeSoFar(study, siteName, round.mechanisms);
    const now = this.now();
    this.store.transaction(() => {
      this.store.insertSubmission({
        taskId: task.taskId, studyId: task.studyId, round: task.round, siteName, update: result.update,
        updateSha256: result.updateSha256, epsilon: charge.epsilon, delta: charge.delta, receivedAt: now,
        signature: Buffer.from(result.signature).toString("base64"),
      });
      this.store.updateTask(task.taskId, "submitted", "");
      this.store.setParticipant(task.studyId, siteName, "active", "");
      this.appendCharge(study, task, round, result.updateSha256, charge.epsilon, true, "", claim);
    });
    this.log.info("result accepted", { site: siteName, study: task.studyId, round: task.round, epsilon_total: charge.epsilon });
    this.tryCompleteRound(task.studyId, task.round);
    return { accepted: true, message: "accepted" };
  }

  /**
   * Why a submission's charge cannot be accepted, or undefined: it would exceed the study's budget, the
   * site claims another epsilon than the coordinator computes, or it is not signed with the site's key.
   */
  private checkCharge(study: StudyRecord, task: TaskRecord, round: RoundRecord, claim: { updateSha256: string; epsilon: number; delta: number; signature: Uint8Array }): string | undefined {
    const siteName = task.siteName;
    const charge = this.chargeSoFar(study, siteName, round.mechanisms);
    if (charge.epsilon > study.epsilon * (1 + EPSILON_TOLERANCE)) {
      return `accepting it would charge site ${siteName} epsilon ${charge.epsilon}, over the study budget ${study.epsilon}`;
    }
    if (Math.abs(claim.epsilon - charge.epsilon) > EPSILON_TOLERANCE * Math.max(1, charge.epsilon)) {
      return `the site reports epsilon ${claim.epsilon} spent in this study; the coordinator computes ${charge.epsilon}`;
    }
    // The signature binds the site to this update and this charge: what goes on the ledger is what it signed.
    const signingKey = this.store.getSite(siteName)?.signingPublicKey;
    if (!signingKey || !verifyChargeClaim(this.chargeClaim(study, task, round, claim), claim.signature, signingKey)) {
      return `the submission is not signed with site ${siteName}'s registered signing key`;
    }
    return undefined;
  }

  /** The charge statement of a submission as the site must have signed it (its claimed total, our mechanisms). */
  private chargeClaim(study: StudyRecord, task: TaskRecord, round: RoundRecord, claim: { updateSha256: string; epsilon: number }): ChargeClaim {
    return {
      siteName: task.siteName, studyId: study.studyId, round: task.round, taskId: task.taskId, mechanisms: round.mechanisms,
      delta: study.delta, epsilonStudyTotal: claim.epsilon, updateSha256: claim.updateSha256,
    };
  }

  /**
   * A charge in both ledgers: the operational log, and the auditor's chain with the statement as the site
   * signed it. A charge the chain cannot take (an unverifiable signature on an update that came too late,
   * say) goes on it as the coordinator's refusal instead, with the reason.
   */
  private appendCharge(study: StudyRecord, task: TaskRecord, round: RoundRecord, updateSha256: string, epsilonStudyTotal: number, accepted: boolean, reason: string,
    claim: { epsilon: number; signature: Uint8Array }): void {
    const statement = chargeStatement(this.chargeClaim(study, task, round, { updateSha256, epsilon: claim.epsilon }));
    try {
      this.ledger.charge({ charge: statement, siteSignature: Buffer.from(claim.signature).toString("base64") }, accepted ? { accepted } : { accepted, reason });
    } catch (err) {
      this.ledgerRefusal({
        siteName: task.siteName, studyId: study.studyId, round: task.round, by: "coordinator", reason: "charge-not-recorded",
        message: `${reason ? reason + "; " : ""}${FedsynthError.from(err).message}`, taskId: task.taskId,
      });
    }
    this.store.appendLedger({
      at: this.now(), kind: "charge", studyId: study.studyId, siteName: task.siteName, round: task.round,
      body: {
        taskId: task.taskId, mechanisms: round.mechanisms as any, delta: study.delta,
        epsilonTask: Accountant.epsilonOf(round.mechanisms, study.delta), epsilonStudyTotal,
        // What the site keeps should the coordinator collude with every other site (its own noise share alone).
        epsilonStudyTotalIfColluding: Accountant.collusionEpsilonOf([...this.mechanismsSoFar(study, task.siteName), ...round.mechanisms], study.delta),
        updateSha256, accepted,
        ...(reason ? { reason } : {}),
      },
    });
  }

  /** A refusal on the auditor's chain; one the chain cannot take (a study it never saw) is logged instead. */
  private ledgerRefusal(body: RefusalBody): void {
    try {
      this.ledger.refusal(body);
    } catch (err) {
      this.log.warn("refusal not recorded on the privacy ledger", { site: body.siteName, study: body.studyId, reason: FedsynthError.from(err).message });
    }
  }

  private recordRejectedRelease(study: StudyRecord, task: TaskRecord, round: RoundRecord, updateSha256: string, reason: string, claim: { epsilon: number; signature: Uint8Array }): void {
    const known = this.store.listLedger({ studyId: study.studyId, siteName: task.siteName, kind: "charge" })
      .some((e) => e.body.updateSha256 === updateSha256);
    if (known) return;
    this.appendCharge(study, task, round, updateSha256, this.chargeSoFar(study, task.siteName, round.mechanisms).epsilon, false, reason, claim);
  }

  /** Size in bytes of the update a pending task of this site expects, or undefined if it expects none. */
  expectedUpdateBytes(siteName: string, taskId: string): number | undefined {
    const task = this.store.getTask(taskId);
    if (!task || task.siteName !== siteName) return undefined;
    return (this.store.getRound(task.studyId, task.round)?.updateLength ?? 0) * 8;
  }

  /** The most bytes one secure-aggregation message of this task may have (a masked input is the largest). */
  secAggMessageLimit(siteName: string, taskId: string): number | undefined {
    const task = this.store.getTask(taskId);
    if (!task || task.siteName !== siteName) return undefined;
    const round = this.store.getRound(task.studyId, task.round);
    if (!round?.sessionNonce) return undefined;
    const sites = this.store.listTasks(task.studyId, task.round).length;
    return 4 * round.updateLength + 65_536 + 1_024 * sites;
  }

  decline(siteName: string, decline: TaskDecline): void {
    const task = this.store.getTask(decline.taskId);
    if (!task || task.siteName !== siteName || task.state !== "pending") return;
    const now = this.now();
    this.store.transaction(() => {
      this.store.updateTask(task.taskId, "declined", decline.message);
      this.store.setParticipant(task.studyId, siteName, "declined", decline.message);
      this.store.appendLedger({
        at: now, kind: "refusal", studyId: task.studyId, siteName, round: task.round,
        body: { taskId: task.taskId, reason: decline.reason, message: decline.message },
      });
      this.ledgerRefusal({ siteName, studyId: task.studyId, round: task.round, by: "site", reason: decline.reason, message: decline.message, taskId: task.taskId });
    });
    this.log.warn("site declined its task", { site: siteName, study: task.studyId, round: task.round, reason: decline.reason, message: decline.message });
    this.tryCompleteRound(task.studyId, task.round);
  }

  fail(siteName: string, taskId: string, message: string): void {
    const task = this.store.getTask(taskId);
    if (!task || task.siteName !== siteName || task.state !== "pending") return;
    this.store.updateTask(taskId, "failed", message);
    this.log.warn("site failed its task", { site: siteName, study: task.studyId, round: task.round, message });
    this.tryCompleteRound(task.studyId, task.round);
  }

  // ---- rounds ------------------------------------------------------------------------------------------

  private checkDeadlines(): void {
    const now = this.now();
    for (const study of this.store.listStudies()) {
      if (study.state === "running" && (study.invitationDeadlineAt ?? Infinity) <= now) this.tryBeginStudy(study.studyId);
    }
    for (const round of this.store.listRoundsInState("collecting")) {
      if (round.deadlineAt <= now || round.sessionNonce) this.tryCompleteRound(round.studyId, round.round);
    }
  }

  /** Aggregates the round when every task is settled (or the deadline has passed), or fails the study. */
  private tryCompleteRound(studyId: string, roundNo: number): void {
    const study = this.store.getStudy(studyId);
    const round = this.store.getRound(studyId, roundNo);
    if (!study || study.state !== "running" || !round || round.state !== "collecting") return;
    if (round.sessionNonce) {
      this.secure.advance(studyId, roundNo);
      return;
    }
    const tasks = this.store.listTasks(studyId, roundNo);
    const submitted = tasks.filter((t) => t.state === "submitted");
    const pending = tasks.filter((t) => t.state === "pending");
    const deadlinePassed = this.now() >= round.deadlineAt;
    if (submitted.length + pending.length < study.minSites) {
      this.closeStudy(study, "failed", `round ${roundNo}: ${this.shortfall(study, tasks)}`);
      return;
    }
    if (pending.length > 0 && !deadlinePassed) {
      this.store.updateStudy(studyId, {
        statusMessage: `round ${roundNo}: ${submitted.length} of ${tasks.length} sites submitted; waiting for ${pending.map((t) => t.siteName).join(", ")}`,
      }, this.now());
      return;
    }
    if (submitted.length < study.minSites) {
      this.closeStudy(study, "failed", `round ${roundNo}: the deadline passed with ${submitted.length} of the ${study.minSites} sites needed`);
      return;
    }
    try {
      this.aggregateRound(study, round, pending);
    } catch (err) {
      const e = FedsynthError.from(err);
      this.log.error("aggregation failed", { study: studyId, round: roundNo, error: e.message });
      this.closeStudy(study, "failed", `round ${roundNo}: aggregation failed: ${e.message}`);
    }
  }

  private shortfall(study: StudyRecord, tasks: TaskRecord[]): string {
    const settled = tasks.filter((t) => t.state === "declined" || t.state === "failed");
    const why = settled.map((t) => `${t.siteName} ${t.state}${t.message ? ` (${t.message})` : ""}`).join("; ");
    return `fewer than the ${study.minSites} sites needed can take part: ${why}`;
  }

  private aggregateRound(study: StudyRecord, round: RoundRecord, expired: TaskRecord[]): void {
    const submissions = this.store.listSubmissions(study.studyId, round.round);
    const sum = new Float64Array(round.updateLength);
    for (const s of submissions) {
      if (!s.update) throw new FedsynthError("internal", `submission ${s.taskId} has lost its update before aggregation`);
      for (let i = 0; i < sum.length; i++) sum[i] += s.update[i];
    }
    this.commitRound(study, round, sum, submissions.map((s) => s.siteName), expired, {});
  }

  /** The next pooled model from a round's sum, committed with the next round's plan (or the release). */
  private commitRound(study: StudyRecord, round: RoundRecord, sum: Float64Array, contributors: string[], expired: TaskRecord[], releaseDetail: Record<string, string[] | number>): void {
    const ctx = this.contexts.get(study);
    const latest = round.modelId ? this.store.getModel(round.modelId) : undefined;
    const taskCtx = ctx.taskContext(round.round, round.roundConfig);
    const model = latest ? ctx.engine.deserialize(latest.bytes, ctx.schema, study.engineConfig) : ctx.engine.init(ctx.schema, study.engineConfig);
    this.telemetry.aggregationStarted(study, round, contributors.length);
    const next = ctx.engine.aggregate(model, sum, contributors.length, taskCtx);
    const bytes = ctx.engine.serialize(next);
    const now = this.now();
    const modelId = `model-${randomUUID().slice(0, 8)}`;
    const sha = sha256Hex(bytes);
    const last = round.round >= study.rounds;
    const newTasks = this.store.transaction(() => {
      this.store.insertModel({ modelId, studyId: study.studyId, round: round.round, engine: study.engine, bytes, sha256: sha, createdAt: now });
      this.store.finishRound(study.studyId, round.round, "aggregated", now);
      this.store.purgeSubmissionUpdates(study.studyId, round.round);
      this.store.deleteSecAggSession(study.studyId, round.round);
      for (const t of expired) this.store.updateTask(t.taskId, "expired", "the round closed at its deadline without this site");
      // Every round's pooled model is released: the sites download it to start the next round from.
      this.ledger.release({ studyId: study.studyId, round: round.round, modelId, modelSha256: sha, contributors });
      if (last) {
        this.store.updateStudy(study.studyId, {
          state: "completed", completedRounds: round.round,
          statusMessage: `completed: ${round.round} rounds, pooled model ${modelId}`,
        }, now);
        this.store.appendLedger({
          at: now, kind: "release", studyId: study.studyId, siteName: null, round: round.round,
          body: { modelId, modelSha256: sha, contributors, ...releaseDetail },
        });
        return [];
      }
      this.store.updateStudy(study.studyId, {
        completedRounds: round.round, statusMessage: `round ${round.round + 1}: waiting for the sites`,
      }, now);
      return this.planRound(this.requireStudy(study.studyId), round.round + 1);
    });
    this.ledger.seal();
    this.telemetry.roundFinished(study, round, "aggregated", now);
    this.log.info("round aggregated", { study: study.studyId, round: round.round, sites: contributors.length });
    if (last) {
      this.log.info("study completed", { study: study.studyId, model: modelId });
      this.notifyClosed(study, "completed", `study completed after ${round.round} rounds`);
    }
    this.deliver(newTasks);
  }

  /** Creates the round and one task per taking-part site; call inside a transaction. */
  private planRound(study: StudyRecord, roundNo: number): TaskRecord[] {
    const ctx = this.contexts.get(study);
    let latest = this.store.latestModel(study.studyId);
    if (!latest) {
      const bytes = ctx.engine.serialize(ctx.engine.init(ctx.schema, study.engineConfig));
      latest = { modelId: `model-${randomUUID().slice(0, 8)}`, studyId: study.studyId, round: 0, engine: study.engine, bytes, sha256: sha256Hex(bytes), createdAt: this.now() };
      this.store.insertModel(latest);
    }
    const model = ctx.engine.deserialize(latest.bytes, ctx.schema, study.engineConfig);
    const base = ctx.taskContext(roundNo, {});
    const roundConfig = ctx.engine.planRound(model, { schema: base.schema, privacy: base.privacy, config: base.config, round: roundNo });
    const taskCtx = ctx.taskContext(roundNo, roundConfig);
    const now = this.now();
    this.store.insertRound({
      studyId: study.studyId, round: roundNo, state: "collecting", roundConfig, mechanisms: ctx.engine.charge(taskCtx),
      updateLength: ctx.engine.updateLength(taskCtx), modelId: latest.modelId, startedAt: now,
      deadlineAt: now + study.roundDeadlineSeconds * 1000, finishedAt: null,
      sessionNonce: study.secureThreshold > 0 ? newSessionNonce() : null,
    });
    const tasks: TaskRecord[] = [];
    for (const p of study.participants) {
      if (p.state !== "active") continue;
      const task: TaskRecord = { taskId: `task-${randomUUID()}`, studyId: study.studyId, round: roundNo, siteName: p.siteName, state: "pending", message: "", createdAt: now };
      this.store.insertTask(task);
      tasks.push(task);
    }
    const round = this.store.getRound(study.studyId, roundNo)!;
    this.telemetry.roundOpened(study, round);
    if (round.sessionNonce) this.secure.open(study, round, tasks);
    return tasks;
  }

  private deliver(tasks: TaskRecord[]): void {
    for (const t of tasks) this.sessions.send(t.siteName, { kind: "task", task: this.assignment(t) });
  }

  private assignment(task: TaskRecord): TaskAssignment {
    const study = this.requireStudy(task.studyId);
    const round = this.store.getRound(task.studyId, task.round);
    if (!round) throw new FedsynthError("internal", `task ${task.taskId} has no round`);
    const ctx = this.contexts.get(study);
    const needsModel = ctx.engine.needsModel(ctx.taskContext(round.round, round.roundConfig));
    const model = needsModel && round.modelId ? this.store.getModel(round.modelId) : undefined;
    return {
      taskId: task.taskId, study: ctx.spec, round: task.round, mechanisms: round.mechanisms,
      modelId: model?.modelId ?? "", modelSha256: model?.sha256 ?? "", modelBytes: model?.bytes.byteLength ?? 0,
      updateLength: round.updateLength, roundConfig: round.roundConfig,
      ...(round.sessionNonce ? { secureAggregation: this.secure.sessionSpec(study, round) } : {}),
      traceContext: this.telemetry.taskTraceContext(study, round, task.taskId),
    };
  }

  // ---- secure aggregation (secure-aggregation.ts) -------------------------------------------------------

  /** A site's secure-aggregation message for its task (a masked input carries the site's signed charge). */
  receiveSecAgg(siteName: string, taskId: string, bytes: Uint8Array, charge?: { epsilon: number; delta: number; signature: Uint8Array }): { accepted: boolean; message: string } {
    return this.secure.receive(siteName, taskId, bytes, charge);
  }

  private closeStudy(study: StudyRecord, state: "failed" | "cancelled", message: string): void {
    const now = this.now();
    this.store.transaction(() => {
      for (const round of this.store.listRounds(study.studyId)) {
        if (round.state !== "collecting") continue;
        this.store.finishRound(study.studyId, round.round, "aborted", now);
        this.telemetry.roundFinished(study, round, "aborted", now, message);
        this.store.purgeSubmissionUpdates(study.studyId, round.round);
        this.store.deleteSecAggSession(study.studyId, round.round);
        this.secure.forget(study.studyId, round.round);
        for (const t of this.store.listTasks(study.studyId, round.round)) {
          if (t.state === "pending") this.store.updateTask(t.taskId, "expired", message);
        }
      }
      this.store.updateStudy(study.studyId, { state, statusMessage: message }, now);
      this.store.appendLedger({ at: now, kind: "study-closed", studyId: study.studyId, siteName: null, round: null, body: { state, message } });
    });
    this.ledger.seal();
    this.log.warn(`study ${state}`, { study: study.studyId, message });
    this.notifyClosed(study, state, message);
  }

  private notifyClosed(study: StudyRecord, state: string, message: string): void {
    for (const p of study.participants) this.sessions.send(p.siteName, { kind: "study-closed", studyId: study.studyId, state, message });
  }

  /** The site's charge in a study from the ledger, plus the given mechanisms not yet recorded. */
  private mechanismsSoFar(study: StudyRecord, siteName: string): Mechanism[] {
    return this.store.listLedger({ studyId: study.studyId, siteName, kind: "charge" }).flatMap((e) => e.body.mechanisms as unknown as Mechanism[]);
  }

  private chargeSoFar(study: StudyRecord, siteName: string, extra: Mechanism[]): ParticipantCharge {
    const history = [...this.mechanismsSoFar(study, siteName), ...extra];
    if (history.length === 0) return { epsilon: 0, delta: 0 };
    return { epsilon: Accountant.epsilonOf(history, study.delta), delta: study.delta };
  }

  private requireStudy(studyId: string): StudyRecord {
    const study = this.store.getStudy(studyId);
    if (!study) throw new FedsynthError("not-found", `no study ${studyId}`, { hint: "list the studies with `fedsynth study list`" });
    return study;
  }
}

