/**
 * Checks that a value read from a file is a well-formed ledger entry, field by field, before anything
 * trusts it. Unknown fields are refused rather than ignored: the hash would cover them, but no check
 * would look at them, and a reader must never see more in an entry than the verifier did.
 */
import { validateMechanism } from "../privacy/accountant.js";
import { FedsynthError } from "../errors.js";
import type { LedgerEntry, LedgerEntryKind } from "./entry.js";

/** Checks one value; returns what is wrong with it, or null. */
type Check = (value: unknown) => string | null;
type Fields = Record<string, { check: Check; optional?: boolean }>;
/** Fields made ready once, so that checking an entry allocates nothing. */
interface Compiled {
  names: ReadonlySet<string>;
  list: readonly (readonly [string, Check, boolean])[];
}

const HEX64 = /^[0-9a-f]{64}$/;

const text: Check = (v) => (typeof v === "string" && v.length > 0 ? null : "must be a non-empty string");
const anyText: Check = (v) => (typeof v === "string" ? null : "must be a string");
const bool: Check = (v) => (typeof v === "boolean" ? null : "must be true or false");
const finite: Check = (v) => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? null : "must be a finite number >= 0");
const count: Check = (v) => (Number.isSafeInteger(v) && (v as number) >= 0 ? null : "must be a whole number >= 0");
const roundNo: Check = (v) => (Number.isSafeInteger(v) && (v as number) >= 1 ? null : "must be a whole number >= 1");
const hex64: Check = (v) => (typeof v === "string" && HEX64.test(v) ? null : "must be 64 lower-case hex digits (a SHA-256)");
const delta: Check = (v) => (typeof v === "number" && v > 0 && v < 1 ? null : "must be a number strictly between 0 and 1");
const json: Check = (v) => (v !== undefined ? null : "is missing");
const nullable = (check: Check): Check => (v) => (v === null ? null : check(v));
const oneOf = (...values: string[]): Check => (v) => (values.includes(v as string) ? null : `must be one of ${values.map((x) => JSON.stringify(x)).join(", ")}`);
const listOf = (check: Check): Check => (v) => {
  if (!Array.isArray(v)) return "must be an array";
  for (let i = 0; i < v.length; i++) {
    const bad = check(v[i]);
    if (bad) return nest(`[${i}]`, bad);
  }
  return null;
};
const object = (fields: Fields): Check => {
  const compiled = compile(fields);
  return (v) => checkFields(v, compiled);
};
const budget = object({ epsilon: { check: finite }, delta: { check: delta } });
const budgetMap: Check = (v) => {
  if (!isRecord(v)) return "must be an object";
  for (const [key, value] of Object.entries(v)) {
    const bad = budget(value);
    if (bad) return nest(`.${key}`, bad);
  }
  return null;
};

/** The exact parameters of each mechanism kind (shared/privacy/mechanism.ts), and nothing else. */
const MECHANISM_FIELDS: Record<string, string[]> = {
  gaussian: ["kind", "l2Sensitivity", "sigma", "repetitions"],
  "subsampled-gaussian": ["kind", "samplingRate", "noiseMultiplier", "steps", "clipNorm"],
  "distributed-discrete-gaussian": ["kind", "l2Sensitivity", "dimension", "sigma", "sites", "repetitions"],
};
const mechanism: Check = (v) => {
  if (!isRecord(v)) return "must be an object";
  const fields = MECHANISM_FIELDS[v.kind as string];
  if (!fields) return `has an unknown kind ${JSON.stringify(v.kind)}`;
  const extra = Object.keys(v).find((k) => !fields.includes(k));
  if (extra) return `has an unexpected field "${extra}"`;
  try {
    validateMechanism(v as never);
    return null;
  } catch (err) {
    return err instanceof FedsynthError ? `is invalid: ${err.message}` : "is invalid";
  }
};

const charge = object({
  siteName: { check: text }, studyId: { check: text }, round: { check: roundNo }, taskId: { check: text },
  mechanisms: { check: listOf(mechanism) }, delta: { check: delta }, epsilonTask: { check: finite },
  epsilonStudyTotal: { check: finite }, updateSha256: { check: hex64 },
});

