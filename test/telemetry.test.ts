/**
 * OpenTelemetry across real processes: `fedsynth simulate` with three sites (secure aggregation on, its
 * default for three) exports to an OTLP/HTTP receiver started here. Each round is one trace holding the
 * coordinator's round span and spans from every site process; the metrics arrive with each site's epsilon
 * as the run's summary has it; JSON logs carry the trace ids. Without OTEL_* variables nothing is sent.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { EXAMPLES, runCli, tempDir, type CliResult } from "./support/cli.js";
import { startOtlpReceiver, type OtlpReceiver, type ReceivedPoint, type ReceivedSpan } from "./support/otlp-receiver.js";

const SITES = ["cleveland", "hungary", "va"];

/** This process's environment without any OTEL_* variable (a developer's shell or CI may set some). */
function envWithoutOtel(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("OTEL_")) env[k] = v;
  return { ...env, ...extra };
}

function simulateArgs(dir: string, rounds: number): string[] {
  return [
    "simulate", "--schema", join(EXAMPLES, "schema.json"), ...SITES.flatMap((s) => ["--site", `${s}=${join(EXAMPLES, `${s}.csv`)}`]),
    "--engine", "independent", "--epsilon", "1", "--rounds", String(rounds), "--rows", "200", "--seed", "1", "--quiet",
    "--out", join(dir, "synthetic.csv"), "--summary", join(dir, "summary.json"), "--workdir", join(dir, "work"),
  ];
}

/** Every JSON line of every process's log in the work directory, by log name (coordinator, NAME). */
function jsonLogs(dir: string): Map<string, any[]> {
  const logs = new Map<string, any[]>();
  for (const file of readdirSync(join(dir, "work", "logs"))) {
    const lines = readFileSync(join(dir, "work", "logs", file), "utf8").split("\n").filter((l) => l.startsWith("{"));
    logs.set(file.replace(/\.log$/, ""), lines.map((l) => JSON.parse(l)));
  }
  return logs;
}

