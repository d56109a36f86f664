/**
 * The marginal engine's model file: the released noisy sums of every round as received (the auditable
 * statistics) with their round configs, and — from version 3 — the model fitted to them, so that reading a
 * model and sampling it does not fit it again (fitted-bytes.ts holds that section's layout).
 *
 *   "FSMG" | u32 version | u32 header bytes | header JSON | f64 × (Σ lengths) | u32 fit bytes | fit section
 *   header: { columns: [name, cells][], rounds: [{ roundConfig, contributors, length }] }
 * little-endian. A round config is the round's whole public plan (round-plan.ts: its tables, 3-way tables,
 * groups and weights), so that reading a model lays every round's sum out as it was measured.
 *
 * Fit bytes 0: no fit stored, and the model is fitted from the sums when first needed. The coordinator's
 * models are so (engine.ts serialize never fits): they are what it releases, and the privacy ledger records
 * their SHA-256. A model file (`fedsynth model export`, engine.ts serializeForSampling) stores the fit; it
 * is post-processing of the sums and nothing else, deterministic (fit-check.ts recomputes it), so it adds
 * nothing an auditor must trust, and releasedModel gives back the released bytes to check against the ledger.
 *
 * Version 2 is version 3 up to the sums and ends there; it is still read (and fitted when needed).
 */
import type { JsonObject } from "../engine.js";
import type { Schema } from "../../schema/schema.js";
import type { HistogramLayout } from "../independent/histogram.js";
import type { FedsynthError } from "../../errors.js";
import { invalid } from "./config.js";

const MAGIC = [0x46, 0x53, 0x4d, 0x47];
/** 3: the sums and the fitted model; 2: the sums only (version 1 held the tree engine's rounds, which this build does not read). */
export const MODEL_FORMAT_VERSION = 3;
const READS = [2, 3];

export interface RoundRecord {
  roundConfig: JsonObject;
  contributors: number;
  sum: Float64Array;
}

export interface ModelFile {
  version: number;
  rounds: RoundRecord[];
  /** The fit section (fitted-bytes.ts), when the file stores one. */
  fit?: Uint8Array;
  /** Where the sums end (the fit's length follows, in version 3). */
  sumsEnd: number;
}

/** The error of every unreadable model file: what is wrong, and that the bytes are not this model's. */
export function unreadable(why: string): FedsynthError {
  return invalid(`Cannot read the marginal engine's model: ${why}`, "The model bytes are damaged or belong to another engine, schema or version.");
}

/** A version-3 file of these rounds, with the fit section `fit` (fitted-bytes.ts encodeFit) when given. */
export function encodeModel(schema: Schema, layout: HistogramLayout, rounds: readonly RoundRecord[], fit?: Uint8Array): Uint8Array {
  const header = Buffer.from(
    JSON.stringify({
      columns: schema.columns.map((c, j) => [c.name, layout.sizes[j]]),
      rounds: rounds.map((r) => ({ roundConfig: r.roundConfig, contributors: r.contributors, length: r.sum.length })),
    }),
    "utf8",
  );
  const values = rounds.reduce((n, r) => n + r.sum.length, 0);
  const fitBytes = fit?.length ?? 0;
  const bytes = new Uint8Array(12 + header.length + 8 * values + 4 + fitBytes);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC, 0);
  view.setUint32(4, MODEL_FORMAT_VERSION, true);
  view.setUint32(8, header.length, true);
  bytes.set(header, 12);
  let pos = 12 + header.length;
  for (const r of rounds) for (let i = 0; i < r.sum.length; i++, pos += 8) view.setFloat64(pos, r.sum[i], true);
  view.setUint32(pos, fitBytes, true);
  if (fit) bytes.set(fit, pos + 4);
  return bytes;
}

