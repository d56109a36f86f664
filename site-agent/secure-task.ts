/**
 * One task's secure-aggregation session at the site: the SecAggClient state machine driven by what the
 * coordinator relays. The contribution is computed (with this site's noise share) when the task arrives,
 * but it leaves only masked, and its charge is recorded in the site's own ledger just before it does.
 * A session the site finds fault with is aborted for good: the site then simply takes no further part.
 */
import { SecAggClient, decodeMessage, encodeMessage, checkThreshold, type ClientMessage } from "../shared/crypto/secagg/index.js";
import type { SigningKey } from "./identity.js";
import type { TaskAssignment } from "../shared/federation/task.js";
import type { Logger } from "../shared/telemetry/log.js";
import type { SecurePreparation } from "./task-runner.js";
import type { SecAggCharge } from "./grpc/agent-client.js";
import { FedsynthError } from "../shared/errors.js";
import { context, type Context } from "@opentelemetry/api";
import { masking, type TaskTrace } from "./telemetry.js";

type Prepared = Extract<SecurePreparation, { kind: "secure" }>;

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

  /** The context to handle this session's relays in (its task's span). */
  get traceContext(): Context {
    return this.opts.trace?.context ?? context.active();
  }

  start(): Promise<void> {
    return this.send(this.client.advertiseKeys());
  }

  /** One message from the coordinator; the answer goes straight back. */
  async onRelay(bytes: Uint8Array): Promise<void> {
    const m = decodeMessage(bytes);
    switch (m.kind) {
      case "key-list":
        return this.send(this.client.shareKeys(m));
      case "routed-shares": {
        const { masked, signature } = masking(this.opts.task, () => {
          const input = this.client.maskInput(m, this.opts.prepared.words);
          return { masked: input, signature: this.opts.record(new Uint8Array(input.masked.buffer, input.masked.byteOffset, input.masked.byteLength)).signature };
        });
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
    return this.opts.send(encodeMessage(m), charge);
  }
}
