/**
 * The site agent: dials out to the coordinator, never listens. It keeps one session open, reconnecting with
 * jittered exponential backoff while the coordinator is down, and carries out tasks one at a time.
 */
import { writeFileSync, renameSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { FedsynthError } from "../shared/errors.js";
import type { StudySpec, TaskAssignment } from "../shared/federation/task.js";
import type { Logger } from "../shared/telemetry/log.js";
import { AgentClient, type AgentSession, type CoordinatorMessage } from "./grpc/agent-client.js";
import { LocalStore } from "./local-store.js";
import { TaskRunner } from "./task-runner.js";
import { committed, type BudgetCap } from "./budget.js";
import { Backoff } from "./backoff.js";
import { lockDataDir, type DirLock } from "../shared/util/dir-lock.js";
import { loadOrCreateSigningKey, type SigningKey } from "./identity.js";
import type * as grpc from "@grpc/grpc-js";
import { SecureTask } from "./secure-task.js";
import { bytesEqual } from "../shared/crypto/identity.js";
import { context } from "@opentelemetry/api";
import { openTaskTrace, SiteMetrics, type TaskTrace } from "./telemetry.js";

/** How a task's handling ended here: its span ends with it, unless a secure session took it over. */
interface TaskEnd {
  error?: string;
  handedOver?: boolean;
}

export const AGENT_VERSION = "0.1.0";

export interface SiteAgentOptions {
  /** HOST:PORT, or several separated by commas: the replicas of one coordinator, tried in turn. */
  coordinator: string;
  siteName: string;
  dataFile: string;
  dataDir: string;
  cap: BudgetCap;
  log: Logger;
  reconnectMaxMs?: number;
  /** Mutual-TLS credentials from the site's enrolment. Absent: plaintext development mode. */
  credentials?: grpc.ChannelCredentials;
}

export class SiteAgent {
  private readonly store: LocalStore;
  private readonly lock: DirLock;
  private client: AgentClient;
  /** The coordinator's addresses (its replicas), and the one this agent dials now. */
  private readonly addresses: string[];
  private addressIndex = 0;
  private readonly runner: TaskRunner;
  private readonly backoff: Backoff;
  private session?: AgentSession;
  private stopped = false;
  private queue: Promise<void> = Promise.resolve();
  private connected = false;
  private lastError = "";
  private readonly signingKey: SigningKey;
  /** Secure-aggregation sessions in progress, by task. */
  private readonly secureTasks = new Map<string, SecureTask>();
  private playingDead = false;
  private readonly metrics: SiteMetrics;

  constructor(private readonly opts: SiteAgentOptions) {
    mkdirSync(opts.dataDir, { recursive: true });
    this.lock = lockDataDir(opts.dataDir, "site agent");
    this.store = new LocalStore(opts.dataDir);
    this.signingKey = loadOrCreateSigningKey(opts.dataDir);
    this.addresses = coordinatorAddresses(opts.coordinator);
    this.client = new AgentClient(this.addresses[0], opts.credentials);
    this.backoff = new Backoff(250, opts.reconnectMaxMs ?? 10_000);
    this.metrics = new SiteMetrics(opts.siteName);
    this.runner = new TaskRunner({
      store: this.store, cap: opts.cap, dataFile: opts.dataFile, log: opts.log, siteName: opts.siteName, signingSecretKey: this.signingKey.secretKey,
      fetchModel: (id, sha) => this.client.downloadModel(id, sha),
      progress: (taskId, fraction, message) => this.session?.sendProgress(taskId, fraction, message),
    });
  }

  /** Runs until stop(): connect, serve the session, back off, reconnect. */
  async run(): Promise<void> {
    const { log } = this.opts;
    this.writeStatus();
    while (!this.stopped) {
      try {
        // An enrolled site is known by its certificate; in development mode it registers its name and
        // signing key on every connection (the coordinator trusts the first key it saw for the name).
        if (!this.opts.credentials) {
          await this.client.enroll({ siteName: this.opts.siteName, agentVersion: AGENT_VERSION, signingPublicKey: this.signingKey.publicKey });
        }
        await this.serveSession();
        if (!this.stopped) log.warn("the coordinator closed the connection; reconnecting");
      } catch (err) {
        const e = FedsynthError.from(err);
        this.lastError = e.message;
        // A revoked site stays revoked whatever the agent does: retrying would hide that behind "retrying"
        // forever. It stops, saying what to do, and the command exits non-zero.
        if ((e.code === "unauthenticated" || e.code === "permission-denied") && /\bhas been revoked\b/.test(e.message)) {
          log.error(e.describe());
          this.lastError = e.hint ? `${e.message} (${e.hint})` : e.message;
          this.connected = false;
          this.writeStatus();
          this.stop();
          throw e;
        }
        if (e.code === "invalid-argument" || e.code === "failed-precondition") log.error(e.describe());
        else log.warn(`${e.message}; retrying`);
      }
      this.connected = false;
      this.writeStatus();
      if (this.stopped) break;
      this.nextAddress();
      await sleep(this.backoff.next());
    }
  }

  /** After a failed or closed session, the next replica: only the one that drives answers, wherever it is. */
  private nextAddress(): void {
    if (this.addresses.length < 2) return;
    this.addressIndex = (this.addressIndex + 1) % this.addresses.length;
    this.client.close();
    this.client = new AgentClient(this.addresses[this.addressIndex], this.opts.credentials);
    this.opts.log.info("trying the coordinator's next address", { coordinator: this.addresses[this.addressIndex] });
  }

  stop(): void {
    this.stopped = true;
    this.session?.end();
    this.client.close();
  }

  async close(): Promise<void> {
    this.stop();
    await this.queue.catch(() => undefined);
    this.store.close();
    this.lock.release();
  }

  private async serveSession(): Promise<void> {
    const session = this.client.openSession(this.opts.siteName, AGENT_VERSION, this.opts.cap);
    this.session = session;
    let heartbeat: NodeJS.Timeout | undefined;
    session.onMessage((m) => {
      if (m.kind === "welcome") {
        this.connected = true;
        this.lastError = "";
        this.backoff.reset();
        this.opts.log.info("connected to the coordinator", { coordinator: this.addresses[this.addressIndex], version: m.coordinatorVersion });
        heartbeat = setInterval(() => {
          session.sendHeartbeat();
          // status.json stays fresh while the agent sits connected and idle: `fedsynth health site` reads its age.
          this.writeStatus();
        }, Math.max(1000, m.heartbeatIntervalMs));
        this.writeStatus();
        return;
      }
      this.onMessage(session, m);
    });
    try {
      await session.closed;
    } finally {
      if (heartbeat) clearInterval(heartbeat);
      if (this.session === session) this.session = undefined;
    }
  }

  private onMessage(session: AgentSession, m: CoordinatorMessage): void {
    const { log } = this.opts;
    if (this.playingDead) return;
    switch (m.kind) {
      case "invitation":
        this.queue = this.queue.then(() => this.handleInvitation(session, m.study));
        return;
      case "task":
        this.queue = this.queue.then(() => this.handleTask(session, m.task));
        return;
      case "result-ack":
        if (m.accepted) {
          this.store.markAcknowledged(m.taskId);
          log.info("the coordinator accepted the update", { task: m.taskId });
        } else {
          log.error(`the coordinator rejected the update: ${m.message}`, { task: m.taskId });
        }
        return;
      case "study-closed": {
        const local = this.store.getStudy(m.studyId);
        if (local && local.state === "accepted") {
          const state = m.state === "completed" || m.state === "failed" || m.state === "cancelled" ? m.state : "failed";
          this.store.closeStudy(m.studyId, state, m.message);
          for (const [taskId, secure] of this.secureTasks) if (secure.studyId === m.studyId) this.secureTasks.delete(taskId);
          log.info(`study '${local.name}' ${state}: ${m.message}`, { study: m.studyId });
          this.writeStatus();
        }
        return;
      }
      case "secagg-relay":
        this.queue = this.queue.then(() => this.handleRelay(session, m.taskId, m.message));
        return;
      case "invalid":
        log.error(`could not read a message from the coordinator: ${m.message}`);
        if (m.taskId) session.sendFailed(m.taskId, `the agent could not read the task: ${m.message}`);
        return;
      case "welcome":
        return;
    }
  }

  private async handleInvitation(session: AgentSession, study: StudySpec): Promise<void> {
    const { log } = this.opts;
    log.info(`invited to study '${study.name}'`, { study: study.studyId, engine: study.engine, epsilon: study.epsilon, delta: study.delta, rounds: study.rounds });
    try {
      const admission = await this.runner.admit(study);
      if (admission.ok) session.sendInvitationAnswer(study.studyId, true, null, "");
      else {
        log.warn(`declining study '${study.name}': ${admission.message}`, { study: study.studyId, reason: admission.reason });
        session.sendInvitationAnswer(study.studyId, false, admission.reason, admission.message);
      }
    } catch (err) {
      const e = FedsynthError.from(err);
      log.error(`could not consider study '${study.name}': ${e.describe()}`, { study: study.studyId });
      session.sendInvitationAnswer(study.studyId, false, "unsupported", "the site agent hit an internal error; see its log");
    }
    this.writeStatus();
  }

  /** A task continues its round's trace here (telemetry), in a span of its own until it is done. */
  private async handleTask(session: AgentSession, task: TaskAssignment): Promise<void> {
    const trace = openTaskTrace(task);
    let outcome: TaskEnd = { error: "the task was interrupted" };
    try {
      outcome = await context.with(trace.context, () => this.carryOut(session, task, trace));
    } finally {
      // A secure task's span stays open for its session's later phases: its SecureTask ends it.
      if (!outcome.handedOver) trace.end(outcome.error);
    }
  }

  private async carryOut(session: AgentSession, task: TaskAssignment, trace: TaskTrace): Promise<TaskEnd> {
    const { log } = this.opts;
    log.info(`task received: round ${task.round} of study '${task.study.name}'`, { study: task.study.studyId, task: task.taskId });
    // Fault injection for the crash-recovery tests: hold the task as a slow site would.
    const delay = Number(process.env.FEDSYNTH_FAULT_TASK_DELAY_MS ?? 0);
    if (delay > 0) await sleep(delay);
    if (task.secureAggregation) return this.startSecureTask(session, task, trace);
    let end: TaskEnd = {};
    try {
      const outcome = await this.runner.run(task);
      if (outcome.kind === "decline") {
        session.sendDecline(outcome.taskId, outcome.studyId, outcome.reason, outcome.message);
      } else {
        await session.sendResult({
          taskId: outcome.taskId, bytes: outcome.bytes, sha256: outcome.sha256, epsilon: outcome.epsilonStudyTotal, delta: outcome.delta, signature: outcome.signature,
        });
      }
    } catch (err) {
      end = { error: this.reportTaskFailure(session, task, "task failed", err) };
    }
    this.writeStatus();
    return end;
  }

  private async startSecureTask(session: AgentSession, task: TaskAssignment, trace: TaskTrace): Promise<TaskEnd> {
    const { log } = this.opts;
    const running = this.secureTasks.get(task.taskId);
    // The same session announced again (the stream was re-established, or another coordinator resumed the
    // session): it carries on where it is, and what it sent last goes again, in case it was lost.
    if (running && !running.finished && bytesEqual(running.sessionNonce, task.secureAggregation!.sessionNonce)) {
      await running.resend();
      return {};
    }
    running?.abort("replaced by a new session for the same task");
    let end: TaskEnd = {};
    try {
      const prepared = await this.runner.prepareSecure(task);
      if (prepared.kind === "decline") {
        session.sendDecline(prepared.taskId, prepared.studyId, prepared.reason, prepared.message);
        return {};
      }
      const secure = new SecureTask({
        task, prepared, siteName: this.opts.siteName, signingKey: this.signingKey, log, trace,
        record: (masked) => this.runner.recordSecureRelease(task, prepared, masked),
        send: async (bytes, charge) => {
          // On the connection open now: the session outlives the connection it started on.
          const current = this.session;
          if (!current) {
            log.warn("secure aggregation: not connected; the message goes again when the coordinator asks", { task: task.taskId });
            return;
          }
          try {
            await current.sendSecAgg(task.taskId, bytes, charge);
          } catch (err) {
            log.warn(`secure aggregation: the message could not be sent (${FedsynthError.from(err).message}); it goes again when the coordinator asks`, { task: task.taskId });
            return;
          }
          // Fault injection for the dropout tests: a site that dies right after its masked input left
          // (it answers nothing more, and its process is killed once the input has been flushed).
          if (charge && process.env.FEDSYNTH_FAULT_DIE_AFTER_MASKED_INPUT === "1") {
            this.playingDead = true;
            setTimeout(() => process.kill(process.pid, "SIGKILL"), 300);
          }
        },
      });
      this.secureTasks.set(task.taskId, secure);
      end = { handedOver: true };
      log.info(`secure aggregation: round ${task.round} of study '${task.study.name}', threshold ${task.secureAggregation!.threshold} of ${task.secureAggregation!.siteKeys.length} sites`, { study: task.study.studyId, task: task.taskId });
      await secure.start();
    } catch (err) {
      const message = this.reportTaskFailure(session, task, "secure-aggregation task failed", err);
      if (!end.handedOver) end = { error: message };
    }
    this.writeStatus();
    return end;
  }

  private async handleRelay(session: AgentSession, taskId: string, message: Uint8Array): Promise<void> {
    const { log } = this.opts;
    const secure = this.secureTasks.get(taskId);
    // A finished session stays known: a coordinator that lost this site's last answer asks for it again.
    if (!secure || (secure.finished && !(secure.isRepeat(message) && !secure.aborted))) {
      log.warn("secure-aggregation message for a task with no session in progress here; ignored", { task: taskId });
      return;
    }
    try {
      await context.with(secure.traceContext, () => secure.onRelay(message));
    } catch (err) {
      const e = FedsynthError.from(err);
      secure.abort(e.message);
      this.secureTasks.delete(taskId);
      log.error(`secure aggregation aborted at this site: ${e.describe()}`, { task: taskId });
      session.sendFailed(taskId, `the site aborted secure aggregation: ${e.message}`);
    }
    this.writeStatus();
  }

  /** The full error goes to the site's log; the coordinator is told what failed, never an internal detail. */
  private reportTaskFailure(session: AgentSession, task: TaskAssignment, what: string, err: unknown): string {
    const e = FedsynthError.from(err);
    this.opts.log.error(`${what}: ${e.describe()}`, { study: task.study.studyId, task: task.taskId });
    session.sendFailed(task.taskId, e.code === "internal" ? "the site agent hit an internal error; see its log" : e.message);
    return e.message;
  }

  /** status.json in the data directory: what the site's own operator (or `simulate`) reads. Never sent. */
  private writeStatus(): void {
    const studies: Record<string, unknown> = {};
    for (const s of this.store.listStudies()) {
      const charges = this.store.charges({ studyId: s.studyId });
      const last = charges[charges.length - 1];
      studies[s.studyId] = {
        name: s.name, state: s.state, message: s.message, budget: { epsilon: s.epsilon, delta: s.delta },
        roundsCharged: charges.length, epsilonCharged: last?.epsilonStudyTotal ?? 0, deltaCharged: last ? last.delta : 0,
      };
      this.metrics.epsilonSpent(s.studyId, last?.epsilonStudyTotal ?? 0);
    }
    const status = {
      site: this.opts.siteName, coordinator: this.opts.coordinator, connected: this.connected, lastError: this.lastError,
      updatedAt: new Date().toISOString(), cap: this.opts.cap, committed: committed(this.store), data: this.runner.lastData ?? null, studies,
    };
    const path = join(this.opts.dataDir, "status.json");
    writeFileSync(path + ".tmp", JSON.stringify(status, null, 2));
    renameSync(path + ".tmp", path);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** "a:7070,b:7070" → ["a:7070", "b:7070"]; every entry must be HOST:PORT. */
export function coordinatorAddresses(value: string): string[] {
  const list = value.split(",").map((a) => a.trim()).filter((a) => a !== "");
  for (const a of list) {
    if (!/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/.test(a)) {
      throw new FedsynthError("invalid-argument", `--coordinator ${JSON.stringify(a)} is not HOST:PORT`, {
        hint: "give the coordinator's address, e.g. coord.example.org:7070, or its replicas' separated by commas",
      });
    }
  }
  if (list.length === 0) throw new FedsynthError("invalid-argument", "--coordinator is empty", { hint: "give the coordinator's HOST:PORT" });
  return list;
}
