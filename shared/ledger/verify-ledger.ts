/**
 * verifyLedger: everything an auditor needs to trust a ledger, checked from the ledger alone — seq
 * continuity, the hash chain, every site's signature on its charges (with the key of that site's
 * latest earlier enrolment), the coordinator's signature on every head (with the genesis entry's key),
 * every epsilon recomputed from the recorded mechanisms, and every site's running spend against its
 * study's budget and its caps. The answer names the first entry that fails, and why.
 *
 * The last entry must be a head: entries after the last head carry no coordinator signature, so
 * nothing stops anyone from appending or removing them. (A ledger cut back to an earlier head still
 * verifies — only a copy of a later head, or a site's own list of its charges, shows that; see
 * agent-copy.ts.) For large ledgers verify-ledger-parallel.ts gives the same verdict about twice as fast.
 */
import { LedgerAudit, type AuditOptions, type LedgerSummary } from "./ledger-audit.js";

export type VerifyOptions = AuditOptions;

export type LedgerVerification =
  | { ok: true; summary: LedgerSummary }
  | {
      ok: false;
      /** 0-based position of the first bad entry in the list (the line number is index + 1). */
      index: number;
      /** The seq that entry records, if it has a readable one. */
      seq: number | null;
      reason: string;
    };

export function verifyLedger(entries: readonly unknown[], options: VerifyOptions = {}): LedgerVerification {
  const audit = new LedgerAudit(options);
  for (let index = 0; index < entries.length; index++) {
    const reason = audit.append(entries[index]);
    if (reason !== null) return failureAt(entries, index, reason);
  }
  return concludeAudit(audit, entries);
}

export function failureAt(entries: readonly unknown[], index: number, reason: string): LedgerVerification {
  return { ok: false, index, seq: recordedSeq(entries[index]), reason };
}

/** The verdict once every entry passed the audit: the checks of the ledger as a whole. */
export function concludeAudit(audit: LedgerAudit, entries: readonly unknown[]): LedgerVerification {
  if (entries.length === 0) return { ok: false, index: 0, seq: null, reason: "the ledger is empty: it has no genesis entry" };
  const uncovered = audit.lastHeadIndex + 1;
  if (uncovered < entries.length) {
    return {
      ok: false, index: uncovered, seq: recordedSeq(entries[uncovered]),
      reason: `this entry and the ${entries.length - uncovered - 1} after it are not covered by a coordinator-signed head: a ledger must end with a head entry`,
    };
  }
  return { ok: true, summary: audit.summary() };
}

/** The verdict as one line for people: "ok: …" or "entry N (seq S): reason". */
export function describeVerification(result: LedgerVerification): string {
  if (result.ok) {
    const s = result.summary;
    return `ok: ${s.entries} entries, head seq ${s.headSeq} ${s.headHash}, ${s.kinds.charge} charges from ${s.sites.length} sites in ${s.studies.length} studies`;
  }
  return `entry ${result.index}${result.seq !== null && result.seq !== result.index ? ` (seq ${result.seq})` : ""}: ${result.reason}`;
}

function recordedSeq(value: unknown): number | null {
  const seq = (value as { seq?: unknown } | null)?.seq;
  return typeof value === "object" && Number.isSafeInteger(seq) ? (seq as number) : null;
}
