/**
 * RFC 8785 JSON Canonicalization Scheme (JCS): the one byte encoding of a JSON value that the ledger
 * hashes and signs, so that a site, the coordinator and an auditor in any language get the same bytes.
 *
 * Written here rather than taken from npm: no JCS package is among this project's dependencies, and
 * adding one is not this module's call to make. It is also small, because ECMAScript already does the
 * two hard parts exactly as JCS specifies them (JCS is defined in terms of them): numbers are written
 * with Number.prototype.toString (RFC 8785 §3.2.2.3) and strings with JSON.stringify's escaping
 * (§3.2.2.2). What is left is sorting object keys by UTF-16 code units (§3.2.3; JavaScript's default
 * string order) and refusing what I-JSON (RFC 7493) forbids: NaN and infinities, lone surrogates.
 *
 * A property whose value is `undefined` is left out, as JSON.stringify does, so an object with an
 * unset optional field encodes the same before and after a JSON round trip. Anything that is not plain
 * JSON data (a Date, a Uint8Array, a bigint, a class instance) is refused rather than guessed at.
 */
import { FedsynthError } from "../errors.js";

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Any surrogate at all: the cheap test that lets almost every string skip the exact one below. */
const SURROGATE = /[\uD800-\uDFFF]/;
/** A lone (unpaired) UTF-16 surrogate: not representable in UTF-8, so not allowed in I-JSON. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The canonical JSON text of `value`. Throws FedsynthError("invalid-argument") for non-JSON input.
 * `known` holds canonical texts already made of some of value's objects or arrays, to be used as they
 * are: the verifier encodes a charge statement for its signature and then the entry around it for its
 * hash, and need not encode the statement twice. Only pass texts made by canonicalize of the very same,
 * unchanged object.
 */
export function canonicalize(value: unknown, known?: ReadonlyMap<object, string>): string {
  try {
    return encodeValue(value, known);
  } catch (err) {
    if (!(err instanceof NotJson)) throw err;
    throw new FedsynthError("invalid-argument", `Cannot canonicalize ${err.what} at $${err.path.reverse().join("")}: it is not I-JSON data`, { hint: err.hint });
  }
}

/** The canonical encoding as UTF-8 bytes: what is hashed and signed. */
export function canonicalBytes(value: unknown): Uint8Array {
  return Buffer.from(canonicalize(value), "utf8");
}

/** Thrown inside the encoder; the path is collected (innermost first) only on the way out of an error. */
class NotJson extends Error {
  readonly path: string[] = [];
  constructor(readonly what: string, readonly hint: string) {
    super(what);
  }
}

function encodeValue(value: unknown, known: ReadonlyMap<object, string> | undefined): string {
  switch (typeof value) {
    case "string":
      return encodeString(value);
    case "number":
      if (!Number.isFinite(value)) throw new NotJson(`the number ${String(value)}`, "JSON has no NaN or infinity: record such a value as a string or leave it out.");
      return String(value); // ECMAScript's shortest round-trip form, which is JCS's; -0 becomes "0"
    case "boolean":
      return value ? "true" : "false";
    case "object": {
      if (value === null) return "null";
      const text = known?.get(value);
      if (text !== undefined) return text;
      if (Array.isArray(value)) return encodeArray(value, known);
      if (!isPlainObject(value)) {
        throw new NotJson(`an object of class ${value.constructor?.name ?? "unknown"}`, "Convert it to plain JSON data first (bytes as base64 or hex text, times as numbers).");
      }
      return encodeObject(value as Record<string, unknown>, known);
    }
    default:
      throw new NotJson(`a value of type ${typeof value}`, "Only null, booleans, finite numbers, strings, arrays and plain objects can be canonicalized.");
  }
}

function encodeArray(items: unknown[], known: ReadonlyMap<object, string> | undefined): string {
  let out = "[";
  for (let i = 0; i < items.length; i++) {
    try {
      if (items[i] === undefined) throw new NotJson("undefined", "An array cannot hold undefined in JSON: use null.");
      out += (i > 0 ? "," : "") + encodeValue(items[i], known);
    } catch (err) {
      if (err instanceof NotJson) err.path.push(`[${i}]`);
      throw err;
    }
  }
  return out + "]";
}

function encodeObject(object: Record<string, unknown>, known: ReadonlyMap<object, string> | undefined): string {
  // Default sort compares UTF-16 code units, exactly the order RFC 8785 section 3.2.3 prescribes.
  const keys = Object.keys(object).sort();
  let out = "{";
  let first = true;
  for (const key of keys) {
    const item = object[key];
    if (item === undefined) continue;
    try {
      out += (first ? "" : ",") + encodeString(key) + ":" + encodeValue(item, known);
    } catch (err) {
      if (err instanceof NotJson) err.path.push(`.${key}`);
      throw err;
    }
    first = false;
  }
  return out + "}";
}

function encodeString(text: string): string {
  if (SURROGATE.test(text) && LONE_SURROGATE.test(text)) {
    throw new NotJson("a string with an unpaired UTF-16 surrogate", "Such a string has no UTF-8 form; repair the text before recording it.");
  }
  return JSON.stringify(text);
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
