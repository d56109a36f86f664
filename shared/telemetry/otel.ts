/**
 * OpenTelemetry for every fedsynth process: traces and metrics exported over OTLP/HTTP when the standard
 * OTEL_* variables ask for it, nothing at all otherwise.
 *
 * Telemetry is on when OTEL_EXPORTER_OTLP_ENDPOINT (or the signal's own OTEL_EXPORTER_OTLP_TRACES_ENDPOINT /
 * OTEL_EXPORTER_OTLP_METRICS_ENDPOINT) is set and OTEL_SDK_DISABLED is not "true"; OTEL_TRACES_EXPORTER or
 * OTEL_METRICS_EXPORTER "none" turns one signal off. Only then are the SDK, the exporters, the W3C
 * propagator and the async context manager loaded; otherwise every span and instrument below is the API's
 * no-op and no trace context leaves the process. The exporters read the rest of the standard variables
 * themselves (headers, timeout, compression, certificates, temporality).
 *
 * Code everywhere uses `tracer()`, `meter()`, `inSpan()` and the carrier helpers, whether or not it is on.
 */
import {
  context, diag, DiagLogLevel, isSpanContextValid, metrics, propagation, ROOT_CONTEXT, SpanStatusCode, trace,
  type Context, type Counter, type Histogram, type Meter, type Span, type SpanOptions, type Tracer,
} from "@opentelemetry/api";
import { randomUUID } from "node:crypto";
import type { Logger } from "./log.js";

export const INSTRUMENTATION_NAME = "fedsynth";
const INSTRUMENTATION_VERSION = "0.1.0";

export type OtlpProtocol = "http/protobuf" | "http/json";

export interface TelemetryPlan {
  traces: OtlpProtocol | null;
  metrics: OtlpProtocol | null;
  /** Said once at start when the configuration asks for something we do not do (grpc, say). */
  warnings: string[];
}

/** What the environment asks for: null when telemetry is off (the default). */
export function telemetryPlan(env: NodeJS.ProcessEnv = process.env): TelemetryPlan | null {
  if ((env.OTEL_SDK_DISABLED ?? "").trim().toLowerCase() === "true") return null;
  const set = (name: string) => (env[name] ?? "").trim() !== "";
  const warnings: string[] = [];
  const signal = (name: "TRACES" | "METRICS"): OtlpProtocol | null => {
    if (!set("OTEL_EXPORTER_OTLP_ENDPOINT") && !set(`OTEL_EXPORTER_OTLP_${name}_ENDPOINT`)) return null;
    const exporters = (env[`OTEL_${name}_EXPORTER`] ?? "otlp").split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
    if (exporters.includes("none") || (exporters.length > 0 && !exporters.includes("otlp"))) return null;
    const asked = (env[`OTEL_EXPORTER_OTLP_${name}_PROTOCOL`] || env.OTEL_EXPORTER_OTLP_PROTOCOL || "http/protobuf").trim().toLowerCase();
    if (asked === "http/json" || asked === "http/protobuf") return asked;
    warnings.push(`OTLP protocol ${JSON.stringify(asked)} is not supported for ${name.toLowerCase()}; exporting with http/protobuf (set OTEL_EXPORTER_OTLP_PROTOCOL to http/protobuf or http/json)`);
    return "http/protobuf";
  };
  const plan = { traces: signal("TRACES"), metrics: signal("METRICS"), warnings };
  return plan.traces || plan.metrics ? plan : null;
}

export interface TelemetryIdentity {
  /** The default service.name (OTEL_SERVICE_NAME wins). */
  serviceName: string;
  /** coordinator, site or cli: the fedsynth.role resource attribute. */
  role: string;
  /** More resource attributes (OTEL_RESOURCE_ATTRIBUTES wins). */
  attributes?: Record<string, string>;
}

interface Running {
  shutdown(): Promise<void>;
  flushMetrics(): Promise<void>;
}

let running: Running | undefined;
let instrumentsMemo: Instruments | undefined;

/** Whether this process exports telemetry. */
export function telemetryEnabled(): boolean {
  return running !== undefined;
}

/**
 * Starts the SDK if the environment asks for it (see the file comment); returns whether it did. Call it
 * before anything creates instruments: a meter taken before the provider is registered stays a no-op.
 */
