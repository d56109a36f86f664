/**
 * A pooled model as a self-describing file: everything `fedsynth sample` needs (engine, schema, public
 * config, privacy parameters) travels with the engine's own bytes, and a hash guards against corruption.
 */
import { FedsynthError } from "../errors.js";
import { sha256Hex } from "../util/vector-bytes.js";
import type { JsonObject, StudyPrivacy } from "./engine.js";

const MAGIC = "FSYNTHM1";

export interface ModelBundle {
  engine: string;
  schemaJson: string;
  engineConfig: JsonObject;
  privacy: StudyPrivacy;
  studyId: string;
  studyName: string;
  round: number;
  createdAt: string;
  body: Uint8Array;
}

export function encodeModelBundle(bundle: ModelBundle): Uint8Array {
  const { body, ...header } = bundle;
  const headerBytes = Buffer.from(JSON.stringify({ ...header, bodySha256: sha256Hex(body), bodyBytes: body.byteLength }), "utf8");
  const out = Buffer.alloc(MAGIC.length + 4 + headerBytes.length + body.byteLength);
  out.write(MAGIC, 0, "ascii");
  out.writeUInt32LE(headerBytes.length, MAGIC.length);
  headerBytes.copy(out, MAGIC.length + 4);
  out.set(body, MAGIC.length + 4 + headerBytes.length);
  return out;
}

export function decodeModelBundle(bytes: Uint8Array, source: string): ModelBundle {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (why: string) =>
    new FedsynthError("invalid-argument", `${source} is not a usable fedsynth model: ${why}`, {
      hint: "export the model again with `fedsynth model export` (or take it from a simulate --workdir)",
    });
  if (buf.length < MAGIC.length + 4 || buf.toString("ascii", 0, MAGIC.length) !== MAGIC) throw bad("it does not start with the fedsynth model header");
  const headerLength = buf.readUInt32LE(MAGIC.length);
  const bodyStart = MAGIC.length + 4 + headerLength;
  if (bodyStart > buf.length) throw bad("the file is truncated");
  let header: any;
  try {
    header = JSON.parse(buf.toString("utf8", MAGIC.length + 4, bodyStart));
  } catch {
    throw bad("its header is not valid JSON");
  }
  const body = new Uint8Array(buf.subarray(bodyStart));
  if (body.byteLength !== header.bodyBytes) throw bad(`the body has ${body.byteLength} bytes, the header says ${header.bodyBytes}`);
  if (sha256Hex(body) !== header.bodySha256) throw bad("the body does not match its recorded hash");
  const { bodySha256: _h, bodyBytes: _b, ...rest } = header;
  return { ...rest, body } as ModelBundle;
}
