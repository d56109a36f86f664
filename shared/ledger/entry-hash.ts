/**
 * The hash chain. An entry's hash is SHA-256 over the RFC 8785 encoding of the entry without its hash
 * and signatures — so it covers seq, prevHash, at, kind and body — and each entry's prevHash is the
 * hash of the one before. Changing, dropping, inserting or reordering anything therefore changes every
 * hash after it, and the coordinator's signed heads (signatures.ts) pin those hashes.
 */
import { createHash } from "node:crypto";
import { canonicalize } from "./canonical-json.js";
import { GENESIS_PREV_HASH, UNHASHED_FIELDS, type LedgerEntry } from "./entry.js";

const UNHASHED: ReadonlySet<string> = new Set(UNHASHED_FIELDS);

/** An entry before it is placed in the chain: what the writer builds. */
export type EntryDraft<E extends LedgerEntry = LedgerEntry> = E extends LedgerEntry ? Omit<E, "seq" | "prevHash" | "hash"> : never;

/** The exact text the entry's hash is taken over (`known`: see canonicalize). */
export function entryHashInput(entry: object, known?: ReadonlyMap<object, string>): string {
  // Copied field by field: deleting from a copy would push V8 into slow dictionary objects.
  const covered: Record<string, unknown> = {};
  for (const field of Object.keys(entry)) {
    if (!UNHASHED.has(field)) covered[field] = (entry as Record<string, unknown>)[field];
  }
  return canonicalize(covered, known);
}

/** SHA-256 (hex) of the entry's hash input. */
export function computeEntryHash(entry: object, known?: ReadonlyMap<object, string>): string {
  return sha256Hex(entryHashInput(entry, known));
}

/** Places a draft after `previous` (or first, as seq 0), filling in seq, prevHash and hash. */
export function chainEntry<E extends LedgerEntry>(draft: EntryDraft<E>, previous: LedgerEntry | undefined): E {
  const placed = {
    ...draft,
    seq: previous ? previous.seq + 1 : 0,
    prevHash: previous ? previous.hash : GENESIS_PREV_HASH,
  } as unknown as E;
  return { ...placed, hash: computeEntryHash(placed) };
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}
