/**
 * The coordinator's side: appends entries to an in-memory ledger (the caller persists each returned
 * entry, e.g. one row or one JSONL line per entry). Every entry goes through the same LedgerAudit the
 * verifier uses before it is kept, so the writer cannot produce a ledger that fails verification: a
 * charge from a site that never enrolled, with a bad signature, or past a budget is refused here with
 * the same reason an auditor would give.
 *
 * Heads are separate entries rather than a signature on every entry: one signature covers everything
 * before it (through the chain), so the coordinator signs once per batch — per round, say — and an
 * auditor checks one signature per head instead of one per entry; old heads stay in the chain as the
 * coordinator's dated commitments, which a site that was shown one can hold it to.
 */
import { FedsynthError } from "../errors.js";
import { encodeBase64 } from "./base64.js";
import { canonicalize } from "./canonical-json.js";
import { chainEntry, type EntryDraft } from "./entry-hash.js";
import {
  LEDGER_FORMAT, type ChargeEntry, type EnrolmentBody, type EnrolmentEntry, type HeadEntry, type LedgerEntry, type RefusalBody,
  type RefusalEntry, type ReleaseBody, type ReleaseEntry, type SignedCharge, type StudyCreatedBody, type StudyCreatedEntry,
} from "./entry.js";
import { LedgerAudit } from "./ledger-audit.js";
import { signHead } from "./signatures.js";
import { randomUUID } from "node:crypto";

export interface LedgerWriterOptions {
  /** The consortium CA: enrolment certificates are then checked as the verifier would with it. */
  caPem?: string;
}

export class LedgerWriter {
  private readonly list: LedgerEntry[] = [];
  private readonly audit: LedgerAudit;

  private constructor(private readonly coordinatorSecretKey: Uint8Array, options: LedgerWriterOptions) {
    // Entries are dated by the caller; the writer has no "now" to hold them to.
    this.audit = new LedgerAudit({ caPem: options.caPem, now: Number.POSITIVE_INFINITY });
  }

  /** A new ledger: its genesis entry records the coordinator's public key (the second half of its tweetnacl secret key). */
  static start(coordinatorSecretKey: Uint8Array, opts: LedgerWriterOptions & { ledgerId?: string; at?: number } = {}): LedgerWriter {
    const writer = new LedgerWriter(coordinatorSecretKey, opts);
    writer.append({
      kind: "genesis", at: opts.at ?? Date.now(),
      body: { format: LEDGER_FORMAT, ledgerId: opts.ledgerId ?? randomUUID(), coordinatorPublicKey: encodeBase64(coordinatorSecretKey.subarray(32, 64)) },
    });
    return writer;
  }

  /** Continues a stored ledger (its tail may lack a head, after a crash). Throws if it does not check out or the key is not its coordinator's. */
  static resume(entries: readonly LedgerEntry[], coordinatorSecretKey: Uint8Array, opts: LedgerWriterOptions = {}): LedgerWriter {
    if (entries.length === 0) {
      throw new FedsynthError("failed-precondition", "the stored ledger is empty: there is nothing to resume", { hint: "Start a new ledger with LedgerWriter.start instead." });
    }
    const writer = new LedgerWriter(coordinatorSecretKey, opts);
    entries.forEach((entry, index) => {
      const reason = writer.audit.append(entry);
      if (reason) {
        throw new FedsynthError("failed-precondition", `the stored ledger fails at entry ${index} (seq ${entry.seq}): ${reason}`, {
          hint: "Do not append to a damaged ledger: keep it as evidence, run the verifier on the export, and restore the store from a backup.",
        });
      }
      writer.list.push(entry);
    });
    const genesis = entries[0];
    if (genesis?.kind !== "genesis" || genesis.body.coordinatorPublicKey !== encodeBase64(coordinatorSecretKey.subarray(32, 64))) {
      throw new FedsynthError("failed-precondition", "the coordinator key given is not the one the ledger's genesis entry records", {
        hint: "Resume the ledger with the coordinator's own signing key (the one it was started with).",
      });
    }
    return writer;
  }

  enrolSite(body: EnrolmentBody, at = Date.now()): EnrolmentEntry {
    return this.append({ kind: "enrolment", at, body });
  }

  createStudy(body: StudyCreatedBody, at = Date.now()): StudyCreatedEntry {
    return this.append({ kind: "study-created", at, body });
  }

  /** Chains a charge exactly as the site signed it, with the coordinator's verdict on the update. */
  appendCharge(signed: SignedCharge, verdict: { accepted: boolean; reason?: string }, at = Date.now()): ChargeEntry {
    return this.append({ kind: "charge", at, body: { charge: signed.charge, ...verdict }, siteSignature: signed.siteSignature });
  }

  appendRelease(body: ReleaseBody, at = Date.now()): ReleaseEntry {
    return this.append({ kind: "release", at, body });
  }

  appendRefusal(body: RefusalBody, at = Date.now()): RefusalEntry {
    return this.append({ kind: "refusal", at, body });
  }

  /** Signs the chain as it stands: a head entry whose coordinator signature covers every entry before it. */
  signHead(at = Date.now()): HeadEntry {
    return this.append<HeadEntry>({ kind: "head", at, body: {} });
  }

  /** The ledger so far, oldest first. */
  entries(): readonly LedgerEntry[] {
    return this.list;
  }

  /** Entries after the last head: not yet covered by a coordinator signature. */
  get unsignedCount(): number {
    return this.list.length - 1 - this.audit.lastHeadIndex;
  }

  private append<E extends LedgerEntry>(draft: EntryDraft<E> | Omit<EntryDraft<HeadEntry>, "coordinatorSignature">): E {
    // Kept exactly as a reader of the export will see it (no undefined fields, no shared objects the caller could still change).
    const plain = JSON.parse(canonicalize(draft)) as EntryDraft<E>;
    let entry: LedgerEntry = chainEntry(plain, this.list[this.list.length - 1]);
    if (entry.kind === "head") entry = { ...entry, coordinatorSignature: signHead(entry.hash, this.coordinatorSecretKey) };
    const reason = this.audit.append(entry);
    if (reason) {
      throw new FedsynthError("failed-precondition", `the ledger refuses this ${entry.kind} entry: ${reason}`, { hint: HINTS[entry.kind] });
    }
    this.list.push(entry);
    return entry as E;
  }
}

const HINTS: Record<LedgerEntry["kind"], string> = {
  genesis: "Start a ledger with the coordinator's 64-byte Ed25519 secret key (tweetnacl form).",
  enrolment: "Record the site's 32-byte Ed25519 public key in base64 and, with a CA, a certificate that CA issued to this site.",
  "study-created": "Each study is created once, with caps only for sites it invites.",
  charge: "Only charges from enrolled, invited sites with their valid signatures and within every budget can be recorded; refuse the update and record a refusal instead.",
  release: "A release names the study's sites whose updates were accepted in that round.",
  refusal: "A refusal names a study the ledger created and one of its rounds (or null).",
  head: "Sign heads with the key the ledger was started with.",
};
