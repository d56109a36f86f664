import { describe, expect, it } from "vitest";
import { ByteWriter } from "./encoding.js";
import { createHash, randomBytes } from "node:crypto";
import { DIGEST_LEAF_BYTES, decodeMessage, encodeMessage, encodedSize, maskedInputDigest, type MaskedInput, type SurvivorList } from "./messages.js";
import { PROTOCOL_TAG, PROTOCOL_VERSION } from "./session.js";

const context = { studyId: "study-1", round: 3, sessionNonce: new Uint8Array(16).fill(9) };

describe("wire encoding", () => {
  it("round-trips a masked input, words little-endian, and reports its size without copying", () => {
    const masked: MaskedInput = {
      kind: "masked-input",
      context,
      siteId: "va",
      shareHoldersDigest: new Uint8Array(32).fill(1),
      masked: Uint32Array.of(1, 0xdeadbeef, 0xffffffff),
      signature: new Uint8Array(64).fill(2),
    };
    const bytes = encodeMessage(masked);
    expect(encodedSize(masked)).toBe(bytes.length);
    expect(Buffer.from(bytes.subarray(bytes.length - 68 - 12, bytes.length - 68)).toString("hex")).toBe("01000000efbeaddeffffffff");
    expect(decodeMessage(bytes)).toEqual(masked);
  });

  it("a list of 100 survivors stays small", () => {
    const list: SurvivorList = { kind: "survivor-list", context, survivors: Array.from({ length: 100 }, (_, i) => `site-${i}`) };
    expect(encodedSize(list)).toBeLessThan(1400);
    expect(decodeMessage(encodeMessage(list))).toEqual(list);
  });

  it("refuses truncated, padded, foreign and future messages", () => {
    const list: SurvivorList = { kind: "survivor-list", context, survivors: ["a", "b"] };
    const bytes = encodeMessage(list);
    expect(() => decodeMessage(bytes.subarray(0, bytes.length - 1))).toThrow(/malformed secure-aggregation message: it ends after/);
    expect(() => decodeMessage(Uint8Array.of(...bytes, 0))).toThrow(/1 unexpected byte\(s\) after its last field/);
    expect(() => decodeMessage(new ByteWriter().string("something/else").finish())).toThrow(/wrong protocol tag/);
    expect(() => decodeMessage(new ByteWriter().string(PROTOCOL_TAG).u16(PROTOCOL_VERSION + 1).finish())).toThrow(new RegExp(`protocol version ${PROTOCOL_VERSION + 1}; this build speaks version ${PROTOCOL_VERSION}`));
    const unknown = new ByteWriter().string(PROTOCOL_TAG).u16(PROTOCOL_VERSION).string("gossip").string("s").u32(1).bytes(new Uint8Array(16)).finish();
    expect(() => decodeMessage(unknown)).toThrow(/unknown secure-aggregation message kind 'gossip'/);
  });

  it("a forged list length cannot make the decoder allocate", () => {
    const w = new ByteWriter().string(PROTOCOL_TAG).u16(PROTOCOL_VERSION).string("survivor-list").string("s").u32(1).bytes(new Uint8Array(16)).u32(0xffffffff);
    expect(() => decodeMessage(w.finish())).toThrow(/malformed/);
  });
});

describe("protocol version 2", () => {
  it("a version-1 message (ChaCha20 masks, one SHA-256 digest) is refused with a clear error, not summed", () => {
    expect(PROTOCOL_VERSION).toBe(2);
    const list: SurvivorList = { kind: "survivor-list", context, survivors: ["a", "b"] };
    const bytes = encodeMessage(list);
    // The version is the u16 right after the length-prefixed tag.
    const v1 = Uint8Array.from(bytes);
    v1[4 + PROTOCOL_TAG.length + 1] = 1;
    expect(() => decodeMessage(v1)).toThrow(/secure-aggregation message of protocol version 1; this build speaks version 2/);
  });
});

describe("the masked-input digest", () => {
  // The definition, written out independently of messages.ts: SHA-256 over the length-prefixed label,
  // the word count and the SHA-256 of each 256 KiB leaf of the little-endian bytes.
  function reference(words: Uint32Array): string {
    const bytes = Buffer.alloc(words.length * 4);
    words.forEach((w, i) => bytes.writeUInt32LE(w, i * 4));
    const label = Buffer.from("fedsynth/secagg/masked-input-digest", "utf8");
    const root = createHash("sha256");
    const u32 = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n);
      return b;
    };
    root.update(u32(label.length)).update(label).update(u32(words.length));
    for (let off = 0; off < bytes.length; off += 262144) root.update(createHash("sha256").update(bytes.subarray(off, off + 262144)).digest());
    return root.digest("hex");
  }

  it("is a SHA-256 over the leaves' SHA-256s, the same whether the vector is in shared memory (hashed on the helpers too) or not", () => {
    expect(DIGEST_LEAF_BYTES).toBe(262144);
    // Shorter than a leaf, exactly one, one word more, and several with a short last leaf.
    for (const length of [1, 65536, 65537, 4 * 65536 + 1234]) {
      const words = new Uint32Array(randomBytes(length * 4).buffer);
      const shared = new Uint32Array(new SharedArrayBuffer(length * 4));
      shared.set(words);
      const expected = reference(words);
      expect(Buffer.from(maskedInputDigest(words)).toString("hex"), `${length} words`).toBe(expected);
      expect(Buffer.from(maskedInputDigest(shared)).toString("hex"), `${length} words, shared`).toBe(expected);
    }
  });

  it("binds every word and the length", () => {
    const words = new Uint32Array(randomBytes(3 * 65536 * 4).buffer);
    const d = Buffer.from(maskedInputDigest(words)).toString("hex");
    const changed = Uint32Array.from(words);
    changed[2 * 65536 + 5] ^= 1;
    expect(Buffer.from(maskedInputDigest(changed)).toString("hex")).not.toBe(d);
    expect(Buffer.from(maskedInputDigest(words.subarray(0, words.length - 1))).toString("hex")).not.toBe(d);
  });
});