describe("telemetry exported over OTLP/HTTP (http/json) from a real three-site run", () => {
  const dir = tempDir("fedsynth-obs-");
  let receiver: OtlpReceiver;
  let result: CliResult;
  let summary: any;
  let rounds: ReceivedSpan[];

  const coordinatorSpans = () => receiver.spans.filter((s) => s.resource["service.name"] === "fedsynth-coordinator");
  const siteSpans = (site: string) => receiver.spans.filter((s) => s.resource["fedsynth.site.name"] === site);
  const points = (metric: string, filter: (p: ReceivedPoint) => boolean = () => true) => receiver.points.filter((p) => p.metric === metric && filter(p));

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    result = await runCli(simulateArgs(dir, 2), {
      timeoutMs: 170_000,
      env: envWithoutOtel({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json", FEDSYNTH_LOG_FORMAT: "json" }),
    });
    // Every process flushes its telemetry before it exits, and simulate exits after all of them.
    if (result.code === 0) summary = JSON.parse(readFileSync(join(dir, "summary.json"), "utf8"));
    rounds = coordinatorSpans().filter((s) => s.name === "fedsynth.round").sort((a, b) => Number(a.attributes["fedsynth.round"]) - Number(b.attributes["fedsynth.round"]));
  }, 180_000);

  afterAll(async () => {
    await receiver?.close();
  });

  it("completes the study with secure aggregation, and the receiver reads every request it gets", () => {
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(summary.secureThreshold).toBeGreaterThan(0);
    expect(receiver.errors).toEqual([]);
    expect(receiver.requests.map((r) => r.path)).toEqual(expect.arrayContaining(["/v1/traces", "/v1/metrics"]));
  });

  it("makes one trace per round, rooted at the coordinator's round span, that every span of the round belongs to", () => {
    expect(rounds.map((s) => s.attributes["fedsynth.round"])).toEqual([1, 2]);
    expect(new Set(rounds.map((s) => s.traceId)).size).toBe(2);
    for (const round of rounds) {
      expect(round.parentSpanId).toBe("");
      expect(round.attributes["fedsynth.study.id"]).toBe(summary.studyId);
      expect(round.attributes["fedsynth.round.outcome"]).toBe("aggregated");
      const ofRound = receiver.spans.filter((s) => s.attributes["fedsynth.round"] === round.attributes["fedsynth.round"]);
      expect(new Set(ofRound.map((s) => s.traceId))).toEqual(new Set([round.traceId]));
    }
  });

  it("has spans from every site process in each round's trace: the task under the round span, local training and masking under the task", () => {
    for (const round of rounds) {
      for (const site of SITES) {
        const mine = siteSpans(site).filter((s) => s.traceId === round.traceId);
        expect(mine.length, `${site} in round ${round.attributes["fedsynth.round"]}`).toBeGreaterThan(0);
        expect(new Set(mine.map((s) => s.resource["service.name"]))).toEqual(new Set(["fedsynth-site"]));
        const tasks = mine.filter((s) => s.name === "fedsynth.site.task");
        expect(tasks).toHaveLength(1);
        expect(tasks[0].parentSpanId).toBe(round.spanId);
        const training = mine.filter((s) => s.name === "fedsynth.local_training");
        expect(training).toHaveLength(1);
        expect(training[0].parentSpanId).toBe(tasks[0].spanId);
        const masking = mine.filter((s) => s.name === "fedsynth.masking");
        expect(masking).toHaveLength(1);
        expect(masking[0].parentSpanId).toBe(tasks[0].spanId);
      }
    }
  });

  it("parents the coordinator's aggregation span on the round span, and what a site sent on that site's span", () => {
    const byId = new Map(receiver.spans.map((s) => [s.spanId, s]));
    for (const round of rounds) {
      const aggregation = coordinatorSpans().filter((s) => s.name === "fedsynth.aggregation" && s.traceId === round.traceId);
      expect(aggregation).toHaveLength(1);
      expect(aggregation[0].parentSpanId).toBe(round.spanId);
      const masked = coordinatorSpans().filter((s) => s.name === "fedsynth.receive masked input" && s.traceId === round.traceId);
      expect(masked.map((s) => s.attributes["fedsynth.site.name"]).sort()).toEqual([...SITES].sort());
      for (const s of masked) {
        const parent = byId.get(s.parentSpanId);
        expect(parent?.resource["fedsynth.site.name"]).toBe(s.attributes["fedsynth.site.name"]);
      }
    }
  });

  it("has a sampling span from the process that sampled the pooled model", () => {
    const sampling = receiver.spans.filter((s) => s.name === "fedsynth.sampling");
    expect(sampling).toHaveLength(1);
    expect(sampling[0].resource["fedsynth.command"]).toBe("simulate");
    expect(sampling[0].attributes["fedsynth.study.id"]).toBe(summary.studyId);
    expect(sampling[0].attributes["fedsynth.rows"]).toBe(200);
  });

  it("exports round duration, bytes transferred, sites connected and the epsilon each site was charged, as the summary says", () => {
    const fromCoordinator = (p: ReceivedPoint) => p.resource["service.name"] === "fedsynth-coordinator";
    const durations = points("fedsynth.round.duration", (p) => fromCoordinator(p) && p.attributes["fedsynth.round.outcome"] === "aggregated");
    expect(Math.max(...durations.map((p) => p.count))).toBe(2);
    expect(Math.min(...durations.map((p) => p.value))).toBeGreaterThan(0);

    expect(Math.max(...points("fedsynth.sites.connected", fromCoordinator).map((p) => p.value))).toBe(SITES.length);

    const bytes = (service: (p: ReceivedPoint) => boolean, direction: string, kind: string) =>
      Math.max(0, ...points("fedsynth.transfer.bytes", (p) => service(p) && p.attributes["network.io.direction"] === direction && p.attributes["fedsynth.transfer.kind"] === kind).map((p) => p.value));
    expect(bytes(fromCoordinator, "receive", "secagg")).toBeGreaterThan(0);
    expect(bytes(fromCoordinator, "transmit", "secagg")).toBeGreaterThan(0);
    for (const site of SITES) {
      const fromSite = (p: ReceivedPoint) => p.resource["fedsynth.site.name"] === site;
      expect(bytes(fromSite, "transmit", "secagg"), site).toBeGreaterThan(0);
      expect(bytes(fromSite, "receive", "secagg"), site).toBeGreaterThan(0);
    }

    // The latest epsilon per site, as the coordinator's ledger and the site's own have it.
    const latest = (filter: (p: ReceivedPoint) => boolean) => {
      const ps = points("fedsynth.privacy.epsilon_spent", (p) => filter(p) && p.attributes["fedsynth.study.id"] === summary.studyId);
      return ps.reduce<ReceivedPoint | undefined>((a, p) => (!a || p.timeUnixNano >= a.timeUnixNano ? p : a), undefined)?.value;
    };
    for (const site of SITES) {
      const charged = summary.sites[site].epsilon;
      expect(charged).toBeGreaterThan(0);
      expect(latest((p) => fromCoordinator(p) && p.attributes["fedsynth.site.name"] === site)).toBeCloseTo(charged, 9);
      expect(latest((p) => p.resource["fedsynth.site.name"] === site)).toBeCloseTo(charged, 9);
    }
  });

  it("writes JSON log lines that carry the round's trace id, at the coordinator and at every site", () => {
    const logs = jsonLogs(dir);
    expect([...logs.keys()].sort()).toEqual(["coordinator", ...SITES].sort());
    const traceIds = new Set(rounds.map((r) => r.traceId));
    for (const round of rounds) {
      const aggregated = logs.get("coordinator")!.filter((l) => l.message === "round aggregated" && l.round === round.attributes["fedsynth.round"]);
      expect(aggregated).toHaveLength(1);
      expect(aggregated[0].trace_id).toBe(round.traceId);
      expect(aggregated[0].span_id).toMatch(/^[0-9a-f]{16}$/);
      for (const site of SITES) {
        const traced = logs.get(site)!.filter((l) => l.trace_id === round.traceId);
        expect(traced.length, `${site} log lines in round ${round.attributes["fedsynth.round"]}`).toBeGreaterThan(0);
      }
    }
    // A trace id in a log line is always one that was exported.
    const exported = new Set(receiver.spans.map((s) => s.traceId));
    for (const lines of logs.values()) for (const l of lines) if (l.trace_id) expect(exported.has(l.trace_id) || traceIds.has(l.trace_id)).toBe(true);
  });
});

