import { describe, it, expect } from "vitest";
import "./reflect-shim.js";

const R = Reflect as unknown as {
  defineMetadata(k: unknown, v: unknown, t: object, p?: string): void;
  getMetadata(k: unknown, t: object, p?: string): unknown;
  getOwnMetadata(k: unknown, t: object, p?: string): unknown;
};

describe("reflect shim (for @peculiar/x509's tsyringe)", () => {
  it("provides the metadata calls tsyringe makes, inherited along the prototype chain", () => {
    class Base {}
    class Derived extends Base {}
    R.defineMetadata("design:paramtypes", [String], Base);
    R.defineMetadata("injectionTokens", { 0: "x" }, Derived);
    expect(R.getMetadata("design:paramtypes", Derived)).toEqual([String]);
    expect(R.getOwnMetadata("design:paramtypes", Derived)).toBeUndefined();
    expect(R.getOwnMetadata("injectionTokens", Derived)).toEqual({ 0: "x" });
    expect(R.getMetadata("injectionTokens", Base)).toBeUndefined();
    R.defineMetadata("k", 1, Base, "method");
    expect(R.getMetadata("k", Base, "method")).toBe(1);
    expect(R.getMetadata("k", Base)).toBeUndefined();
  });

  it("lets @peculiar/x509 load and work through x509-lib", async () => {
    const { x509, webcrypto } = await import("./x509-lib.js");
    const keys = await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({ name: "CN=t", keys, signingAlgorithm: { name: "ECDSA", hash: "SHA-256" } });
    expect(await cert.verify()).toBe(true);
  });
});
