/**
 * How many sites must take part for a secure-aggregation round to finish, and why that number is safe.
 *
 * With a malicious coordinator (Bonawitz et al. 2017, §4 and Thm. 6.5) the danger is that it tells some
 * honest sites "u dropped" (so they reveal u's key share) and others "u survived" (so they reveal u's
 * self-mask share), and with both it unmasks u alone. The consistency check stops that: a site reveals
 * anything only after seeing t signatures on the one survivor list it signed itself. Two contradicting
 * lists would need t signatures each; honest sites sign one list, so with n_C colluding sites that takes
 * 2t ≤ n + n_C. Hence t > (n + n_C)/2; with no colluding site, t > n/2. And t ≥ 2, or one site's shares
 * alone would be the secrets.
 *
 * Default t = ⌈2n/3⌉: a round still completes when ⌊n/3⌋ sites drop (n − t = ⌊n/3⌋), and it stays private
 * against a coordinator colluding with up to 2t − n − 1 ≈ n/3 − 1 sites (the paper's t ≥ ⌊2n/3⌋ + 1
 * tolerates n/3 colluders but one dropout fewer whenever 3 divides 2n; we prefer the round to survive a
 * third of the hospitals going offline).
 */
import { FedsynthError } from "../../errors.js";
import { MAX_SHARES } from "../shamir.js";

export function defaultThreshold(sites: number): number {
  checkSiteCount(sites);
  return Math.max(2, Math.ceil((2 * sites) / 3));
}

export interface ThresholdGuarantees {
  /** Sites that may drop out at any point and the round still completes. */
  maxDropouts: number;
  /** Sites that may collude with the coordinator and no single site's input is revealed. */
  maxColludingSites: number;
}

export function thresholdGuarantees(threshold: number, sites: number): ThresholdGuarantees {
  checkThreshold(threshold, sites);
  return { maxDropouts: sites - threshold, maxColludingSites: Math.max(0, Math.min(threshold - 1, 2 * threshold - sites - 1)) };
}

/** Throws unless `threshold` is safe against a malicious coordinator for `sites` sites. */
export function checkThreshold(threshold: number, sites: number): void {
  checkSiteCount(sites);
  if (!Number.isInteger(threshold)) throw new FedsynthError("invalid-argument", `the secure-aggregation threshold must be a whole number, not ${threshold}`);
  const hint = `use the default ⌈2n/3⌉ = ${Math.max(2, Math.ceil((2 * sites) / 3))} for ${sites} sites`;
  if (threshold < 2) {
    throw new FedsynthError("invalid-argument", `a secure-aggregation threshold of ${threshold} is unsafe: it must be at least 2, or a single site's shares would reveal the secrets`, { hint });
  }
  if (threshold > sites) {
    throw new FedsynthError("invalid-argument", `a secure-aggregation threshold of ${threshold} cannot be met by ${sites} sites`, { hint });
  }
  if (2 * threshold <= sites) {
    throw new FedsynthError("invalid-argument", `a secure-aggregation threshold of ${threshold} for ${sites} sites is unsafe: against a malicious coordinator it must be more than half the sites (t > n/2, Bonawitz et al. 2017), or the coordinator could show two halves of the sites different survivor lists and unmask one site's input`, { hint });
  }
}

function checkSiteCount(sites: number): void {
  if (!Number.isInteger(sites) || sites < 2) {
    throw new FedsynthError("invalid-argument", `secure aggregation needs at least 2 sites, not ${sites}: the sum of one site is its input`);
  }
  if (sites > MAX_SHARES) {
    throw new FedsynthError("invalid-argument", `secure aggregation supports at most ${MAX_SHARES} sites per round (Shamir shares over GF(2^8)), not ${sites}`);
  }
}
