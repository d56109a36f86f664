/**
 * verifyLedger with the signature checks on worker threads: the same verdict, word for word, in about
 * half the time on two cores (see signature-workers.ts for why signatures dominate).
 *
 * The audit runs on the main thread as usual, except that each signature check is queued instead of
 * done and provisionally passes. Once the workers answer, the first entry that fails either way is the
 * earlier of the audit's first failure and the first bad signature — every entry before both passed
 * every check, so the sequential verifier would have stopped at that same entry. To give exactly its
 * reason too, the ledger up to that entry is audited once more, sequentially, with each signature
 * check answered from the workers' verdicts (the checks come in the same order; one that differs in
 * any byte is verified afresh).
 */
import { availableParallelism } from "node:os";
import { CLOCK_SKEW_MS, LedgerAudit } from "./ledger-audit.js";
import { bytesEqual } from "../crypto/identity.js";
import { decodePublicKey, decodeSignature, verifySignatureText, type SignatureCheck } from "./signatures.js";
import { SignatureWorkers } from "./signature-workers.js";
import { concludeAudit, verifyLedger, type LedgerVerification, type VerifyOptions } from "./verify-ledger.js";

/** Below this many entries starting threads costs more than it saves. */
const MIN_ENTRIES = 2000;

export interface ParallelVerifyOptions extends VerifyOptions {
  /** Worker threads for the signatures (default: the machine's available parallelism). */
  threads?: number;
  /** Shorter ledgers are verified on this thread alone (default 2000: below it, starting threads costs more than it saves). */
  minEntries?: number;
}

export async function verifyLedgerInParallel(entries: readonly unknown[], options: ParallelVerifyOptions = {}): Promise<LedgerVerification> {
  const { threads = availableParallelism(), minEntries = MIN_ENTRIES, ...rest } = options;
  // Both passes must judge dates against the same moment.
  const opts: VerifyOptions = { ...rest, now: rest.now ?? Date.now() + CLOCK_SKEW_MS };
  if (entries.length < minEntries || threads < 1) return verifyLedger(entries, opts);

  let workers: SignatureWorkers;
  try {
    workers = new SignatureWorkers(threads);
  } catch {
    return verifyLedger(entries, opts); // no threads to be had here: the same verdict, only slower
  }
  const deferred: { index: number; job: number; message: Uint8Array; signature: unknown; publicKey: unknown }[] = [];
  let index = 0;
  const defer: SignatureCheck = (message, signature, publicKey) => {
    const sig = decodeSignature(signature);
    const key = decodePublicKey(publicKey);
    if (!sig || !key) return false; // malformed: fails now, with the audit's own reason
    deferred.push({ index, job: workers.add(message, sig, key), message, signature, publicKey });
    return true;
  };
  const audit = new LedgerAudit({ ...opts, checkSignature: defer });
  let firstFailure = -1;
  let verdicts: Uint8Array;
  try {
    for (; index < entries.length; index++) {
      if (audit.append(entries[index]) !== null) {
        firstFailure = index;
        break;
      }
    }
    verdicts = await workers.finish();
  } finally {
    await workers.close(); // idle workers would keep the process alive
  }
  const badSignature = deferred.find((d) => verdicts[d.job] !== 1);
  if (badSignature && (firstFailure < 0 || badSignature.index <= firstFailure)) firstFailure = badSignature.index;
  if (firstFailure < 0) return concludeAudit(audit, entries);
  let next = 0;
  const replay: SignatureCheck = (message, signature, publicKey) => {
    if (!decodeSignature(signature) || !decodePublicKey(publicKey)) return false; // was never queued
    const d = deferred[next++];
    const same = d !== undefined && d.signature === signature && d.publicKey === publicKey && bytesEqual(d.message, message);
    return same ? verdicts[d.job] === 1 : verifySignatureText(message, signature, publicKey);
  };
  return verifyLedger(entries.slice(0, firstFailure + 1), { ...opts, checkSignature: replay });
}
