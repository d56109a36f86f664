/**
 * The ledger's rules, applied one entry at a time in chain order. The verifier feeds it a whole ledger
 * and stops at the first entry it refuses; the writer feeds it each new entry before keeping it, so a
 * ledger the writer made always verifies. Everything an entry is checked against comes from earlier
 * entries of the same ledger: the coordinator key from the genesis entry, site keys from enrolments,
 * budgets from study creations — never from outside, so the ledger alone is the evidence.
 */
import { GENESIS_PREV_HASH, type ChargeEntry, type EnrolmentBody, type LedgerEntry, type LedgerEntryKind } from "./entry.js";
import { entryShapeProblem } from "./entry-shape.js";
import { computeEntryHash } from "./entry-hash.js";
import { headSigningBytes, verifySignatureText, type SignatureCheck } from "./signatures.js";
import { chargeProblem, chargeTexts, type ChargeContext, type ChargeTexts } from "./charge-audit.js";
import { enrolmentProblem, genesisProblem, refusalProblem, releaseProblem, studyProblem, type Studies } from "./entry-rules.js";
import { BudgetTracker, type StudySpend } from "./budget-tracker.js";
import { sharedEpsilonCache, type EpsilonCache } from "./epsilon-cache.js";

/** How far ahead of the verifier's clock the coordinator's may run before its entries count as "from the future". */
export const CLOCK_SKEW_MS = 5 * 60_000;

export interface AuditOptions {
  /** The consortium CA (PEM): when given, enrolment certificates must be issued by it (see enrolment-certificate.ts). */
  caPem?: string;
  /** No entry may be dated after this (default: this machine's clock when the audit starts, plus CLOCK_SKEW_MS). */
  now?: Date | number;
  /** How signatures are checked; the default verifies each at once (verify-ledger-parallel.ts defers them to threads). */
  checkSignature?: SignatureCheck;
  /** Where recomputed epsilons are remembered (default: the process-wide cache). */
  epsilonCache?: EpsilonCache;
}

export interface LedgerSummary {
  ledgerId: string;
  coordinatorPublicKey: string;
  entries: number;
  /** The last entry (always a head in a verified ledger): its seq and hash pin the whole ledger. */
  headSeq: number;
  headHash: string;
  kinds: Record<LedgerEntryKind, number>;
  sites: string[];
  studies: string[];
  /** Each site's recomputed spend per study. */
  spend: StudySpend[];
}

export class LedgerAudit {
  private previous: LedgerEntry | undefined;
  private ledgerId = "";
  private coordinatorKey = "";
  private readonly now: number;
  private readonly sites = new Map<string, { body: EnrolmentBody; seq: number }>();
  private readonly studies: Studies = new Map();
  /** `${studyId}\n${round}\n${siteName}` of every accepted charge: who may be named a contributor. */
  private readonly accepted = new Set<string>();
  private readonly charges: ChargeContext;
  private readonly kinds: Record<LedgerEntryKind, number> = { genesis: 0, enrolment: 0, "study-created": 0, charge: 0, release: 0, refusal: 0, head: 0 };
  private lastHead = -1;
  private counted = 0;

  constructor(private readonly options: AuditOptions = {}) {
    this.now = options.now === undefined ? Date.now() + CLOCK_SKEW_MS : Number(options.now);
    const cache = options.epsilonCache ?? sharedEpsilonCache();
    this.charges = {
      sites: this.sites, studies: this.studies, chargedTasks: new Map(), cache, budgets: new BudgetTracker(cache),
      checkSignature: options.checkSignature ?? verifySignatureText,
    };
  }

  /** Checks the next entry. On success counts it in and returns null; otherwise returns why and changes nothing. */
  append(value: unknown): string | null {
    let problem: string | null;
    try {
      problem = this.problemOf(value);
    } catch (err) {
      // The checks are written not to throw on any input; this keeps a bug from passing for a verdict.
      problem = `the entry could not be checked: ${(err as Error).message}`;
    }
    if (problem === null) this.apply(value as LedgerEntry);
    return problem;
  }

