import { describe, expect, it } from "vitest";
import { telemetryPlan } from "./otel.js";

describe("telemetryPlan: the standard OTEL_* variables decide whether anything is exported", () => {
  it("is off with no endpoint, whatever else is set", () => {
    expect(telemetryPlan({})).toBeNull();
    expect(telemetryPlan({ OTEL_SERVICE_NAME: "x", OTEL_EXPORTER_OTLP_PROTOCOL: "http/json", OTEL_TRACES_EXPORTER: "otlp" })).toBeNull();
  });

  it("exports both signals over http/protobuf by default when OTEL_EXPORTER_OTLP_ENDPOINT is set", () => {
    expect(telemetryPlan({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" })).toEqual({ traces: "http/protobuf", metrics: "http/protobuf", warnings: [] });
  });

  it("takes a signal's own endpoint and protocol", () => {
    expect(telemetryPlan({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c/v1/traces", OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/json" }))
      .toEqual({ traces: "http/json", metrics: null, warnings: [] });
    expect(telemetryPlan({ OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "http://c/v1/metrics", OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" }))
      .toEqual({ traces: null, metrics: "http/json", warnings: [] });
  });

  it("is off with OTEL_SDK_DISABLED=true, and a signal is off with its exporter set to none", () => {
    expect(telemetryPlan({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c", OTEL_SDK_DISABLED: "TRUE" })).toBeNull();
    expect(telemetryPlan({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c", OTEL_SDK_DISABLED: "false" })?.traces).toBe("http/protobuf");
    expect(telemetryPlan({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c", OTEL_METRICS_EXPORTER: "none" })).toEqual({ traces: "http/protobuf", metrics: null, warnings: [] });
    expect(telemetryPlan({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c", OTEL_METRICS_EXPORTER: "none", OTEL_TRACES_EXPORTER: "none" })).toBeNull();
  });

  it("says so, and falls back to http/protobuf, for the grpc protocol", () => {
    const plan = telemetryPlan({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4317", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" });
    expect(plan?.traces).toBe("http/protobuf");
    expect(plan?.warnings.join("\n")).toMatch(/"grpc" is not supported/);
  });
});
