/**
 * An HTTP CONNECT proxy for a site agent behind a hospital's firewall. grpc-js tunnels through the proxy
 * that the standard variables name (grpc_proxy, then https_proxy, then http_proxy; no_grpc_proxy and
 * no_proxy list exceptions), so `--proxy` only sets grpc_proxy for this process. TLS still runs end to
 * end between the agent and the coordinator: the proxy sees the coordinator's address, nothing else.
 */
import { FedsynthError } from "../shared/errors.js";
import type { Logger } from "../shared/telemetry/log.js";

export const PROXY_OPTION = ["--proxy <http://host:port>", "reach the coordinator through this HTTP CONNECT proxy (default: $grpc_proxy, $https_proxy or $http_proxy)"] as const;

/** Applies `--proxy` and says which proxy, if any, the agent will use. */
export function useProxy(proxy: string | undefined, log: Logger): void {
  if (proxy !== undefined) {
    let url: URL;
    try {
      url = new URL(proxy);
    } catch {
      throw new FedsynthError("invalid-argument", `--proxy ${JSON.stringify(proxy)} is not a URL`, { hint: "give it as http://HOST:PORT, e.g. --proxy http://proxy.hospital.example:3128" });
    }
    if (url.protocol !== "http:" || !url.hostname) {
      throw new FedsynthError("invalid-argument", `--proxy ${proxy} is not an http:// proxy address`, {
        hint: "gRPC speaks plaintext CONNECT to the proxy (TLS to the coordinator runs inside the tunnel): give http://HOST:PORT",
      });
    }
    process.env.grpc_proxy = url.toString();
  }
  const inUse = process.env.grpc_proxy || process.env.https_proxy || process.env.http_proxy;
  if (inUse) log.info("connecting to the coordinator through an HTTP CONNECT proxy", { proxy: inUse, no_proxy: process.env.no_grpc_proxy ?? process.env.no_proxy ?? "" });
}