export async function startTelemetry(identity: TelemetryIdentity, log?: Logger): Promise<boolean> {
  // The exporters read their own variables (endpoint, headers...) from process.env, so the plan does too.
  const env = process.env;
  if (running) return true;
  const plan = telemetryPlan(env);
  if (!plan) return false;
  const [{ BasicTracerProvider, BatchSpanProcessor, RandomIdGenerator }, { MeterProvider, PeriodicExportingMetricReader },
    { defaultResource, resourceFromAttributes, detectResources, envDetector }, { W3CTraceContextPropagator }, { AsyncLocalStorageContextManager }] = await Promise.all([
    import("@opentelemetry/sdk-trace-base"), import("@opentelemetry/sdk-metrics"), import("@opentelemetry/resources"),
    import("@opentelemetry/core"), import("@opentelemetry/context-async-hooks"),
  ]);
  const { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } = await import("@opentelemetry/semantic-conventions");
  if (log) {
    const say = (level: "warn" | "debug") => (message: string, ...args: unknown[]) =>
      log[level](`telemetry: ${message}`, args.length ? { detail: args.map(describe).join(" ") } : undefined);
    diag.setLogger({ error: say("warn"), warn: say("warn"), info: say("debug"), debug: () => undefined, verbose: () => undefined }, DiagLogLevel.WARN);
    for (const w of plan.warnings) log.warn(`telemetry: ${w}`);
  }
  const resource = defaultResource()
    .merge(resourceFromAttributes({
      [ATTR_SERVICE_NAME]: identity.serviceName, [ATTR_SERVICE_VERSION]: INSTRUMENTATION_VERSION,
      "service.instance.id": randomUUID(), "fedsynth.role": identity.role, ...identity.attributes,
    }))
    .merge(detectResources({ detectors: [envDetector] }));

  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());

  let tracerProvider: InstanceType<typeof BasicTracerProvider> | undefined;
  if (plan.traces) {
    const random = new RandomIdGenerator();
    const exporter = plan.traces === "http/json"
      ? new (await import("@opentelemetry/exporter-trace-otlp-http")).OTLPTraceExporter()
      : new (await import("@opentelemetry/exporter-trace-otlp-proto")).OTLPTraceExporter();
    tracerProvider = new BasicTracerProvider({
      resource,
      spanProcessors: [new BatchSpanProcessor(exporter)],
      idGenerator: {
        generateTraceId: () => fixedIds?.traceId ?? random.generateTraceId(),
        generateSpanId: () => fixedIds?.spanId ?? random.generateSpanId(),
      },
    });
    trace.setGlobalTracerProvider(tracerProvider);
  }
  let meterProvider: InstanceType<typeof MeterProvider> | undefined;
  if (plan.metrics) {
    const exporter = plan.metrics === "http/json"
      ? new (await import("@opentelemetry/exporter-metrics-otlp-http")).OTLPMetricExporter()
      : new (await import("@opentelemetry/exporter-metrics-otlp-proto")).OTLPMetricExporter();
    const interval = positiveInt(env.OTEL_METRIC_EXPORT_INTERVAL, 60_000);
    meterProvider = new MeterProvider({
      resource,
      readers: [new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: interval, exportTimeoutMillis: Math.min(interval, positiveInt(env.OTEL_METRIC_EXPORT_TIMEOUT, 30_000)) })],
    });
    metrics.setGlobalMeterProvider(meterProvider);
  }
  instrumentsMemo = undefined;
  running = {
    shutdown: async () => {
      await Promise.allSettled([tracerProvider?.shutdown(), meterProvider?.shutdown()]);
    },
    flushMetrics: async () => {
      await meterProvider?.forceFlush();
    },
  };
  log?.debug("telemetry exporting over OTLP", { traces: plan.traces ?? "off", metrics: plan.metrics ?? "off" });
  return true;
}

/**
 * Exports what is buffered and stops the SDK; waits at most `timeoutMs` (an unreachable collector must not
 * hold up a shutdown). Safe to call when telemetry is off, and more than once.
 */
export function shutdownTelemetry(timeoutMs = 3000): Promise<void> {
  const r = running;
  if (!r) return stopping ?? Promise.resolve();
  running = undefined;
  let timer: NodeJS.Timeout | undefined;
  // Every caller (a signal handler and a finally block, say) waits for the same flush.
  stopping = Promise.race([r.shutdown(), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]).finally(() => clearTimeout(timer));
  return stopping;
}

let stopping: Promise<void> | undefined;

let flushing: Promise<void> | undefined;
let flushAgain = false;

/** Exports the metrics now (after a round ends, say) rather than at the next interval; never throws. */
export function flushMetricsSoon(): void {
  const r = running;
  if (!r) return;
  if (flushing) {
    flushAgain = true;
    return;
  }
  flushing = r.flushMetrics().catch(() => undefined).finally(() => {
    flushing = undefined;
    if (flushAgain) {
      flushAgain = false;
      flushMetricsSoon();
    }
  });
}

export function tracer(): Tracer {
  return trace.getTracer(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION);
}

export function meter(): Meter {
  return metrics.getMeter(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION);
}

