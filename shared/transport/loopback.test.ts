import { describe, expect, it } from "vitest";
import { hostOf, isLoopbackHost, requireLoopbackForPlaintext } from "./loopback.js";

describe("loopback checks for plaintext gRPC", () => {
  it("finds the host of HOST:PORT, bracketed IPv6 included", () => {
    expect(hostOf("127.0.0.1:7070")).toBe("127.0.0.1");
    expect(hostOf("[::1]:7070")).toBe("::1");
    expect(hostOf("coord.example.org:443")).toBe("coord.example.org");
  });

  it("accepts only loopback hosts", () => {
    for (const h of ["127.0.0.1", "127.9.9.9", "localhost", "::1"]) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ["0.0.0.0", "10.0.0.1", "::", "coord.example.org", "128.0.0.1"]) expect(isLoopbackHost(h)).toBe(false);
  });

  it("refuses --insecure for a routable address, naming the flag", () => {
    expect(() => requireLoopbackForPlaintext("0.0.0.0:7070", "--listen")).toThrow(/--insecure .* loopback only, not for --listen 0.0.0.0:7070/);
    expect(() => requireLoopbackForPlaintext("127.0.0.1:7070", "--listen")).not.toThrow();
  });
});
