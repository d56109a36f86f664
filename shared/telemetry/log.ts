/**
 * Line-oriented logs: one line per event with a timestamp, the component and key=value fields, or one JSON
 * object per line with FEDSYNTH_LOG_FORMAT=json (for log shippers). A JSON line written while an
 * OpenTelemetry span is active carries its trace_id and span_id (only when telemetry is on: otel.ts).
 */
import { activeTraceIds } from "./otel.js";

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(component: string): Logger;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(component: string, opts: { level?: LogLevel; json?: boolean; write?: (line: string) => void } = {}): Logger {
  const level = opts.level ?? ((process.env.FEDSYNTH_LOG_LEVEL as LogLevel | undefined) ?? "info");
  const json = opts.json ?? process.env.FEDSYNTH_LOG_FORMAT === "json";
  const write = opts.write ?? ((line: string) => process.stderr.write(line + "\n"));
  const emit = (lvl: LogLevel, message: string, fields?: LogFields) => {
    if (ORDER[lvl] < ORDER[level]) return;
    const time = new Date().toISOString();
    if (json) {
      write(JSON.stringify({ time, level: lvl, component, message, ...activeTraceIds(), ...fields }));
      return;
    }
    const extra = fields
      ? Object.entries(fields).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${formatValue(v)}`).join(" ")
      : "";
    write(`${time} ${lvl.toUpperCase().padEnd(5)} ${component}: ${message}${extra ? " " + extra : ""}`);
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (c) => createLogger(`${component}/${c}`, { level, json, write }),
  };
}

function formatValue(v: unknown): string {
  const s = String(v);
  return /[\s"=]/.test(s) ? JSON.stringify(s) : s;
}
