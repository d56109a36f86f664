import { describe, expect, it } from "vitest";
import { ByteWriter } from "./encoding.js";
import { decodeMessage, encodeMessage, encodedSize, type MaskedInput, type SurvivorList } from "./messages.js";
import { PROTOCOL_TAG } from "./session.js";

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
    expect(() => decodeMessage(new ByteWriter().string(PROTOCOL_TAG).u16(2).finish())).toThrow(/protocol version 2; this build speaks version 1/);
    const unknown = new ByteWriter().string(PROTOCOL_TAG).u16(1).string("gossip").string("s").u32(1).bytes(new Uint8Array(16)).finish();
    expect(() => decodeMessage(unknown)).toThrow(/unknown secure-aggregation message kind 'gossip'/);
  });

  it("a forged list length cannot make the decoder allocate", () => {
    const w = new ByteWriter().string(PROTOCOL_TAG).u16(1).string("survivor-list").string("s").u32(1).bytes(new Uint8Array(16)).u32(0xffffffff);
    expect(() => decodeMessage(w.finish())).toThrow(/malformed/);
  });
});
