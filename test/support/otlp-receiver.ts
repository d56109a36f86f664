/**
 * A small OTLP/HTTP receiver on loopback for the telemetry tests: it takes http/json export requests (and
 * counts any other request it gets), answers 200, and flattens what it got into spans and data points.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import { gunzipSync } from "node:zlib";
import type { AddressInfo } from "node:net";

export type Attributes = Record<string, string | number | boolean>;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Attributes;
  resource: Attributes;
  links: { traceId: string; spanId: string }[];
}

export interface ReceivedPoint {
  metric: string;
  type: "gauge" | "sum" | "histogram" | "other";
  /** Gauge and sum: the value; histogram: the sum of observations. */
  value: number;
  /** Histogram: the number of observations. */
  count: number;
  attributes: Attributes;
  resource: Attributes;
  timeUnixNano: bigint;
}

export interface OtlpReceiver {
  /** http://127.0.0.1:PORT, for OTEL_EXPORTER_OTLP_ENDPOINT. */
  endpoint: string;
  /** Every request, whatever its path or content type. */
  requests: { path: string; contentType: string }[];
  spans: ReceivedSpan[];
  points: ReceivedPoint[];
  /** Bodies the receiver could not read (a test fails on any). */
  errors: string[];
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const receiver: Omit<OtlpReceiver, "endpoint" | "close"> = { requests: [], spans: [], points: [], errors: [] };
  const server: Server = createServer((req, res) => {
    void readBody(req).then((body) => {
      const path = req.url ?? "";
      const contentType = String(req.headers["content-type"] ?? "");
      receiver.requests.push({ path, contentType });
      try {
        if (!contentType.includes("json")) throw new Error(`content type ${contentType} (the tests export http/json)`);
        const json = JSON.parse(body.toString("utf8"));
        if (path === "/v1/traces") receiver.spans.push(...flattenSpans(json));
        else if (path === "/v1/metrics") receiver.points.push(...flattenMetrics(json));
      } catch (err) {
        receiver.errors.push(`${path}: ${(err as Error).message}`);
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    ...receiver,
    endpoint: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  } as OtlpReceiver;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of req) parts.push(chunk as Buffer);
  const body = Buffer.concat(parts);
  return req.headers["content-encoding"] === "gzip" ? gunzipSync(body) : body;
}

function anyValue(v: any): string | number | boolean {
  if (v == null) return "";
  if ("stringValue" in v) return v.stringValue;
  if ("intValue" in v) return Number(v.intValue);
  if ("doubleValue" in v) return Number(v.doubleValue);
  if ("boolValue" in v) return Boolean(v.boolValue);
  return JSON.stringify(v);
}

function attributes(list: any[] | undefined): Attributes {
  const out: Attributes = {};
  for (const a of list ?? []) out[a.key] = anyValue(a.value);
  return out;
}

function flattenSpans(json: any): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of json.resourceSpans ?? []) {
    const resource = attributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId ?? "", name: s.name, kind: s.kind ?? 0,
          attributes: attributes(s.attributes), resource, links: (s.links ?? []).map((l: any) => ({ traceId: l.traceId, spanId: l.spanId })),
        });
      }
    }
  }
  return out;
}

function flattenMetrics(json: any): ReceivedPoint[] {
  const out: ReceivedPoint[] = [];
  for (const rm of json.resourceMetrics ?? []) {
    const resource = attributes(rm.resource?.attributes);
    for (const sm of rm.scopeMetrics ?? []) {
      for (const m of sm.metrics ?? []) {
        const type = m.gauge ? "gauge" : m.sum ? "sum" : m.histogram ? "histogram" : "other";
        const points = (m.gauge ?? m.sum ?? m.histogram)?.dataPoints ?? [];
        for (const p of points) {
          out.push({
            metric: m.name, type,
            value: type === "histogram" ? Number(p.sum ?? 0) : Number(p.asDouble ?? p.asInt ?? 0),
            count: type === "histogram" ? Number(p.count ?? 0) : 0,
            attributes: attributes(p.attributes), resource, timeUnixNano: BigInt(p.timeUnixNano ?? 0),
          });
        }
      }
    }
  }
  return out;
}
