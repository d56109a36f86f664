/**
 * How the report writes numbers, times, keys and mechanisms for people. Times are UTC, always said so:
 * the ledger's times are the coordinator's clock, and a reader in another time zone must not have to
 * guess which clock a row means.
 */
import { createHash } from "node:crypto";
import type { Mechanism } from "../../privacy/mechanism.js";
import { decodeBase64Strict } from "../base64.js";

/** Beyond this a millisecond count is not a Date (the ledger may record one, if it fails verification). */
const MAX_DATE_MS = 8.64e15;

/** "2026-03-01 00:01:00 UTC". */
export function formatTime(at: number): string {
  if (!(Math.abs(at) <= MAX_DATE_MS)) return `${at} ms after 1970`;
  return new Date(at).toISOString().replace("T", " ").replace(/\.000Z$|Z$/, "") + " UTC";
}

/** Enough digits to compare with a budget by eye; the ledger keeps the exact value. */
export function formatEpsilon(epsilon: number | null): string {
  if (epsilon === null || !Number.isFinite(epsilon)) return "—";
  if (epsilon === 0) return "0";
  return String(Number(epsilon.toPrecision(5)));
}

/** Deltas are tiny; written as the study wrote them (1e-5), not as 0.00001. */
export function formatDelta(delta: number): string {
  return delta < 1e-3 ? delta.toExponential() : String(delta);
}

/**
 * A short, comparable name for the coordinator's key: SHA-256 of its 32 raw bytes, in groups of four
 * hex digits, so that a reader can check it against the one the coordinator's operator publishes.
 */
export function keyFingerprint(publicKeyBase64: string): string {
  const bytes = decodeBase64Strict(publicKeyBase64, 32);
  if (!bytes) return "not a 32-byte Ed25519 key";
  const hex = createHash("sha256").update(bytes).digest("hex");
  return "SHA-256 " + (hex.match(/.{4}/g) ?? []).join(" ");
}

/** One mechanism in words, with the parameters its epsilon depends on. */
export function describeMechanism(m: Mechanism): string {
  switch (m.kind) {
    case "gaussian":
      return `Gaussian noise σ=${num(m.sigma)}, L2 sensitivity ${num(m.l2Sensitivity)}${times(m.repetitions)}`;
    case "subsampled-gaussian":
      return `DP-SGD: ${m.steps} steps, sampling rate ${num(m.samplingRate)}, noise multiplier ${num(m.noiseMultiplier)}, clip norm ${num(m.clipNorm)}`;
    case "distributed-discrete-gaussian":
      return `secure-aggregation discrete Gaussian σ=${num(m.sigma)} per site, ≥${m.sites} sites, sensitivity ${num(m.l2Sensitivity)}, ${m.dimension} coordinates${times(m.repetitions)}`;
    default:
      return `unknown mechanism ${JSON.stringify((m as { kind?: unknown }).kind)}`;
  }
}

export function describeMechanisms(ms: readonly Mechanism[]): string {
  return ms.length === 0 ? "no mechanism" : ms.map(describeMechanism).join("; ");
}

function num(x: number): string {
  return String(Number(x.toPrecision(6)));
}

function times(repetitions: number): string {
  return repetitions === 1 ? "" : ` ×${repetitions}`;
}
