/** Updates travel as little-endian float64 vectors. */
import { createHash } from "node:crypto";
import { endianness } from "node:os";
import { FedsynthError } from "../errors.js";

const LITTLE_ENDIAN = endianness() === "LE";

export function vectorToBytes(v: Float64Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  const out = new Uint8Array(v.length * 8);
  const view = new DataView(out.buffer);
  v.forEach((x, i) => view.setFloat64(i * 8, x, true));
  return out;
}

export function bytesToVector(bytes: Uint8Array): Float64Array {
  if (bytes.byteLength % 8 !== 0) {
    throw new FedsynthError("invalid-argument", `an update of ${bytes.byteLength} bytes is not a whole number of float64 values`);
  }
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  if (LITTLE_ENDIAN) return new Float64Array(copy.buffer);
  const view = new DataView(copy.buffer);
  const out = new Float64Array(bytes.byteLength / 8);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(i * 8, true);
  return out;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
