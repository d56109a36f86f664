/**
 * Each site's running spend, recomputed from the recorded mechanisms only (never from a recorded
 * epsilon). Within a study a site's charges compose exactly: the total is the accountant's epsilon of
 * all their mechanisms together, at the study's delta. Across studies the spends are added, epsilon to
 * epsilon and delta to delta — the same valid, conservative bound the site agent's cap uses
 * (site-agent/budget.ts).
 */
import { createHash } from "node:crypto";
import type { Mechanism } from "../privacy/mechanism.js";
import { EpsilonCache } from "./epsilon-cache.js";

export interface StudySpend {
  siteName: string;
  studyId: string;
  /** Charges counted (accepted or not: a rejected update left the site all the same). */
  charges: number;
  /** Recomputed epsilon of all the site's charges in the study, at `delta`. */
  epsilon: number;
  delta: number;
}

interface StudyHistory extends StudySpend {
  mechanisms: Mechanism[];
  /** Identifies the history for the cache (see historyKey). */
  key: string;
}

export interface SpendAfterCharge {
  /** The site's recomputed total in this study, this charge included. */
  studyEpsilon: number;
  /** Sums over all the site's studies (this one at its new total). */
  siteEpsilon: number;
  siteDelta: number;
}

interface SiteSpend {
  studies: Map<string, StudyHistory>;
  epsilon: number;
  delta: number;
}

export class BudgetTracker {
  private readonly bySite = new Map<string, SiteSpend>();

  constructor(private readonly cache: EpsilonCache) {}

  /**
   * What the site's spend would be with one more charge, and `commit` to count it — so that a charge
   * that fails some other check leaves the totals as they were. `mechanismsKey` is
   * EpsilonCache.keyOf(mechanisms). Throws as the accountant does for invalid mechanisms.
   */
  preview(siteName: string, studyId: string, mechanisms: Mechanism[], mechanismsKey: string, delta: number): SpendAfterCharge & { commit(): void } {
    const site = this.bySite.get(siteName) ?? { studies: new Map<string, StudyHistory>(), epsilon: 0, delta: 0 };
    const previous = site.studies.get(studyId);
    const history: StudyHistory = previous
      ? { ...previous, mechanisms: previous.mechanisms.concat(mechanisms), key: historyKey(previous.key, mechanismsKey), charges: previous.charges + 1 }
      : { siteName, studyId, delta, mechanisms: mechanisms.slice(), key: mechanismsKey, charges: 1, epsilon: 0 };
    history.epsilon = this.cache.epsilonOf(history.mechanisms, delta, history.key);
    // Kept as running sums: a site in hundreds of studies must not cost a pass over them per charge.
    const siteEpsilon = site.epsilon - (previous?.epsilon ?? 0) + history.epsilon;
    const siteDelta = previous ? site.delta : site.delta + delta;
    const commit = () => {
      site.studies.set(studyId, history);
      site.epsilon = siteEpsilon;
      site.delta = siteDelta;
      this.bySite.set(siteName, site);
    };
    return { studyEpsilon: history.epsilon, siteEpsilon, siteDelta, commit };
  }

  /** Every (site, study) spend so far, sites in order of their first charge. */
  spends(): StudySpend[] {
    const out: StudySpend[] = [];
    for (const site of this.bySite.values()) {
      for (const { siteName, studyId, charges, epsilon, delta } of site.studies.values()) out.push({ siteName, studyId, charges, epsilon, delta });
    }
    return out;
  }
}

/**
 * The cache key of a history one charge longer: a single charge's history is keyed by its mechanisms'
 * text itself (so it shares the entry of that charge's own epsilon), a longer one by a SHA-256 chain
 * over the texts — short, yet as unambiguous as the texts, and never starting with "[" like a text does.
 */
function historyKey(previous: string, mechanismsKey: string): string {
  return "#" + createHash("sha256").update(previous).update("\n").update(mechanismsKey).digest("hex");
}
