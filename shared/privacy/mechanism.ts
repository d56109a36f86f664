/**
 * Mechanisms are data: a charge is recorded as the mechanism and its exact public parameters, so that a
 * site, the coordinator and an auditor all recompute the same epsilon with the same functions.
 */
export interface GaussianMechanism {
  kind: "gaussian";
  /** L2 sensitivity of the released vector under adding or removing one record. */
  l2Sensitivity: number;
  /** Standard deviation of the noise added to each coordinate. */
  sigma: number;
  /** How many times the mechanism is applied (each with fresh noise). */
  repetitions: number;
}

export type Mechanism = GaussianMechanism;

export interface PrivacyCharge {
  epsilon: number;
  delta: number;
}