  /** How many entries have been counted in. */
  get count(): number {
    return this.counted;
  }

  /** Index of the last head entry counted in, -1 before the first. */
  get lastHeadIndex(): number {
    return this.lastHead;
  }

  summary(): LedgerSummary {
    const last = this.previous;
    return {
      ledgerId: this.ledgerId, coordinatorPublicKey: this.coordinatorKey, entries: this.count,
      headSeq: last?.seq ?? -1, headHash: last?.hash ?? "", kinds: { ...this.kinds },
      sites: [...this.sites.keys()], studies: [...this.studies.keys()], spend: this.charges.budgets.spends(),
    };
  }

  private problemOf(value: unknown): string | null {
    const shape = entryShapeProblem(value);
    if (shape) return shape;
    const entry = value as LedgerEntry;
    if (entry.seq !== this.count) {
      return `seq ${entry.seq} where seq ${this.count} belongs: an entry is missing, duplicated or out of order`;
    }
    const expectedPrev = this.previous?.hash ?? GENESIS_PREV_HASH;
    if (entry.prevHash !== expectedPrev) return `prevHash ${entry.prevHash} is not the hash of the entry before (${expectedPrev})`;
    const texts = entry.kind === "charge" ? chargeTexts(entry.body.charge) : undefined;
    const hash = computeEntryHash(entry, texts && new Map([[(entry as ChargeEntry).body.charge, texts.statement]]));
    if (entry.hash !== hash) return `the recorded hash ${entry.hash} is not the hash of the entry's content (${hash}): the entry was changed`;
    if (entry.at > this.now) return `the entry is dated ${formatTime(entry.at)}, after the time of verification`;
    if ((entry.kind === "genesis") !== (this.count === 0)) {
      return entry.kind === "genesis" ? "a second genesis entry" : "the first entry of a ledger must be its genesis entry";
    }
    return this.kindProblem(entry, texts);
  }

  private kindProblem(entry: LedgerEntry, texts: ChargeTexts | undefined): string | null {
    switch (entry.kind) {
      case "genesis":
        return genesisProblem(entry.body);
      case "enrolment":
        return enrolmentProblem(entry.body, entry.at, this.options.caPem);
      case "study-created":
        return studyProblem(entry.body, this.studies);
      case "charge":
        return chargeProblem(entry, texts!, this.charges);
      case "release":
        return releaseProblem(entry.body, this.studies, this.accepted);
      case "refusal":
        return refusalProblem(entry.body, this.studies);
      case "head":
        return this.charges.checkSignature(headSigningBytes(entry.hash), entry.coordinatorSignature, this.coordinatorKey)
          ? null
          : "the head's coordinator signature does not verify with the coordinator key of the genesis entry";
    }
  }

  /** Counts a checked entry in (the charge checks already counted its spend). */
  private apply(entry: LedgerEntry): void {
    switch (entry.kind) {
      case "genesis":
        this.ledgerId = entry.body.ledgerId;
        this.coordinatorKey = entry.body.coordinatorPublicKey;
        break;
      case "enrolment":
        this.sites.set(entry.body.siteName, { body: entry.body, seq: entry.seq });
        break;
      case "study-created":
        this.studies.set(entry.body.studyId, { body: entry.body, seq: entry.seq });
        break;
      case "charge":
        if (entry.body.accepted) this.accepted.add(`${entry.body.charge.studyId}\n${entry.body.charge.round}\n${entry.body.charge.siteName}`);
        break;
      case "head":
        this.lastHead = this.counted;
        break;
    }
    this.kinds[entry.kind]++;
    this.previous = entry;
    this.counted++;
  }
}

/** An ISO time where there is one (`at` may lie beyond what a Date can hold). */
function formatTime(at: number): string {
  return at <= 8.64e15 ? new Date(at).toISOString() : `${at} ms after 1970`;
}
