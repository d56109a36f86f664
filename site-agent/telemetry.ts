/**
 * The site agent's OpenTelemetry (no-ops unless it is on: shared/telemetry/otel.ts). A task continues the
 * round's trace from the context the coordinator put in it; its local training and masking are spans
 * under the task's, and what the agent sends for the task carries the active span's context back.
 * Nothing here ever holds a data value: ids, timings and the charged epsilon only.
 */
import { context, SpanKind, trace, type Context } from "@opentelemetry/api";
import type { TaskAssignment } from "../shared/federation/task.js";
import { extractCarrier, failSpan, inSpan, meter, telemetryEnabled, tracer } from "../shared/telemetry/otel.js";

/** A task's span at the site: open while the task is in progress (a secure task spans several exchanges). */
export interface TaskTrace {
  readonly context: Context;
  /** Ends the span (once); a message marks it as failed. */
  end(error?: string): void;
}

export function openTaskTrace(task: TaskAssignment): TaskTrace {
  const parent = extractCarrier(task.traceContext) ?? context.active();
  const span = tracer().startSpan("fedsynth.site.task", {
    kind: SpanKind.CONSUMER,
    attributes: {
      "fedsynth.study.id": task.study.studyId, "fedsynth.round": task.round, "fedsynth.task.id": task.taskId,
      "fedsynth.secure_aggregation": task.secureAggregation !== undefined,
    },
  }, parent);
  let ended = false;
  return {
    context: trace.setSpan(parent, span),
    end(error?: string) {
      if (ended) return;
      ended = true;
      if (error) failSpan(span, error);
      span.end();
    },
  };
}

/** The engine's local computation for a task: the update (or the secure contribution, on its grid). */
export function localTraining<T>(task: TaskAssignment, fn: () => T): T {
  return inSpan("fedsynth.local_training", { attributes: { "fedsynth.study.id": task.study.studyId, "fedsynth.round": task.round, "fedsynth.engine": task.study.engine } }, undefined, fn);
}

/** Masking the contribution for secure aggregation (and recording its charge before it leaves). */
export function masking<T>(task: TaskAssignment, fn: () => T): T {
  return inSpan("fedsynth.masking", { attributes: { "fedsynth.study.id": task.study.studyId, "fedsynth.round": task.round } }, undefined, fn);
}

/** fedsynth.privacy.epsilon_spent as this site's own ledger has it, per study. */
export class SiteMetrics {
  private readonly spent = new Map<string, number>();

  constructor(siteName: string) {
    if (!telemetryEnabled()) return;
    meter().createObservableGauge("fedsynth.privacy.epsilon_spent", {
      unit: "1", description: "Epsilon this site has been charged in each study, from its own ledger",
    }).addCallback((result) => {
      for (const [studyId, epsilon] of this.spent) result.observe(epsilon, { "fedsynth.site.name": siteName, "fedsynth.study.id": studyId });
    });
  }

  /** What the site's ledger says it has spent in a study (the gauge reports the latest). */
  epsilonSpent(studyId: string, epsilon: number): void {
    this.spent.set(studyId, epsilon);
  }
}