describe("telemetry without OTEL_* variables", () => {
  const dir = tempDir("fedsynth-obs-off-");
  let receiver: OtlpReceiver;
  let result: CliResult;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    // The receiver listens, but nothing tells the processes about it.
    result = await runCli(simulateArgs(dir, 1), { timeoutMs: 170_000, env: envWithoutOtel({ FEDSYNTH_LOG_FORMAT: "json" }) });
  }, 180_000);

  afterAll(async () => {
    await receiver?.close();
  });

  it("completes the run, sends nothing anywhere, and logs neither telemetry errors nor trace ids", () => {
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(receiver.requests).toEqual([]);
    const logs = jsonLogs(dir);
    expect([...logs.keys()].sort()).toEqual(["coordinator", ...SITES].sort());
    for (const [name, lines] of logs) {
      expect(lines.length, name).toBeGreaterThan(0);
      for (const l of lines) {
        expect(JSON.stringify(l)).not.toMatch(/opentelemetry|otlp|telemetry/i);
        expect(l.trace_id).toBeUndefined();
        expect(l.span_id).toBeUndefined();
      }
    }
    for (const file of readdirSync(join(dir, "work", "logs"))) {
      expect(readFileSync(join(dir, "work", "logs", file), "utf8")).not.toMatch(/opentelemetry|otlp|telemetry/i);
    }
  });
});
