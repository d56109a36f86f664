/**
 * What the report shows, gathered from the entries in one pass: sites, studies, charges, releases and
 * refusals, each with its place in the chain. Epsilons are recomputed from the recorded mechanisms with
 * the verifier's own BudgetTracker and EpsilonCache (never taken from what the site recorded), so the
 * report's numbers are the ones verification checked against the budgets.
 *
 * The entries are untrusted: the report must describe a ledger that fails verification too, so nothing
 * here assumes the checks held. Entries from the first failing one on are marked unverified.
 */
import { BudgetTracker } from "../budget-tracker.js";
import { EpsilonCache, sharedEpsilonCache } from "../epsilon-cache.js";
import { isWellFormedEntry } from "../entry-shape.js";
import type { ChargeStatement, LedgerEntry, PrivacyBudget, RefusalBody, ReleaseBody, StudyCreatedBody } from "../entry.js";
import type { LedgerVerification } from "../verify-ledger.js";

/** Where an entry sits, and whether verification vouched for it. */
export interface Placed<B> {
  index: number;
  seq: number;
  at: number;
  body: B;
  verified: boolean;
}

export interface ChargeRow extends Placed<ChargeStatement> {
  accepted: boolean;
  reason?: string;
  /** Recomputed epsilon of this charge alone, at the charge's delta; null if the accountant refuses its mechanisms. */
  epsilonTask: number | null;
  /** Recomputed epsilon of all the site's charges in the study so far, this one included. */
  studyEpsilon: number | null;
}

export interface SiteReport {
  name: string;
  /** Time of the site's first enrolment; null if it never enrolled (a refusal may name such a site). */
  enrolledAt: number | null;
  enrolments: number;
  /** The cap of its latest enrolment, over all its studies. */
  cap?: PrivacyBudget;
  /** Studies the site was invited to or charged in, in order of creation. */
  studyIds: string[];
  charges: ChargeRow[];
}

export type Verdict = { ok: true; headSeq: number; headHash: string } | { ok: false; index: number; seq: number | null; reason: string };

export interface ReportModel {
  ledgerId: string | null;
  coordinatorPublicKey: string | null;
  entries: number;
  /** Entries that are not well-formed ledger entries: counted, never shown. */
  unreadable: number;
  firstAt: number | null;
  lastAt: number | null;
  verdict: Verdict;
  sites: SiteReport[];
  studies: Placed<StudyCreatedBody>[];
  releases: Placed<ReleaseBody>[];
  refusals: Placed<RefusalBody>[];
}

export function buildReportModel(entries: readonly unknown[], verification: LedgerVerification, cache: EpsilonCache = sharedEpsilonCache()): ReportModel {
  const verdict = verdictFor(entries, verification);
  const firstBad = verdict.ok ? Infinity : verdict.index;
  const model: ReportModel = {
    ledgerId: null, coordinatorPublicKey: null, entries: entries.length, unreadable: 0, firstAt: null, lastAt: null,
    verdict, sites: [], studies: [], releases: [], refusals: [],
  };
  const sites = new Map<string, SiteReport>();
  const site = (name: string) => {
    let s = sites.get(name);
    if (!s) sites.set(name, (s = { name, enrolledAt: null, enrolments: 0, studyIds: [], charges: [] }));
    return s;
  };
  const budgets = new BudgetTracker(cache);
  entries.forEach((value, index) => {
    if (!isWellFormedEntry(value)) return void model.unreadable++;
    const e: LedgerEntry = value;
    const place = { index, seq: e.seq, at: e.at, verified: index < firstBad };
    model.firstAt = Math.min(model.firstAt ?? e.at, e.at);
    model.lastAt = Math.max(model.lastAt ?? e.at, e.at);
    switch (e.kind) {
      case "genesis":
        model.ledgerId ??= e.body.ledgerId;
        model.coordinatorPublicKey ??= e.body.coordinatorPublicKey;
        break;
      case "enrolment": {
        const s = site(e.body.siteName);
        s.enrolledAt ??= e.at;
        s.enrolments++;
        s.cap = e.body.cap;
        break;
      }
      case "study-created":
        model.studies.push({ ...place, body: e.body });
        for (const name of e.body.sites) addStudy(site(name), e.body.studyId);
        break;
      case "charge": {
        const c = e.body.charge;
        const s = site(c.siteName);
        addStudy(s, c.studyId);
        s.charges.push({ ...place, body: c, accepted: e.body.accepted, reason: e.body.reason, ...recompute(c, cache, budgets) });
        break;
      }
      case "release":
        model.releases.push({ ...place, body: e.body });
        break;
      case "refusal":
        model.refusals.push({ ...place, body: e.body });
        break;
    }
  });
  model.sites = [...sites.values()];
  // Studies in creation order; a study charged but never created (a failing ledger) goes last.
  const order = new Map(model.studies.map((s, i) => [s.body.studyId, i]));
  for (const s of model.sites) s.studyIds.sort((a, b) => (order.get(a) ?? Infinity) - (order.get(b) ?? Infinity));
  return model;
}

/** The verifier's figures for one charge; a charge the accountant refuses gets none (it failed verification). */
function recompute(c: ChargeStatement, cache: EpsilonCache, budgets: BudgetTracker): { epsilonTask: number | null; studyEpsilon: number | null } {
  try {
    const key = EpsilonCache.keyOf(c.mechanisms);
    const epsilonTask = cache.epsilonOf(c.mechanisms, c.delta, key);
    const spend = budgets.preview(c.siteName, c.studyId, c.mechanisms, key, c.delta);
    spend.commit();
    return { epsilonTask, studyEpsilon: spend.studyEpsilon };
  } catch {
    return { epsilonTask: null, studyEpsilon: null };
  }
}

function addStudy(site: SiteReport, studyId: string): void {
  if (!site.studyIds.includes(studyId)) site.studyIds.push(studyId);
}

/**
 * The verdict, but only if it is about these entries: a passing verification of some other ledger
 * (or of a shorter copy of this one) must not make this report say "verified".
 */
function verdictFor(entries: readonly unknown[], v: LedgerVerification): Verdict {
  if (!v.ok) return { ok: false, index: v.index, seq: v.seq, reason: v.reason };
  const last = entries[entries.length - 1] as { hash?: unknown } | undefined;
  if (v.summary.entries !== entries.length || last?.hash !== v.summary.headHash) {
    return {
      ok: false, index: 0, seq: null,
      reason: `the verification given with these entries is of another ledger (${v.summary.entries} entries ending in head ${v.summary.headHash}), so nothing here is verified`,
    };
  }
  return { ok: true, headSeq: v.summary.headSeq, headHash: v.summary.headHash };
}