/** The rounds (checked against the schema's columns) and the raw fit section of a version-2 or -3 file. */
export function decodeModel(bytes: Uint8Array, schema: Schema, layout: HistogramLayout): ModelFile {
  const bad = unreadable;
  if (!(bytes instanceof Uint8Array)) throw bad("not a byte array");
  if (bytes.length < 12) throw bad(`only ${bytes.length} bytes`);
  for (let i = 0; i < MAGIC.length; i++) if (bytes[i] !== MAGIC[i]) throw bad("wrong format marker");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(4, true);
  if (!READS.includes(version)) throw bad(`unsupported format version ${version} (this version reads ${READS.join(" and ")})`);
  const headerBytes = view.getUint32(8, true);
  if (12 + headerBytes > bytes.length) throw bad("truncated header");
  let header: { columns?: unknown; rounds?: unknown };
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 12, headerBytes).toString("utf8"));
  } catch {
    throw bad("its header is not valid JSON");
  }
  const columns = header.columns;
  if (!Array.isArray(columns) || columns.length !== schema.columns.length) {
    throw bad(`it has ${Array.isArray(columns) ? columns.length : "no"} columns, the schema ${schema.columns.length} (a model of another schema)`);
  }
  schema.columns.forEach((c, j) => {
    const [name, cells] = columns[j] as [unknown, unknown];
    if (name !== c.name || cells !== layout.sizes[j]) throw bad(`column ${j + 1} is '${String(name)}' with ${String(cells)} cells, the schema's '${c.name}' has ${layout.sizes[j]} (a model of another schema)`);
  });
  if (!Array.isArray(header.rounds)) throw bad("no rounds in its header");
  const rounds: RoundRecord[] = [];
  let pos = 12 + headerBytes;
  for (const [r, raw] of (header.rounds as { roundConfig?: unknown; contributors?: unknown; length?: unknown }[]).entries()) {
    const { roundConfig, contributors, length } = raw ?? {};
    if (!roundConfig || typeof roundConfig !== "object" || Array.isArray(roundConfig)) throw bad(`round ${r + 1} has no round config`);
    if (!Number.isSafeInteger(contributors) || (contributors as number) < 1) throw bad(`round ${r + 1} has an invalid number of contributors`);
    if (!Number.isSafeInteger(length) || (length as number) < 1) throw bad(`round ${r + 1} has an invalid length`);
    if (pos + 8 * (length as number) > bytes.length) throw bad("truncated");
    const sum = new Float64Array(length as number);
    for (let i = 0; i < sum.length; i++, pos += 8) {
      sum[i] = view.getFloat64(pos, true);
      if (!Number.isFinite(sum[i])) throw bad(`round ${r + 1} holds a non-finite value`);
    }
    rounds.push({ roundConfig: roundConfig as JsonObject, contributors: contributors as number, sum });
  }
  if (version === 2) {
    if (pos !== bytes.length) throw bad(`${bytes.length - pos} bytes beyond its rounds`);
    return { version, rounds, sumsEnd: pos };
  }
  const sumsEnd = pos;
  if (pos + 4 > bytes.length) throw bad("truncated (no fit length after its rounds)");
  const fitBytes = view.getUint32(pos, true);
  pos += 4;
  if (pos + fitBytes > bytes.length) throw bad(`truncated (its fit has ${bytes.length - pos} of its ${fitBytes} bytes)`);
  if (pos + fitBytes !== bytes.length) throw bad(`${bytes.length - pos - fitBytes} bytes beyond its fit`);
  return { version, rounds, fit: fitBytes > 0 ? bytes.subarray(pos, pos + fitBytes) : undefined, sumsEnd };
}

/**
 * The model as the coordinator released it (the bytes whose SHA-256 the privacy ledger records): a
 * version-3 file without its fit, or a version-2 file as it is. Checks what it reads.
 */
export function releasedModel(bytes: Uint8Array, schema: Schema, layout: HistogramLayout): Uint8Array {
  const { version, sumsEnd } = decodeModel(bytes, schema, layout);
  if (version === 2) return bytes.slice();
  const out = new Uint8Array(sumsEnd + 4);
  out.set(bytes.subarray(0, sumsEnd));
  return out;
}
