/**
 * A round's span survives a coordinator restart: a second CoordinatorTelemetry (a new process, or the
 * replica that takes over) opens the same round under the same trace and span ids, marked as resumed.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { context, trace } from "@opentelemetry/api";
import { shutdownTelemetry, startTelemetry } from "../shared/telemetry/otel.js";
import { CoordinatorTelemetry, roundIds } from "./telemetry.js";
import { startOtlpReceiver, type OtlpReceiver } from "../test/support/otlp-receiver.js";
import type { RoundRecord, StudyRecord } from "./store/records.js";

const readings = { listSites: () => [], listStudies: () => [], studyDetail: () => ({ charges: new Map() }) };
const study = { studyId: "study-0000abcd", name: "s", engine: "independent", rounds: 2, createdAt: 1_700_000_000_000 } as StudyRecord;
const round = { studyId: study.studyId, round: 1, startedAt: 1_700_000_001_000, sessionNonce: null } as RoundRecord;

describe("CoordinatorTelemetry across a restart", () => {
  let receiver: OtlpReceiver;
  const saved: Record<string, string | undefined> = {};

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    for (const k of Object.keys(process.env)) if (k.startsWith("OTEL_")) saved[k] = process.env[k];
    for (const k of Object.keys(saved)) delete process.env[k];
    Object.assign(process.env, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" });
    expect(await startTelemetry({ serviceName: "fedsynth-coordinator", role: "coordinator" })).toBe(true);
  });

  afterAll(async () => {
    await shutdownTelemetry();
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    delete process.env.OTEL_EXPORTER_OTLP_PROTOCOL;
    Object.assign(process.env, saved);
    await receiver.close();
  });

  it("derives the round span's ids from the stored round, and reopens the same span after a restart", async () => {
    const ids = roundIds(study, round);
    expect(ids.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(ids.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(roundIds(study, { ...round, round: 2 }).traceId).not.toBe(ids.traceId);

    const first = new CoordinatorTelemetry(readings);
    first.roundOpened(study, round);
    const sent = first.taskTraceContext(study, round, "task-1");
    expect(sent?.traceparent).toBe(`00-${ids.traceId}-${ids.spanId}-01`);
    // The first process dies here: its round span never ends, so it is never exported.

    const second = new CoordinatorTelemetry(readings);
    expect(second.taskTraceContext(study, round, "task-1")?.traceparent).toBe(sent?.traceparent);
    // A site's message under the first process's context lands in the same trace.
    second.received("result", "site-a", "task-1", sent, () => {
      expect(trace.getSpanContext(context.active())?.traceId).toBe(ids.traceId);
    });
    second.aggregationStarted(study, round, 1);
    second.roundFinished(study, { ...round, finishedAt: round.startedAt + 5000 }, "aggregated", round.startedAt + 5000);
    await shutdownTelemetry();

    const rounds = receiver.spans.filter((s) => s.name === "fedsynth.round");
    expect(rounds).toHaveLength(1);
    expect(rounds[0]).toMatchObject({ traceId: ids.traceId, spanId: ids.spanId, parentSpanId: "" });
    expect(rounds[0].attributes["fedsynth.round.resumed"]).toBe(true);
    const receive = receiver.spans.find((s) => s.name === "fedsynth.receive result");
    expect(receive).toMatchObject({ traceId: ids.traceId, parentSpanId: ids.spanId });
    expect(receiver.spans.find((s) => s.name === "fedsynth.aggregation")).toMatchObject({ traceId: ids.traceId, parentSpanId: ids.spanId });
    const duration = receiver.points.find((p) => p.metric === "fedsynth.round.duration");
    expect(duration).toMatchObject({ count: 1, value: 5 });
  });
});
