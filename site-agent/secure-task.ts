/**
 * One task's secure-aggregation session at the site: the SecAggClient state machine driven by what the
 * coordinator relays. The contribution is computed (with this site's noise share) when the task arrives,
 * but it leaves only masked, and its charge is recorded in the site's own ledger just before it does.
 * A session the site finds fault with is aborted for good: the site then simply takes no further part.
 *
 * The coordinator may restart, or another replica take over, in the middle of a session: it resumes the
 * session from its store and asks again, on the new connection, what its open phase asks (the relay this
 * site may not have answered). A relay this site has answered already is answered again with the very
 * same message, never computed afresh (a masked input is computed, charged and masked once); so is a task
 * announced again for the same session.
 */
import { SecAggClient, decodeMessage, encodeMessage, checkThreshold, type ClientMessage } from "../shared/crypto/secagg/index.js";
import { bytesEqual } from "../shared/crypto/identity.js";
import type { SigningKey } from "./identity.js";
import type { TaskAssignment } from "../shared/federation/task.js";
import type { Logger } from "../shared/telemetry/log.js";
import type { SecurePreparation } from "./task-runner.js";
import type { SecAggCharge } from "./grpc/agent-client.js";
import { FedsynthError } from "../shared/errors.js";
import { context, type Context } from "@opentelemetry/api";
import { masking, type TaskTrace } from "./telemetry.js";

type Prepared = Extract<SecurePreparation, { kind: "secure" }>;

/** Fault injection (FEDSYNTH_FAULT_MASKED_INPUT_DELAY_MS): only the first masked input of the process waits. */
let maskedInputDelayed = false;

export interface SecureTaskOptions {
  task: TaskAssignment;
  prepared: Prepared;
  siteName: string;
  signingKey: SigningKey;
  log: Logger;
  /** Writes the charge, its signed statement and the masked words to the site's ledger. */
  record(masked: Uint8Array): { sha256: string; signature: Uint8Array };
  send(message: Uint8Array, charge?: SecAggCharge): Promise<void>;
  /** The task's span (telemetry): the session's exchanges run under it, and it ends with the session. */
  trace?: TaskTrace;
}

export class SecureTask {
  private readonly client: SecAggClient;
  /** The last relay answered, and the answer: sent again, as it was, when the coordinator asks again. */
  private lastRelay?: Uint8Array;
  private lastSent?: { bytes: Uint8Array; charge?: SecAggCharge };

  constructor(private readonly opts: SecureTaskOptions) {
    const session = opts.task.secureAggregation!;
    checkThreshold(session.threshold, session.siteKeys.length);
    // The charge assumed that every unmasked sum holds at least `sites` noise shares: a session that would
    // unmask smaller sums is refused, whatever the coordinator asks.
    for (const m of opts.prepared.mechanisms) {
      if (m.kind === "distributed-discrete-gaussian" && m.sites > session.threshold) {
        throw new FedsynthError("failed-precondition", `the session's threshold (${session.threshold}) is below the ${m.sites} noise shares this site's charge assumes; the site takes no part`);
      }
    }
    this.client = new SecAggClient({
      params: {
        context: { studyId: opts.task.study.studyId, round: opts.task.round, sessionNonce: session.sessionNonce },
        threshold: session.threshold,
        vectorLength: opts.task.updateLength,
        siteKeys: new Map(session.siteKeys.map((k) => [k.siteName, k.publicKey])),
      },
      siteId: opts.siteName,
      identity: opts.signingKey,
    });
  }

  get sessionNonce(): Uint8Array {
    return this.opts.task.secureAggregation!.sessionNonce;
  }

  get finished(): boolean {
    return this.client.phase === "done" || this.client.phase === "aborted";
  }

  get studyId(): string {
    return this.opts.task.study.studyId;
  }

  get aborted(): boolean {
    return this.client.phase === "aborted";
  }

  /** Whether this relay is the one answered last (the coordinator asks again after a reconnection or a restart). */
  isRepeat(bytes: Uint8Array): boolean {
    return !!this.lastRelay && bytesEqual(this.lastRelay, bytes);
  }

  /** Sends the last message again, unchanged (nothing when there is none, or the session was aborted here). */
  async resend(): Promise<boolean> {
    if (!this.lastSent || this.aborted) return false;
    this.opts.log.info("secure aggregation: sending the last message again, unchanged", { task: this.opts.task.taskId, masked_input: !!this.lastSent.charge });
    await this.opts.send(this.lastSent.bytes, this.lastSent.charge);
    return true;
  }

  /** The context to handle this session's relays in (its task's span). */
  get traceContext(): Context {
    return this.opts.trace?.context ?? context.active();
  }

  start(): Promise<void> {
    return this.send(this.client.advertiseKeys());
  }

  /** One message from the coordinator; the answer goes straight back. */
  async onRelay(bytes: Uint8Array): Promise<void> {
    if (this.isRepeat(bytes)) {
      await this.resend();
      return;
    }
    const m = decodeMessage(bytes);
    // Kept before answering: should the answer be lost, the same question gets the same answer.
    this.lastRelay = new Uint8Array(bytes);
    switch (m.kind) {
      case "key-list":
        return this.send(this.client.shareKeys(m));
      case "routed-shares": {
        const { masked, signature } = masking(this.opts.task, () => {
          const input = this.client.maskInput(m, this.opts.prepared.words);
          return { masked: input, signature: this.opts.record(new Uint8Array(input.masked.buffer, input.masked.byteOffset, input.masked.byteLength)).signature };
        });
        // Fault injection for the coordinator-failover tests: a site whose first masked input, charged
        // already, is slow to leave (the coordinator is killed meanwhile).
        const delay = Number(process.env.FEDSYNTH_FAULT_MASKED_INPUT_DELAY_MS ?? 0);
        if (delay > 0 && !maskedInputDelayed) {
          maskedInputDelayed = true;
          await new Promise((resolve) => setTimeout(resolve, delay));
        }
        const { task, prepared } = this.opts;
        this.opts.log.info("secure aggregation: masked input sent", {
          task: task.taskId, epsilon_study_total: prepared.epsilonStudyTotal, epsilon_if_coordinator_colludes: prepared.epsilonIfColluding,
        });
        if (prepared.clamped > 0) this.opts.log.warn(`${prepared.clamped} values of the contribution exceeded the study's public bound and were clamped to it`, { task: task.taskId });
        return this.send(masked, { epsilon: prepared.epsilonStudyTotal, delta: prepared.delta, signature });
      }
      case "survivor-list":
        return this.send(this.client.signSurvivors(m));
      case "consistency-proof": {
        const answer = this.client.unmask(m);
        this.opts.log.info("secure aggregation: shares revealed for the survivors; the session is done at this site", { task: this.opts.task.taskId, survivors: m.survivors.length });
        await this.send(answer);
        this.opts.trace?.end();
        return;
      }
      default:
        throw new FedsynthError("invalid-argument", `the coordinator relayed a ${m.kind} message, which only sites send`);
    }
  }

  abort(reason: string): void {
    this.client.abort(reason);
    this.opts.trace?.end(reason);
  }

  private send(m: ClientMessage, charge?: SecAggCharge): Promise<void> {
    const bytes = encodeMessage(m);
    this.lastSent = { bytes, ...(charge ? { charge } : {}) };
    return this.opts.send(bytes, charge);
  }
}
