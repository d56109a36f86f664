/**
 * The coordinator's OpenTelemetry: one trace per round, spans for what the sites send and for aggregation,
 * and the coordinator's metrics. Everything here is a no-op unless telemetry is on (shared/telemetry/otel.ts).
 *
 * A round's span is the root of its trace. Its trace and span ids are derived from the round's stored
 * identity (study id and creation time, round number and start time), so a coordinator that restarts in
 * the middle of a round opens the same span again — same trace, same span id, marked
 * fedsynth.round.resumed — and the spans the sites made under the first process keep their parent. The
 * span the first process had open is never exported (a span is exported when it ends).
 */
import { createHash } from "node:crypto";
import { ROOT_CONTEXT, SpanKind, trace, type Context, type Span } from "@opentelemetry/api";
import {
  countTransfer, extractCarrier, failSpan, flushMetricsSoon, injectCarrier, inSpan, instruments, meter, startSpanWithIds, telemetryEnabled, tracer,
  type TraceCarrier, type TransferDirection, type TransferKind,
} from "../shared/telemetry/otel.js";
import type { RoundRecord, StudyRecord } from "./store/records.js";

/** What the coordinator's gauges read, at each collection. */
export interface CoordinatorReadings {
  listSites(): { connected: boolean }[];
  listStudies(): { studyId: string }[];
  studyDetail(studyId: string): { charges: Map<string, { epsilon: number }> };
}

interface OpenRound {
  span: Span;
  context: Context;
  startedAt: number;
  aggregation?: Span;
}

export class CoordinatorTelemetry {
  private readonly rounds = new Map<string, OpenRound>();
  /** The round of each task this process has handed out, to parent what a site sends without a trace context. */
  private readonly taskRounds = new Map<string, { studyId: string; round: number }>();
  private gauges = false;

  /** Make it after startTelemetry: its gauges are registered here (and retried lazily). */
  constructor(private readonly readings: CoordinatorReadings) {
    this.registerGauges();
  }

  /** Registers the observable gauges; call once telemetry has started (a no-op when it is off). */
  private registerGauges(): void {
    if (this.gauges || !telemetryEnabled()) return;
    this.gauges = true;
    const m = meter();
    m.createObservableGauge("fedsynth.sites.connected", { unit: "{site}", description: "Site agents connected to the coordinator right now" })
      .addCallback((result) => {
        try {
          result.observe(this.readings.listSites().filter((s) => s.connected).length);
        } catch {
          // The store is closing: nothing to report this time.
        }
      });
    m.createObservableGauge("fedsynth.privacy.epsilon_spent", {
      unit: "1", description: "Epsilon each site has been charged in each study, from the charges on the coordinator's ledger",
    }).addCallback((result) => {
      try {
        for (const { studyId } of this.readings.listStudies()) {
          for (const [site, charge] of this.readings.studyDetail(studyId).charges) {
            result.observe(charge.epsilon, { "fedsynth.site.name": site, "fedsynth.study.id": studyId });
          }
        }
      } catch {
        // As above.
      }
    });
  }

  /** The round has just been planned (its record is stored): its span starts at its recorded start. */
  roundOpened(study: StudyRecord, round: RoundRecord): void {
    this.open(study, round, false);
  }

  /** The trace context a task carries to its site (none when telemetry is off). */
  taskTraceContext(study: StudyRecord, round: RoundRecord, taskId: string): TraceCarrier | undefined {
    if (!telemetryEnabled()) return undefined;
    this.taskRounds.set(taskId, { studyId: study.studyId, round: round.round });
    const carrier = injectCarrier(this.open(study, round, true).context);
    return Object.keys(carrier).length > 0 ? carrier : undefined;
  }

  /** Aggregation of a round's sum has begun; its span ends with the round. */
  aggregationStarted(study: StudyRecord, round: RoundRecord, contributors: number): void {
    if (!telemetryEnabled()) return;
    const open = this.open(study, round, true);
    open.aggregation?.end();
    open.aggregation = tracer().startSpan("fedsynth.aggregation", {
      attributes: {
        "fedsynth.study.id": study.studyId, "fedsynth.round": round.round, "fedsynth.contributors": contributors,
        "fedsynth.secure_aggregation": round.sessionNonce !== null, "fedsynth.release": round.round >= study.rounds,
      },
    }, open.context);
  }

