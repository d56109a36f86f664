/**
 * `fedsynth site enroll`: the site makes its own TLS key (which never leaves it) and signing key, proves
 * possession with a CSR, and trades its one-time token for a certificate from the consortium CA.
 *
 * Trust starts from the CA fingerprint the operator hands over with the token (as `kubeadm join` does
 * with its CA hash): the site accepts the coordinator only if the chain it presents contains a CA with
 * exactly that fingerprint, and then pins the coordinator's own certificate for every later connection.
 */
import * as tls from "node:tls";
import { request } from "node:http";
import { BlockList, isIPv4, type Socket } from "node:net";
import { X509Certificate } from "node:crypto";
import { FedsynthError } from "../shared/errors.js";
import type { Logger } from "../shared/telemetry/log.js";
import { certificateFingerprint, channelCredentials, createSiteKeyAndCsr, identityOfPeer, verifyIssuedBy } from "../shared/crypto/pki/index.js";
import { AgentClient } from "./grpc/agent-client.js";
import { loadOrCreateSigningKey, saveEnrolment, type EnrolledIdentity } from "./identity.js";
import { AGENT_VERSION } from "./agent.js";
import { hostOf } from "../shared/transport/loopback.js";

export interface EnrollOptions {
  coordinator: string;
  siteName: string;
  token: string;
  /** The consortium CA's SHA-256 fingerprint, from the operator (with the token). */
  caFingerprint: string;
  dataDir: string;
  log: Logger;
}

export async function enrollSite(opts: EnrollOptions): Promise<EnrolledIdentity> {
  const presented = await presentedChain(opts.coordinator);
  const wanted = normalizeFingerprint(opts.caFingerprint);
  const ca = presented.find((c) => normalizeFingerprint(certificateFingerprint(c.pem)) === wanted);
  if (!ca) {
    throw new FedsynthError("unauthenticated", `the coordinator at ${opts.coordinator} did not present a CA certificate with fingerprint ${opts.caFingerprint}`, {
      hint: "do not enrol: check the address and the fingerprint the operator gave you (fedsynth site token prints both)",
    });
  }
  const leaf = presented[0];
  verifyIssuedBy(leaf.pem, ca.pem);
  const signing = loadOrCreateSigningKey(opts.dataDir);
  // The new key stays in memory until the coordinator has certified it: a refused re-enrolment must leave
  // the site's current key and certificate, which still match, in place.
  const { keyPem, csrPem } = await createSiteKeyAndCsr(opts.siteName);
  const client = new AgentClient(opts.coordinator, channelCredentials({ caPem: ca.pem, pinnedFingerprint: certificateFingerprint(leaf.pem) }));
  try {
    const res = await client.enroll({ siteName: opts.siteName, agentVersion: AGENT_VERSION, signingPublicKey: signing.publicKey, token: opts.token, csrPem });
    if (normalizeFingerprint(certificateFingerprint(res.caCertificatePem)) !== wanted) {
      throw new FedsynthError("unauthenticated", "the coordinator answered with a different CA certificate than the one pinned", { hint: "do not use this coordinator; tell the consortium operator" });
    }
    verifyIssuedBy(res.certificatePem, ca.pem);
    const identity = identityOfPeer(res.certificatePem);
    if (identity.kind !== "site" || identity.id !== opts.siteName) {
      throw new FedsynthError("unauthenticated", `the certificate the coordinator issued names ${identity.kind} ${identity.id}, not site ${opts.siteName}`);
    }
    const enrolment: EnrolledIdentity = {
      siteName: opts.siteName, coordinator: opts.coordinator, enrolledAt: new Date().toISOString(),
      caFingerprint: certificateFingerprint(ca.pem), coordinatorFingerprint: certificateFingerprint(leaf.pem),
    };
    saveEnrolment(opts.dataDir, { caPem: ca.pem, certPem: res.certificatePem, keyPem }, enrolment);
    opts.log.info("site enrolled", { site: opts.siteName, coordinator: opts.coordinator, certificate: certificateFingerprint(res.certificatePem) });
    return enrolment;
  } finally {
    client.close();
  }
}

