/**
 * Strict base64 for keys and signatures in the ledger. Buffer.from(text, "base64") is lenient — it skips
 * characters it does not know and ignores the unused low bits of the last character — so two different
 * texts can decode to the same bytes, and an edited line could still verify. Here a text is accepted
 * only if it is exactly the standard, padded encoding of the bytes it decodes to.
 */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** The bytes of a canonical base64 text of `length` bytes, or undefined for anything else. */
export function decodeBase64Strict(text: unknown, length: number): Uint8Array | undefined {
  if (typeof text !== "string" || !BASE64.test(text)) return undefined;
  const bytes = Buffer.from(text, "base64");
  if (bytes.length !== length || bytes.toString("base64") !== text) return undefined;
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