  /** The round is over: aggregated, or aborted with the study. Ends its spans and records its duration. */
  roundFinished(study: StudyRecord, round: RoundRecord, outcome: "aggregated" | "aborted", finishedAt: number, message = ""): void {
    this.registerGauges();
    if (!telemetryEnabled()) return;
    const open = this.open(study, round, true);
    this.rounds.delete(key(study.studyId, round.round));
    for (const [taskId, r] of this.taskRounds) if (r.studyId === study.studyId && r.round === round.round) this.taskRounds.delete(taskId);
    if (open.aggregation) {
      if (outcome !== "aggregated") failSpan(open.aggregation, message || "the round was aborted");
      open.aggregation.end(finishedAt);
    }
    open.span.setAttribute("fedsynth.round.outcome", outcome);
    if (outcome !== "aggregated") failSpan(open.span, message || "the round was aborted");
    open.span.end(Math.max(finishedAt, open.startedAt));
    instruments().roundDuration.record(Math.max(0, finishedAt - round.startedAt) / 1000, {
      "fedsynth.study.id": study.studyId, "fedsynth.round.outcome": outcome, "fedsynth.secure_aggregation": round.sessionNonce !== null,
    });
    flushMetricsSoon();
  }

  /**
   * Runs the handling of what a site sent for a task in a span: a child of the site's span when the
   * message carries its trace context, else of the task's round (when this process knows it).
   */
  received<T>(what: string, siteName: string, taskId: string, carrier: TraceCarrier | undefined, fn: () => T): T {
    this.registerGauges();
    if (!telemetryEnabled()) return fn();
    const known = this.taskRounds.get(taskId);
    const parent = extractCarrier(carrier) ?? (known ? this.rounds.get(key(known.studyId, known.round))?.context : undefined);
    if (!parent) return fn();
    return inSpan(`fedsynth.receive ${what}`, {
      kind: SpanKind.CONSUMER, attributes: { "fedsynth.site.name": siteName, "fedsynth.task.id": taskId },
    }, parent, fn);
  }

  /** Serving a model download in a span under the caller's, when its metadata carries a trace context. */
  servingModel<T>(siteName: string, modelId: string, carrier: TraceCarrier, fn: () => Promise<T>): Promise<T> {
    const parent = telemetryEnabled() ? extractCarrier(carrier) : undefined;
    if (!parent) return fn();
    return inSpan("fedsynth.model.download", {
      kind: SpanKind.SERVER, attributes: { "fedsynth.site.name": siteName, "fedsynth.model.id": modelId },
    }, parent, fn);
  }

  transfer(direction: TransferDirection, kind: TransferKind, siteName: string, bytes: number): void {
    countTransfer(direction, kind, bytes, { "fedsynth.site.name": siteName });
  }

  private open(study: StudyRecord, round: RoundRecord, resumedIfNew: boolean): OpenRound {
    const k = key(study.studyId, round.round);
    const existing = this.rounds.get(k);
    if (existing) return existing;
    this.registerGauges();
    const span = startSpanWithIds("fedsynth.round", {
      kind: SpanKind.INTERNAL, startTime: round.startedAt,
      attributes: {
        "fedsynth.study.id": study.studyId, "fedsynth.study.name": study.name, "fedsynth.engine": study.engine,
        "fedsynth.round": round.round, "fedsynth.rounds": study.rounds, "fedsynth.secure_aggregation": round.sessionNonce !== null,
        ...(resumedIfNew ? { "fedsynth.round.resumed": true } : {}),
      },
    }, roundIds(study, round));
    const opened = { span, context: trace.setSpan(ROOT_CONTEXT, span), startedAt: round.startedAt };
    this.rounds.set(k, opened);
    return opened;
  }
}

/** The round span's ids, from what the store keeps of the round (see the file comment). */
export function roundIds(study: Pick<StudyRecord, "studyId" | "createdAt">, round: Pick<RoundRecord, "round" | "startedAt">): { traceId: string; spanId: string } {
  const h = createHash("sha256").update(`fedsynth round\n${study.studyId}\n${study.createdAt}\n${round.round}\n${round.startedAt}`).digest("hex");
  return { traceId: h.slice(0, 32), spanId: h.slice(32, 48) };
}

function key(studyId: string, round: number): string {
  return `${studyId}/${round}`;
}