const BODIES: Record<LedgerEntryKind, Fields> = {
  genesis: { format: { check: anyText }, ledgerId: { check: text }, coordinatorPublicKey: { check: text } },
  enrolment: { siteName: { check: text }, publicKey: { check: text }, certificatePem: { check: text, optional: true }, cap: { check: budget, optional: true } },
  "study-created": {
    studyId: { check: text }, name: { check: anyText }, schema: { check: json }, engine: { check: text }, engineConfig: { check: json, optional: true },
    epsilon: { check: finite }, delta: { check: delta }, rounds: { check: roundNo }, sites: { check: listOf(text) }, siteCaps: { check: budgetMap, optional: true },
  },
  charge: { charge: { check: charge }, accepted: { check: bool }, reason: { check: anyText, optional: true } },
  release: { studyId: { check: text }, round: { check: roundNo }, modelId: { check: text, optional: true }, modelSha256: { check: hex64 }, contributors: { check: listOf(text) } },
  refusal: {
    siteName: { check: text }, studyId: { check: text }, round: { check: nullable(roundNo) }, by: { check: oneOf("site", "coordinator") },
    reason: { check: text }, message: { check: anyText, optional: true }, taskId: { check: text, optional: true },
  },
  head: {},
};

const SIGNATURE_FIELD: Partial<Record<LedgerEntryKind, string>> = { charge: "siteSignature", head: "coordinatorSignature" };

/** The top-level fields of each kind of entry. */
const ENTRIES = Object.fromEntries(
  (Object.keys(BODIES) as LedgerEntryKind[]).map((kind) => {
    const top: Fields = { seq: { check: count }, prevHash: { check: hex64 }, at: { check: count }, kind: { check: text }, body: { check: object(BODIES[kind]) }, hash: { check: hex64 } };
    const signature = SIGNATURE_FIELD[kind];
    if (signature) top[signature] = { check: anyText };
    return [kind, compile(top)];
  }),
) as Record<LedgerEntryKind, Compiled>;

/** Stands in for a line of an export that is not even JSON, so that the verifier can name it in its turn. */
export class UnreadableEntry {
  constructor(readonly problem: string) {}
}

/** What is wrong with `value` as a ledger entry, or null if it is one (of a known kind, with every field right). */
export function entryShapeProblem(value: unknown): string | null {
  if (value instanceof UnreadableEntry) return value.problem;
  if (!isRecord(value)) return "the entry is not a JSON object";
  const kind = value.kind as LedgerEntryKind;
  if (typeof kind !== "string" || !Object.hasOwn(BODIES, kind)) return `the entry has an unknown kind ${JSON.stringify(value.kind)}`;
  const bad = checkFields(value, ENTRIES[kind]);
  return bad ? `the ${kind} entry's ${bad.slice(1)}` : null;
}

/** Narrows after entryShapeProblem returned null. */
export function isWellFormedEntry(value: unknown): value is LedgerEntry {
  return entryShapeProblem(value) === null;
}

function compile(fields: Fields): Compiled {
  return { names: new Set(Object.keys(fields)), list: Object.entries(fields).map(([key, { check, optional }]) => [key, check, optional === true] as const) };
}

function checkFields(value: unknown, fields: Compiled): string | null {
  if (!isRecord(value)) return "must be an object";
  for (const key in value) {
    if (!fields.names.has(key)) return `.${key} is not a field of this format`;
  }
  for (const [key, check, optional] of fields.list) {
    if (!Object.hasOwn(value, key) || value[key] === undefined) {
      if (optional) continue;
      return `.${key} is missing`;
    }
    const bad = check(value[key]);
    if (bad) return nest(`.${key}`, bad);
  }
  return null;
}

/** Problems of nested values come back as a path and a message: ".round must be …", "[2].sigma …". */
function nest(prefix: string, problem: string): string {
  return problem.startsWith(".") || problem.startsWith("[") ? prefix + problem : `${prefix} ${problem}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
