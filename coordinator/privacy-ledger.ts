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

  private constructor(
    private readonly store: CoordinatorStore,
    private writer: LedgerWriter,
    private readonly now: () => number,
    private readonly reopen: () => LedgerWriter,
  ) {}

  /** Opens the stored chain (or starts one), checking every stored entry as an auditor would. */
  static open(store: CoordinatorStore, opts: { caPem?: string; now?: () => number } = {}): PrivacyLedger {
    const now = opts.now ?? Date.now;
    let key = store.getSecret(KEY_NAME);
    if (!key) {
      key = nacl.sign.keyPair().secretKey;
      store.putSecret(KEY_NAME, key);
    }
    const secretKey = key;
    const reopen = () => {
      const stored = readStored(store);
      return stored.length > 0 ? LedgerWriter.resume(stored, secretKey, { caPem: opts.caPem }) : LedgerWriter.start(secretKey, { caPem: opts.caPem, at: now() });
    };
    const writer = reopen();
    const ledger = new PrivacyLedger(store, writer, now, reopen);
    if (store.lastChainSeq() < 0) ledger.persist(writer.entries()[0]);
    if (writer.unsignedCount > 0) ledger.seal();
    return ledger;
  }

  entries(): readonly LedgerEntry[] {
    return this.synced().entries();
  }

  enrol(body: EnrolmentBody): void {
    this.persist(this.synced().enrolSite(body, this.now()));
    this.soon();
  }

  studyCreated(body: StudyCreatedBody): void {
    this.persist(this.synced().createStudy(body, this.now()));
  }

  charge(signed: SignedCharge, verdict: { accepted: boolean; reason?: string }): void {
    this.persist(this.synced().appendCharge(signed, verdict, this.now()));
    this.soon();
  }

  release(body: ReleaseBody): void {
    this.persist(this.synced().appendRelease(body, this.now()));
  }

  refusal(body: RefusalBody): void {
    this.persist(this.synced().appendRefusal(body, this.now()));
    this.soon();
  }

  /** Signs a head over everything so far, if anything is not yet covered by one. */
  seal(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const writer = this.synced();
    if (writer.unsignedCount === 0) return;
    this.persist(writer.signHead(this.now()));
  }

  close(): void {
    this.seal();
  }

  private soon(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => this.seal(), HEAD_DELAY_MS);
    this.timer.unref();
  }

  /**
   * The writer, re-read from the store if the two differ: a store transaction that rolled back after the
   * writer had appended to it leaves entries in memory that were never kept.
   */
  private synced(): LedgerWriter {
    const entries = this.writer.entries();
    if (entries[entries.length - 1]?.seq !== this.store.lastChainSeq()) this.writer = this.reopen();
    return this.writer;
  }

  private persist(entry: LedgerEntry): void {
    this.store.appendChainEntry(entry.seq, canonicalize(entry));
  }
}

function readStored(store: CoordinatorStore): LedgerEntry[] {
  return store.listChainEntries().map((json, i) => {
    try {
      return JSON.parse(json) as LedgerEntry;
    } catch {
      throw new FedsynthError("failed-precondition", `the stored privacy ledger is damaged at entry ${i}: not JSON`, {
        hint: "keep the store as evidence and restore it from a backup",
      });
    }
  });
}
