import { describe, expect, it } from "vitest";
import { FedsynthError } from "../errors.js";
import { canonicalize } from "./canonical-json.js";

describe("RFC 8785 canonical JSON", () => {
  it("matches the RFC's own example (section 3.2.2)", () => {
    const input = JSON.parse(
      '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],' +
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}',
    );
    expect(canonicalize(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it("sorts keys by UTF-16 code units (section 3.2.3)", () => {
    const input = { "\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "\ud83d\ude00": 5, "\u0080": 6, "\u00f6": 7 };
    expect(canonicalize(input)).toBe('{"\\r":2,"1":4,"\u0080":6,"\u00f6":7,"\u20ac":1,"\ud83d\ude00":5,"\ufb33":3}');
  });

  it("writes numbers in ECMAScript's shortest form (appendix B values)", () => {
    const cases: [number, string][] = [
      [0, "0"], [-0, "0"], [5e-324, "5e-324"], [-5e-324, "-5e-324"], [1.7976931348623157e308, "1.7976931348623157e+308"],
      [9007199254740992, "9007199254740992"], [295147905179352830000, "295147905179352830000"], [9.999999999999997e22, "9.999999999999997e+22"],
      [1e23, "1e+23"], [0.000001, "0.000001"], [1e-7, "1e-7"], [1e-5, "0.00001"], [1e21, "1e+21"], [123456789012345680000, "123456789012345680000"],
    ];
    for (const [value, text] of cases) expect(canonicalize(value)).toBe(text);
  });

  it("nests, leaves out undefined properties and keeps every other value", () => {
    expect(canonicalize({ b: [1, { d: true, c: null }], a: "x", skip: undefined })).toBe('{"a":"x","b":[1,{"c":null,"d":true}]}');
    expect(canonicalize([])).toBe("[]");
    expect(canonicalize({})).toBe("{}");
    expect(canonicalize(Object.create(null))).toBe("{}");
  });

  it("refuses what is not I-JSON, naming where it is", () => {
    const bad: [unknown, RegExp][] = [
      [{ a: [1, NaN] }, /NaN at \$\.a\[1\]/], [Infinity, /Infinity at \$/], [{ s: "x\ud800y" }, /unpaired UTF-16 surrogate at \$\.s/],
      [{ "\udc00": 1 }, /surrogate/], [[undefined], /undefined at \$\[0\]/], [{ when: new Date(0) }, /class Date at \$\.when/],
      [{ n: 10n }, /type bigint/], [{ f: () => 1 }, /type function/], [new Uint8Array(2), /class Uint8Array/],
    ];
    for (const [value, message] of bad) {
      let error: unknown;
      try {
        canonicalize(value);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(FedsynthError);
      expect((error as FedsynthError).code).toBe("invalid-argument");
      expect((error as FedsynthError).message).toMatch(message);
      expect((error as FedsynthError).hint).toBeTruthy();
    }
    expect(canonicalize("\ud83d\ude00")).toBe('"\ud83d\ude00"'); // a proper pair is fine
  });

  it("uses texts it is given for sub-objects, giving the same result", () => {
    const inner = { z: 1, y: [2, 3] };
    const outer = { inner, list: [inner] };
    const known = new Map<object, string>([[inner, canonicalize(inner)]]);
    expect(canonicalize(outer, known)).toBe(canonicalize(outer));
  });

  it("is a fixed point of JSON.parse", () => {
    const text = canonicalize({ big: 1e300, small: -1.5e-300, s: "tab\tquote\"back\\slash\u2028", arr: [0.1, 0.2, 0.30000000000000004] });
    expect(canonicalize(JSON.parse(text))).toBe(text);
  });
});
