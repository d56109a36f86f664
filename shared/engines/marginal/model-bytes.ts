/**
 * The marginal engine's model file: the released noisy sums of every round as received (the auditable
 * statistics) with their round configs; the fitted model is recomputed from them on reading, so the file
 * carries nothing but released values.
 *
 *   "FSMG" | u32 version | u32 header bytes | header JSON | f64 × (Σ lengths), little-endian
 *   header: { columns: [name, cells][], rounds: [{ roundConfig, contributors, length }] }
 * A round config is the round's whole public plan (round-plan.ts: its tables, 3-way tables, groups and
 * weights), so that reading a model lays every round's sum out as it was measured.
 */
import type { JsonObject } from "../engine.js";
import type { Schema } from "../../schema/schema.js";
import type { HistogramLayout } from "../independent/histogram.js";
import { invalid } from "./config.js";

const MAGIC = [0x46, 0x53, 0x4d, 0x47];
/** 2: the AIM-style engine's rounds (version 1 held the tree engine's, which this build does not read). */
export const MODEL_FORMAT_VERSION = 2;

export interface RoundRecord {
  roundConfig: JsonObject;
  contributors: number;
  sum: Float64Array;
}

export function encodeRounds(schema: Schema, layout: HistogramLayout, rounds: readonly RoundRecord[]): Uint8Array {
  const header = Buffer.from(
    JSON.stringify({
      columns: schema.columns.map((c, j) => [c.name, layout.sizes[j]]),
      rounds: rounds.map((r) => ({ roundConfig: r.roundConfig, contributors: r.contributors, length: r.sum.length })),
    }),
    "utf8",
  );
  const values = rounds.reduce((n, r) => n + r.sum.length, 0);
  const bytes = new Uint8Array(12 + header.length + 8 * values);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC, 0);
  view.setUint32(4, MODEL_FORMAT_VERSION, true);
  view.setUint32(8, header.length, true);
  bytes.set(header, 12);
  let pos = 12 + header.length;
  for (const r of rounds) for (let i = 0; i < r.sum.length; i++, pos += 8) view.setFloat64(pos, r.sum[i], true);
  return bytes;
}

export function decodeRounds(bytes: Uint8Array, schema: Schema, layout: HistogramLayout): RoundRecord[] {
  const bad = (why: string) => invalid(`Cannot read the marginal engine's model: ${why}`, "The model bytes are damaged or belong to another engine, schema or version.");
  if (!(bytes instanceof Uint8Array)) throw bad("not a byte array");
  if (bytes.length < 12) throw bad(`only ${bytes.length} bytes`);
  for (let i = 0; i < MAGIC.length; i++) if (bytes[i] !== MAGIC[i]) throw bad("wrong format marker");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(4, true);
  if (version !== MODEL_FORMAT_VERSION) throw bad(`unsupported format version ${version} (this version reads ${MODEL_FORMAT_VERSION})`);
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
  if (pos !== bytes.length) throw bad(`${bytes.length - pos} bytes beyond its rounds`);
  return rounds;
}
