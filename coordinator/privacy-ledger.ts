/**
 * The consortium's privacy ledger at the coordinator: shared/ledger's hash chain, every entry stored as
 * its canonical JSON in the coordinator's store, inside the same transaction as the state change it
 * records. The coordinator signs the chain's head whenever it settles something an auditor cares about
 * (a study created, a round aggregated, a study closed) and otherwise at most a couple of seconds after
 * the last entry, so an export ends with a signed head; after a crash the unsigned tail is signed on the
 * next start.
 *
 * The ledger signing key lives in the store beside the chain it signs (a coordinator that loses its
 * store loses its ledger anyway). The operational event log (store.appendLedger) stays as it is: it
 * also records events the auditor's ledger has no kind for, such as a study's closing.
 */
import nacl from "tweetnacl";
import { FedsynthError } from "../shared/errors.js";
import {
  canonicalize, LedgerWriter, type EnrolmentBody, type LedgerEntry, type RefusalBody, type ReleaseBody, type SignedCharge, type StudyCreatedBody,
} from "../shared/ledger/index.js";
import type { CoordinatorStore } from "./store/store.js";

const KEY_NAME = "ledger-signing-key";
/** How long an entry may wait for the next signed head. */
const HEAD_DELAY_MS = 2000;

export class PrivacyLedger {
  private timer?: NodeJS.Timeout;

  private constructor(private readonly store: CoordinatorStore, private writer: LedgerWriter, private readonly now: () => number) {}

  /** Opens the stored chain (or starts one), checking every stored entry as an auditor would. */
  static open(store: CoordinatorStore, opts: { caPem?: string; now?: () => number } = {}): PrivacyLedger {
    const now = opts.now ?? Date.now;
    let key = store.getSecret(KEY_NAME);
    if (!key) {
      key = nacl.sign.keyPair().secretKey;
      store.putSecret(KEY_NAME, key);
    }
    const stored = store.listChainEntries().map((json, i) => {
      try {
        return JSON.parse(json) as LedgerEntry;
      } catch {
        throw new FedsynthError("failed-precondition", `the stored privacy ledger is damaged at entry ${i}: not JSON`, {
          hint: "keep the store as evidence and restore it from a backup",
        });
      }
    });
    const writer = stored.length > 0 ? LedgerWriter.resume(stored, key, { caPem: opts.caPem }) : LedgerWriter.start(key, { caPem: opts.caPem, at: now() });
    const ledger = new PrivacyLedger(store, writer, now);
    if (stored.length === 0) ledger.persist(writer.entries()[0]);
    if (writer.unsignedCount > 0) ledger.seal();
    return ledger;
  }

  entries(): readonly LedgerEntry[] {
    return this.writer.entries();
  }

  enrol(body: EnrolmentBody): void {
    this.persist(this.writer.enrolSite(body, this.now()));
    this.soon();
  }

  studyCreated(body: StudyCreatedBody): void {
    this.persist(this.writer.createStudy(body, this.now()));
  }

  charge(signed: SignedCharge, verdict: { accepted: boolean; reason?: string }): void {
    this.persist(this.writer.appendCharge(signed, verdict, this.now()));
    this.soon();
  }

  release(body: ReleaseBody): void {
    this.persist(this.writer.appendRelease(body, this.now()));
  }

  refusal(body: RefusalBody): void {
    this.persist(this.writer.appendRefusal(body, this.now()));
    this.soon();
  }

  /** Signs a head over everything so far, if anything is not yet covered by one. */
  seal(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.writer.unsignedCount === 0) return;
    this.persist(this.writer.signHead(this.now()));
  }

  close(): void {
    this.seal();
  }

  private soon(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => this.seal(), HEAD_DELAY_MS);
    this.timer.unref();
  }

  private persist(entry: LedgerEntry): void {
    this.store.appendChainEntry(entry.seq, canonicalize(entry));
  }
}
