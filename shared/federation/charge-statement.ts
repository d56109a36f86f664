/**
 * What a site signs when it releases an update: the privacy ledger's charge statement (shared/ledger/
 * entry.ts) — site, study, round, task, the mechanisms with their exact parameters, the charge and the
 * site's study total, and the hash of exactly the bytes that left. The coordinator rebuilds the same
 * statement from its own records and the site's claimed total, checks the signature, and chains the
 * statement into the ledger as signed, so an auditor can hold the site to it and the site can hold the
 * coordinator to it. Both sides build it here, so the two never drift apart.
 */
import { Accountant } from "../privacy/accountant.js";
import { signCharge, verifyChargeSignature, type ChargeStatement } from "../ledger/index.js";

/**
 * A charge statement before its epsilon is computed: the mechanisms as the task announced them (the
 * coordinator's round record, so both sides sign the same numbers) and the site's claimed study total.
 */
export type ChargeClaim = Omit<ChargeStatement, "epsilonTask">;

export function chargeStatement(c: ChargeClaim): ChargeStatement {
  return {
    siteName: c.siteName, studyId: c.studyId, round: c.round, taskId: c.taskId, mechanisms: c.mechanisms, delta: c.delta,
    epsilonTask: Accountant.epsilonOf(c.mechanisms, c.delta), epsilonStudyTotal: c.epsilonStudyTotal, updateSha256: c.updateSha256,
  };
}

/** The statement and the site's signature over it (base64, as the ledger keeps it). */
export function signChargeClaim(c: ChargeClaim, siteSecretKey: Uint8Array): { statement: ChargeStatement; signature: string } {
  const statement = chargeStatement(c);
  return { statement, signature: signCharge(statement, siteSecretKey).siteSignature };
}

export function verifyChargeClaim(c: ChargeClaim, signature: Uint8Array, sitePublicKeyBase64: string): boolean {
  return verifyChargeSignature(chargeStatement(c), Buffer.from(signature).toString("base64"), sitePublicKeyBase64);
}