function normalizeFingerprint(f: string): string {
  return f.replace(/[^0-9a-f]/gi, "").toLowerCase();
}

/** The certificates the coordinator presents in its TLS handshake, leaf first, as PEM. */
async function presentedChain(address: string): Promise<{ pem: string }[]> {
  const host = hostOf(address);
  const port = Number(address.slice(address.lastIndexOf(":") + 1));
  // Behind a proxy this handshake takes the tunnel every later gRPC call takes: the site may reach
  // nothing but its proxy.
  const proxy = proxyFor(host);
  let tunnel: Socket | undefined;
  if (proxy) {
    try {
      tunnel = await tunnelThrough(proxy, address);
    } catch (err) {
      throw new FedsynthError("unavailable", `cannot reach the coordinator at ${address} through the HTTP CONNECT proxy ${proxy.origin}: ${(err as Error).message}`, {
        hint: "check the proxy address (--proxy, grpc_proxy or https_proxy) and that the proxy may connect to the coordinator",
      });
    }
  }
  return new Promise((resolve, reject) => {
    // Verification is off for this one handshake only: nothing is sent over it, and the chain it shows
    // is trusted only if it contains the CA whose fingerprint the operator gave out of band.
    const socket = tls.connect({ host, port, socket: tunnel, rejectUnauthorized: false, ALPNProtocols: ["h2"], servername: isIpLiteral(host) ? undefined : host });
    socket.setTimeout(10_000, () => socket.destroy(new Error("timed out")));
    socket.once("secureConnect", () => {
      const chain: { pem: string }[] = [];
      let cert = socket.getPeerCertificate(true);
      const seen = new Set<string>();
      while (cert?.raw && !seen.has(cert.fingerprint256)) {
        seen.add(cert.fingerprint256);
        chain.push({ pem: new X509Certificate(cert.raw).toString() });
        cert = cert.issuerCertificate;
      }
      socket.end();
      resolve(chain);
    });
    socket.once("error", (err) => reject(new FedsynthError("unavailable", `cannot reach the coordinator at ${address} over TLS: ${err.message}`, {
      hint: "check the address, that the coordinator runs with TLS (not --insecure), and that this host may connect to it",
    })));
  });
}

/**
 * The HTTP CONNECT proxy grpc-js would use for this host (the same variables and no_proxy rules, so this
 * first handshake takes the same path as every later gRPC call), or undefined.
 */
function proxyFor(host: string): URL | undefined {
  const raw = process.env.grpc_proxy || process.env.https_proxy || process.env.http_proxy;
  if (!raw) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  if (url.protocol !== "http:") return undefined;
  const noProxy = (process.env.no_grpc_proxy || process.env.no_proxy || "").split(",").map((h) => h.trim()).filter((h) => h !== "");
  for (const entry of noProxy) {
    const [ip, prefix] = entry.split("/");
    if (prefix !== undefined && isIPv4(ip) && isIPv4(host)) {
      const block = new BlockList();
      block.addSubnet(ip, Number(prefix), "ipv4");
      if (block.check(host, "ipv4")) return undefined;
    } else if (host.endsWith(entry)) {
      return undefined;
    }
  }
  return url;
}

/** A TCP tunnel to `target` (HOST:PORT) through an HTTP CONNECT proxy. */
function tunnelThrough(proxy: URL, target: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: target };
    if (proxy.username) headers["proxy-authorization"] = `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString("base64")}`;
    const req = request({ host: proxy.hostname.replace(/^\[(.*)\]$/, "$1"), port: Number(proxy.port || 80), method: "CONNECT", path: target, headers });
    const timer = setTimeout(() => req.destroy(new Error("timed out")), 10_000);
    req.once("connect", (res, socket, head) => {
      clearTimeout(timer);
      if (res.statusCode !== 200) {
        socket.destroy();
        reject(new Error(`the proxy answered ${res.statusCode} ${res.statusMessage ?? ""}`.trim()));
        return;
      }
      if (head.length > 0) socket.unshift(head);
      resolve(socket);
    });
    req.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end();
  });
}

function isIpLiteral(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(":");
}
