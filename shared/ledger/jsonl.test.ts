import { describe, expect, it } from "vitest";
import { FedsynthError } from "../errors.js";
import { canonicalize } from "./canonical-json.js";
import { exportJsonl, importJsonl, verifyJsonl } from "./jsonl.js";
import { buildTestLedger } from "./test-ledger.js";

describe("JSONL export and import", () => {
  it("round-trips: one canonical line per entry, read back as the same entries", () => {
    const { entries } = buildTestLedger();
    const text = exportJsonl(entries);
    expect(text.endsWith("}\n")).toBe(true);
    expect(importJsonl(text)).toEqual(entries);
    expect(importJsonl(new TextEncoder().encode(text))).toEqual(entries);
    expect(exportJsonl(importJsonl(text))).toBe(text);
    expect(importJsonl("")).toEqual([]);
  });

  it("refuses a line that is not exactly what the export wrote, naming the file and line", () => {
    const { entries } = buildTestLedger();
    const lines = exportJsonl(entries).split("\n");
    const variants: [string, RegExp][] = [
      [lines[5].replace('"delta":0.00001', '"delta":1e-5'), /not in canonical form/],
      [lines[5].replace("0.00001", "0.000010"), /not in canonical form/],
      [lines[5].replace('{"at"', '{ "at"'), /not in canonical form/],
      [lines[5] + "\r", /not in canonical form/],
      [lines[5].slice(0, -1), /not JSON/],
      ["", /the line is empty/],
      ['{"at":1,"at":2}', /not in canonical form/],
      [canonicalize({ ...entries[5], kind: "bonus" }), /unknown kind "bonus"/],
    ];
    for (const [line, reason] of variants) {
      const edited = [...lines];
      edited[5] = line;
      let error: unknown;
      try {
        importJsonl(edited.join("\n"), "ledger.jsonl");
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(FedsynthError);
      expect((error as FedsynthError).message).toMatch(new RegExp(`^ledger\\.jsonl:6: .*${reason.source}`));
      expect((error as FedsynthError).location).toEqual({ file: "ledger.jsonl", line: 6 });
      expect(verifyJsonl(edited.join("\n"))).toMatchObject({ ok: false, index: 5, reason: expect.stringMatching(reason) });
    }
  });

  it("refuses bytes that are not UTF-8 as the line they are in", () => {
    const { entries } = buildTestLedger();
    const bytes = Buffer.from(exportJsonl(entries));
    const at = bytes.indexOf("heart 2026");
    bytes[at] = 0xff;
    const line = bytes.subarray(0, at).toString().split("\n").length - 1;
    expect(verifyJsonl(bytes)).toMatchObject({ ok: false, index: line, reason: "the line is not valid UTF-8" });
    expect(() => importJsonl(bytes)).toThrow(/not valid UTF-8/);
  });
});
