/**
 * Every refusal in secure aggregation names the protocol phase it happened in and, where there is one,
 * the site at fault, so that an operator can tell a dropped hospital from a misbehaving one and the
 * transport layer can mark exactly that site.
 */
import { FedsynthError, type ErrorCode } from "../../errors.js";

/** The phases of Bonawitz et al. 2017, Fig. 4. */
export type SecAggPhase = "AdvertiseKeys" | "ShareKeys" | "MaskedInput" | "ConsistencyCheck" | "Unmasking";

/** The phases in the order a session runs them. */
export const SECAGG_PHASES: readonly SecAggPhase[] = ["AdvertiseKeys", "ShareKeys", "MaskedInput", "ConsistencyCheck", "Unmasking"];

export class SecAggError extends FedsynthError {
  readonly phase: SecAggPhase;
  /** The site the error is about (the sender of a refused message, or the site whose secret failed). */
  readonly site?: string;

  constructor(code: ErrorCode, phase: SecAggPhase, site: string | undefined, message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(code, `secure aggregation, ${phase}: ${message}`, opts);
    this.name = "SecAggError";
    this.phase = phase;
    this.site = site;
  }
}

export function quoteSite(site: string): string {
  return `site '${site}'`;
}
