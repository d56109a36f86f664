/**
 * HKDF-SHA256 (RFC 5869): an X25519 output is a group element, not a uniform key, so every key and seed
 * is extracted from it with a salt that binds the session and an info string that says what it is for.
 */
import { hkdfSync } from "node:crypto";
import { FedsynthError } from "../errors.js";

export function hkdfSha256(secret: Uint8Array, salt: Uint8Array, info: Uint8Array, length = 32): Uint8Array {
  if (info.length > 1024) throw new FedsynthError("invalid-argument", `HKDF info is at most 1024 bytes, not ${info.length}`);
  return new Uint8Array(hkdfSync("sha256", secret, salt, info, length));
}
