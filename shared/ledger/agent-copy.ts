/**
 * A site's check of the coordinator's ledger against its own copy of its charges (the site agent keeps
 * every charge it signed, written before the update left: site-agent/local-store.ts). The chain proves
 * the coordinator's ledger is internally consistent; only the site knows what it actually sent, so only
 * this comparison shows a charge the coordinator left out — including by cutting the ledger back to an
 * earlier head — or recorded differently from what the site signed.
 *
 * Charges are matched by (studyId, taskId): a task is charged once. Verify the ledger first; this only
 * compares, over whatever charge entries are well-formed.
 */
import { canonicalize } from "./canonical-json.js";
import type { ChargeEntry, ChargeStatement } from "./entry.js";
import { entryShapeProblem } from "./entry-shape.js";

/** One charge as the site keeps it; the signature is compared too when the site kept it. */
export interface AgentCharge {
  charge: ChargeStatement;
  siteSignature?: string;
}

export interface ChargeRef {
  studyId: string;
  taskId: string;
  round: number;
}

export interface AgentCopyComparison {
  /** True when every charge of the site's copy is in the ledger exactly, and the ledger charges the site for nothing else. */
  ok: boolean;
  siteName: string;
  matched: number;
  /** In the site's copy, but not in the coordinator's ledger. */
  dropped: ChargeRef[];
  /** In both, but different: the ledger entry's seq and the fields that differ. */
  altered: (ChargeRef & { seq: number; fields: string[] })[];
  /** Charged to the site in the ledger, but not in the site's copy (or charged there more than once). */
  unexpected: (ChargeRef & { seq: number })[];
}

const STATEMENT_FIELDS: (keyof ChargeStatement)[] = ["siteName", "studyId", "round", "taskId", "mechanisms", "delta", "epsilonTask", "epsilonStudyTotal", "updateSha256"];

export function compareAgentCopy(entries: readonly unknown[], siteName: string, agentCharges: readonly AgentCharge[]): AgentCopyComparison {
  const ours = new Map<string, AgentCharge>();
  for (const c of agentCharges) ours.set(keyOf(c.charge), c);
  const seen = new Set<string>();
  const result: AgentCopyComparison = { ok: true, siteName, matched: 0, dropped: [], altered: [], unexpected: [] };

  for (const value of entries) {
    if (entryShapeProblem(value) !== null) continue;
    const entry = value as ChargeEntry;
    if (entry.kind !== "charge" || entry.body.charge.siteName !== siteName) continue;
    const theirs = entry.body.charge;
    const key = keyOf(theirs);
    const ref = { studyId: theirs.studyId, taskId: theirs.taskId, round: theirs.round, seq: entry.seq };
    const mine = ours.get(key);
    if (!mine || seen.has(key)) {
      result.unexpected.push(ref);
      continue;
    }
    seen.add(key);
    const fields: string[] = STATEMENT_FIELDS.filter((f) => !sameJson(mine.charge[f], theirs[f]));
    if (mine.siteSignature !== undefined && mine.siteSignature !== entry.siteSignature) fields.push("siteSignature");
    if (fields.length > 0) result.altered.push({ ...ref, fields });
    else result.matched++;
  }
  for (const [key, c] of ours) {
    if (!seen.has(key)) result.dropped.push({ studyId: c.charge.studyId, taskId: c.charge.taskId, round: c.charge.round });
  }
  result.ok = result.dropped.length === 0 && result.altered.length === 0 && result.unexpected.length === 0;
  return result;
}

/** Equal as JSON data; a value that is not JSON (a site's copy may hold anything) equals nothing. */
function sameJson(a: unknown, b: unknown): boolean {
  try {
    return canonicalize(a) === canonicalize(b);
  } catch {
    return false;
  }
}

function keyOf(c: ChargeStatement): string {
  return `${c.studyId}\n${c.taskId}`;
}
