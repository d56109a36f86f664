/**
 * Axes for the spend charts: a linear map from data to drawing units, and tick values a person reads
 * at a glance (0, 0.5, 1, 1.5 rather than 0, 0.437, 0.874).
 */
import { formatTime } from "./format.js";

export interface Scale {
  (value: number): number;
  ticks: number[];
  label(value: number): string;
}

/** Linear from [lo, hi] onto [from, to] (to may be below from: SVG's y grows downwards). */
function linear(lo: number, hi: number, from: number, to: number): (v: number) => number {
  const span = hi - lo || 1;
  return (v) => from + ((v - lo) / span) * (to - from);
}

/** 1, 2 or 5 times a power of ten: the step nearest `rough` from above. */
export function niceStep(rough: number): number {
  if (!(rough > 0) || !Number.isFinite(rough)) return 1;
  const power = 10 ** Math.floor(Math.log10(rough));
  const m = rough / power;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * power;
}

/** Epsilon from 0 to a little above `max`, about five ticks. */
export function epsilonScale(max: number, from: number, to: number): Scale {
  const step = niceStep((max > 0 ? max : 1) / 5);
  const top = Math.ceil(((max > 0 ? max : 1) * 1.05) / step) * step;
  const map = linear(0, top, from, to) as Scale;
  map.ticks = [];
  for (let i = 0; i * step <= top * (1 + 1e-9); i++) map.ticks.push(Number((i * step).toPrecision(12)));
  map.label = (v) => String(v);
  return map;
}

/** Time from `t0` to `t1` (ms), five ticks, labelled as finely as the span needs. */
export function timeScale(t0: number, t1: number, from: number, to: number): Scale {
  const end = t1 > t0 ? t1 : t0 + 60_000;
  const map = linear(t0, end, from, to) as Scale;
  map.ticks = Array.from({ length: 5 }, (_, i) => t0 + ((end - t0) * i) / 4);
  const span = end - t0;
  // "2026-03-01 00:01:00 UTC" cut to what differs between ticks.
  map.label = (v) => {
    const full = formatTime(Math.round(v));
    if (!full.endsWith(" UTC")) return full;
    if (span >= 3 * 86_400_000) return full.slice(0, 10);
    if (span >= 3_600_000) return full.slice(5, 16);
    return full.slice(11, 19);
  };
  return map;
}
