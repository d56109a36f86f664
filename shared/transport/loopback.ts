/** Plaintext gRPC is for development on one machine: these decide what "one machine" means. */
import { isIP } from "node:net";
import { FedsynthError } from "../errors.js";

/** The host of HOST:PORT, without IPv6 brackets. */
export function hostOf(address: string): string {
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(address.trim());
  if (m) return m[1];
  const colons = address.split(":").length - 1;
  if (colons > 1) return address; // a bare IPv6 address
  return address.split(":")[0];
}

export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (isIP(h) === 6) return h === "::1" || h === "0:0:0:0:0:0:0:1";
  return false;
}

/** Refuses --insecure for anything but loopback, naming the flag and the way out. */
export function requireLoopbackForPlaintext(address: string, flag: string): void {
  if (!isLoopbackHost(hostOf(address))) {
    throw new FedsynthError("invalid-argument", `--insecure (plaintext gRPC) is allowed on loopback only, not for ${flag} ${address}`, {
      hint: "use 127.0.0.1 or localhost for development; between machines, set up the consortium CA (fedsynth coordinator init) and use mutual TLS",
    });
  }
}
