/**
 * `fedsynth model verify`: an auditor's check of a model file, without a coordinator. The file must read
 * whole (its hash, then every value the engine reads); whatever the export added for sampling must be what
 * the released bytes imply (the marginal engine's stored fit, refitted and compared), since `fedsynth
 * sample` trusts it; and, given the study's ledger export, the released bytes must be the ones the ledger's
 * release entry for that study and round hashes — which ties the rows anyone samples to the charges the
 * ledger proves.
 */
import { existsSync, readFileSync } from "node:fs";
import { readModelFile } from "./model-file-read.js";
import type { SamplingDataCheck, StudyPrivacy } from "../shared/engines/engine.js";
import { sha256Hex } from "../shared/util/vector-bytes.js";
import { FedsynthError } from "../shared/errors.js";
import { describeVerification, readLedgerLines, verifyLedgerInParallel, type LedgerEntry, type ReleaseEntry } from "../shared/ledger/index.js";

export interface LedgerMatch {
  file: string;
  /** The ledger's own verdict (describeVerification). */
  verification: string;
  verified: boolean;
  /** The release entry of the file's study and round whose hash is the released bytes' (null: none). */
  release: { seq: number; line: number; modelId: string | null; contributors: string[] } | null;
  /** What the ledger releases for that study and round instead, when no entry matches. */
  otherHashes: string[];
}

export interface ModelFileVerdict {
  file: string;
  engine: string;
  studyId: string;
  studyName: string;
  round: number;
  createdAt: string;
  privacy: StudyPrivacy;
  columns: number;
  bytes: number;
  /** SHA-256 of the released bytes: what the ledger's release entry records. */
  releasedSha256: string;
  /** What serializeForSampling added and whether it holds (null: the engine adds nothing). */
  samplingData: SamplingDataCheck | null;
  ledger: LedgerMatch | null;
  ok: boolean;
}

export async function verifyModelFile(path: string, ledger?: { path: string; caPem?: string }): Promise<ModelFileVerdict> {
  const { bytes: fileBytes, bundle, engine, schema, model } = readModelFile(path);
  const released = engine.releasedBytes ? engine.releasedBytes(bundle.body, schema) : bundle.body;
  const releasedSha256 = sha256Hex(released);
  const samplingData = engine.checkSamplingData ? engine.checkSamplingData(model) : null;
  const match = ledger ? await matchLedger(ledger.path, bundle.studyId, bundle.round, releasedSha256, ledger.caPem) : null;
  const ok = (samplingData === null || !samplingData.stored || samplingData.ok) && (match === null || (match.verified && match.release !== null));
  return {
    file: path, engine: bundle.engine, studyId: bundle.studyId, studyName: bundle.studyName, round: bundle.round, createdAt: bundle.createdAt,
    privacy: bundle.privacy, columns: schema.columns.length, bytes: fileBytes.byteLength, releasedSha256, samplingData, ledger: match, ok,
  };
}

async function matchLedger(path: string, studyId: string, round: number, sha: string, caPem?: string): Promise<LedgerMatch> {
  if (!existsSync(path)) throw new FedsynthError("not-found", `no ledger export at ${path}`, { hint: "write one with `fedsynth audit export`" });
  const lines = readLedgerLines(readFileSync(path));
  const result = await verifyLedgerInParallel(lines, { caPem });
  const base = { file: path, verification: describeVerification(result), verified: result.ok, release: null, otherHashes: [] };
  // An unverified ledger proves nothing: its release entries are not looked at.
  if (!result.ok) return base;
  const releases = (lines as LedgerEntry[])
    .map((entry, index) => ({ entry, line: index + 1 }))
    .filter((x): x is { entry: ReleaseEntry; line: number } => x.entry.kind === "release" && x.entry.body.studyId === studyId && x.entry.body.round === round);
  const found = releases.find((x) => x.entry.body.modelSha256 === sha);
  if (!found) return { ...base, otherHashes: releases.map((x) => x.entry.body.modelSha256) };
  const { entry, line } = found;
  return { ...base, release: { seq: entry.seq, line, modelId: entry.body.modelId ?? null, contributors: [...entry.body.contributors] } };
}

/** The verdict as a person reads it, a line each. */
export function describeModelVerdict(v: ModelFileVerdict): string[] {
  const lines = [
    `${v.file}: ${v.ok ? "ok" : "FAILED"}`,
    `  ${v.engine} model of study ${v.studyId} (${v.studyName}) after round ${v.round}, exported ${v.createdAt}`,
    `  each site's budget: epsilon ${v.privacy.epsilon}, delta ${v.privacy.delta}, ${v.privacy.rounds} rounds${v.privacy.secureAggregation ? `, secure aggregation (${v.privacy.secureAggregation.threshold} of ${v.privacy.secureAggregation.sites} sites)` : ""}`,
    `  ${v.columns} columns, ${v.bytes} bytes: its hash holds and the ${v.engine} engine reads it`,
    `  released bytes: sha256 ${v.releasedSha256}`,
  ];
  if (v.samplingData) lines.push(`  ${v.samplingData.stored && !v.samplingData.ok ? "MISMATCH: " : ""}${v.samplingData.detail}`);
  if (v.ledger) {
    const l = v.ledger;
    if (!l.verified) lines.push(`  ledger ${l.file}: FAILED verification (${l.verification}); its releases prove nothing`);
    else {
      lines.push(`  ledger ${l.file}: ${l.verification}`);
      if (l.release) lines.push(`  released on the ledger: line ${l.release.line} (seq ${l.release.seq}), model ${l.release.modelId ?? "(no id)"}, from ${l.release.contributors.join(", ")}`);
      else if (l.otherHashes.length > 0) lines.push(`  NOT RELEASED: the ledger releases study ${v.studyId} round ${v.round} as ${l.otherHashes.join(", ")}, not as these bytes`);
      else lines.push(`  NOT RELEASED: the ledger has no release of study ${v.studyId} round ${v.round}`);
    }
  } else lines.push("  (give --ledger with the study's `fedsynth audit export` to check that the ledger released these bytes)");
  return lines;
}
