/** The privacy ledger: what the coordinator, the site agents and auditors import. */
export { canonicalize, canonicalBytes, type JsonValue } from "./canonical-json.js";
export * from "./entry.js";
export { computeEntryHash, entryHashInput, chainEntry, sha256Hex, type EntryDraft } from "./entry-hash.js";
export { chargeSigningBytes, headSigningBytes, signCharge, signHead, verifyChargeSignature, verifyHeadSignature } from "./signatures.js";
export { entryShapeProblem, isWellFormedEntry } from "./entry-shape.js";
export { EpsilonCache } from "./epsilon-cache.js";
export { EPSILON_TOLERANCE } from "./charge-audit.js";
export { CLOCK_SKEW_MS, LedgerAudit, type AuditOptions, type LedgerSummary } from "./ledger-audit.js";
export { verifyLedger, describeVerification, type LedgerVerification, type VerifyOptions } from "./verify-ledger.js";
export { LedgerWriter, type LedgerWriterOptions } from "./ledger-writer.js";
export { exportJsonl, importJsonl, readLedgerLines, verifyJsonl } from "./jsonl.js";
export { compareAgentCopy, type AgentCharge, type AgentCopyComparison, type ChargeRef } from "./agent-copy.js";
export { verifyLedgerInParallel, type ParallelVerifyOptions } from "./verify-ledger-parallel.js";
