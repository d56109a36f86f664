/**
 * `fedsynth site enroll`: the site makes its own TLS key (which never leaves it) and signing key, proves
 * possession with a CSR, and trades its one-time token for a certificate from the consortium CA.
 *
 * Trust starts from the CA fingerprint the operator hands over with the token (as `kubeadm join` does
 * with its CA hash): the site accepts the coordinator only if the chain it presents contains a CA with
 * exactly that fingerprint, and then pins the coordinator's own certificate for every later connection.
 */
import * as tls from "node:tls";
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
function presentedChain(address: string): Promise<{ pem: string }[]> {
  const host = hostOf(address);
  const port = Number(address.slice(address.lastIndexOf(":") + 1));
  return new Promise((resolve, reject) => {
    // Verification is off for this one handshake only: nothing is sent over it, and the chain it shows
    // is trusted only if it contains the CA whose fingerprint the operator gave out of band.
    const socket = tls.connect({ host, port, rejectUnauthorized: false, ALPNProtocols: ["h2"], servername: isIpLiteral(host) ? undefined : host });
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

function isIpLiteral(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(":");
}
