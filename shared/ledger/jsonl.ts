/**
 * The ledger as JSON Lines: one entry per line, each line the entry's RFC 8785 canonical encoding
 * (signatures and hash included), "\n" after every line. Because the encoding is canonical, a reader
 * can insist that every line is exactly it: then any edit to a line — even one that JSON would read as
 * the same value, like "1E-5" for "1e-5" or an added space — is refused, not silently normalised.
 */
import { FedsynthError } from "../errors.js";
import { canonicalize } from "./canonical-json.js";
import type { LedgerEntry } from "./entry.js";
import { entryShapeProblem, UnreadableEntry } from "./entry-shape.js";
import { verifyLedger, type LedgerVerification, type VerifyOptions } from "./verify-ledger.js";

export function exportJsonl(entries: readonly LedgerEntry[]): string {
  let out = "";
  for (const entry of entries) out += canonicalize(entry) + "\n";
  return out;
}

/**
 * Reads an export, checking each line's JSON, canonical form and entry shape (not the chain: that is
 * verifyLedger's job). Throws FedsynthError("invalid-data") naming the first bad line.
 */
export function importJsonl(text: string | Uint8Array, file?: string): LedgerEntry[] {
  return readLedgerLines(text).map((value, index) => {
    const problem = entryShapeProblem(value);
    if (problem) {
      throw new FedsynthError("invalid-data", `${file ?? "ledger"}:${index + 1}: ${problem}`, {
        location: { file, line: index + 1 },
        hint: "A ledger export holds one canonical JSON entry per line, exactly as exportJsonl wrote it; run verifyJsonl for the full verdict.",
      });
    }
    return value as LedgerEntry;
  });
}

/** verifyLedger over an export; a line that cannot be read fails as that entry (index = line number − 1). */
export function verifyJsonl(text: string | Uint8Array, options: VerifyOptions = {}): LedgerVerification {
  return verifyLedger(readLedgerLines(text), options);
}

/** Each line's value, or an UnreadableEntry saying why there is none (for the verifiers). A final "\n" ends the last line. */
export function readLedgerLines(text: string | Uint8Array): unknown[] {
  const lines = typeof text === "string" ? text.split("\n") : splitBytes(text);
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines.map((line) => (line instanceof UnreadableEntry ? line : readLine(line)));
}

function readLine(line: string): unknown {
  if (line === "") return new UnreadableEntry("the line is empty");
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    return new UnreadableEntry(`the line is not JSON (${(err as Error).message})`);
  }
  let canonical: string;
  try {
    canonical = canonicalize(value);
  } catch (err) {
    return new UnreadableEntry(`the line is not I-JSON (${(err as Error).message})`);
  }
  return canonical === line ? value : new UnreadableEntry("the line is not in canonical form (RFC 8785): it was edited after export");
}

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function splitBytes(bytes: Uint8Array): (string | UnreadableEntry)[] {
  const out: (string | UnreadableEntry)[] = [];
  let start = 0;
  for (;;) {
    const end = bytes.indexOf(0x0a, start);
    const chunk = bytes.subarray(start, end === -1 ? bytes.length : end);
    try {
      out.push(UTF8.decode(chunk));
    } catch {
      out.push(new UnreadableEntry("the line is not valid UTF-8"));
    }
    if (end === -1) return out;
    start = end + 1;
  }
}