// ---- spans ----------------------------------------------------------------------------------------------

/**
 * Runs `fn` inside a new span (child of `parent`, by default the active context) and ends it when `fn`
 * returns or its promise settles; an exception marks the span as an error and is rethrown.
 */
export function inSpan<T>(name: string, options: SpanOptions, parent: Context | undefined, fn: (span: Span) => T): T {
  const base = parent ?? context.active();
  const span = tracer().startSpan(name, options, base);
  const fail = (err: unknown) => {
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  };
  let result: T;
  try {
    result = context.with(trace.setSpan(base, span), () => fn(span));
  } catch (err) {
    fail(err);
    span.end();
    throw err;
  }
  if (result instanceof Promise) {
    return result.then((v) => {
      span.end();
      return v;
    }, (err) => {
      fail(err);
      span.end();
      throw err;
    }) as T;
  }
  span.end();
  return result;
}

let fixedIds: { traceId: string; spanId: string } | undefined;

/**
 * Starts a root span with the given ids (32 and 16 lowercase hex digits): a span that a restarted process
 * must be able to open again under the same identity. A no-op tracer ignores them.
 */
export function startSpanWithIds(name: string, options: SpanOptions, ids: { traceId: string; spanId: string }): Span {
  fixedIds = ids;
  try {
    return tracer().startSpan(name, { ...options, root: true }, ROOT_CONTEXT);
  } finally {
    fixedIds = undefined;
  }
}

/** Marks a span as failed with a message. */
export function failSpan(span: Span, message: string): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message });
}

// ---- propagation ----------------------------------------------------------------------------------------

export type TraceCarrier = Record<string, string>;

/** The W3C trace context of `ctx` (by default the active one) as a string map; empty when telemetry is off. */
export function injectCarrier(ctx: Context = context.active()): TraceCarrier {
  const carrier: TraceCarrier = {};
  propagation.inject(ctx, carrier);
  return carrier;
}

/** The remote parent a carrier names, or undefined when it names none (or telemetry is off). */
export function extractCarrier(carrier: TraceCarrier | undefined): Context | undefined {
  if (!carrier || Object.keys(carrier).length === 0) return undefined;
  const ctx = propagation.extract(ROOT_CONTEXT, carrier);
  const sc = trace.getSpanContext(ctx);
  return sc && isSpanContextValid(sc) ? ctx : undefined;
}

/** The active span's trace and span ids, for log lines; undefined when no recording span is active. */
export function activeTraceIds(): { trace_id: string; span_id: string } | undefined {
  const sc = trace.getActiveSpan()?.spanContext();
  return sc && isSpanContextValid(sc) ? { trace_id: sc.traceId, span_id: sc.spanId } : undefined;
}

// ---- metrics --------------------------------------------------------------------------------------------

/** The instruments every process shares (the observable gauges are registered by their owners). */
export interface Instruments {
  /** fedsynth.round.duration: a round from its start to its aggregation (or abort), in seconds. */
  roundDuration: Histogram;
  /** fedsynth.transfer.bytes: payload bytes of results, secure-aggregation messages and models. */
  transferBytes: Counter;
}

export function instruments(): Instruments {
  if (instrumentsMemo) return instrumentsMemo;
  const m = meter();
  const made: Instruments = {
    roundDuration: m.createHistogram("fedsynth.round.duration", {
      unit: "s", description: "Duration of a federated round, from its start to its aggregation or abort",
      advice: { explicitBucketBoundaries: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200] },
    }),
    transferBytes: m.createCounter("fedsynth.transfer.bytes", {
      unit: "By", description: "Payload bytes moved between the coordinator and the sites (results, secure-aggregation messages, models)",
    }),
  };
  // Instruments made while telemetry is off are no-ops: only keep them once it is on.
  if (running) instrumentsMemo = made;
  return made;
}

/** Attribute values for fedsynth.transfer.bytes. */
export type TransferDirection = "transmit" | "receive";
export type TransferKind = "result" | "secagg" | "model";

export function countTransfer(direction: TransferDirection, kind: TransferKind, bytes: number, attributes: Record<string, string> = {}): void {
  if (!running || bytes <= 0) return;
  instruments().transferBytes.add(bytes, { "network.io.direction": direction, "fedsynth.transfer.kind": kind, ...attributes });
}

/** A diagnostic argument in a few words: an error's message, not its stack. */
function describe(a: unknown): string {
  if (typeof a === "string") return a;
  if (a && typeof a === "object" && typeof (a as { message?: unknown }).message === "string") return (a as { message: string }).message;
  try {
    return JSON.stringify(a);
  } catch {
    return String(a);
  }
}

function positiveInt(text: string | undefined, fallback: number): number {
  const n = Number(text);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}
