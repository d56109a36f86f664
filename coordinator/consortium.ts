/**
 * The consortium's PKI as the coordinator keeps it in DATA_DIR/pki: the CA (whose key signs every site's
 * and operator's certificate), the coordinator's own server certificate, and — from `coordinator init` —
 * the first operator's credentials in DATA_DIR/operator. Private keys are written owner-read-only.
 */
import { existsSync, readFileSync } from "node:fs";
import { writeFileAtomic, writePrivateFile } from "../shared/util/files.js";
import { hostname } from "node:os";
import { join } from "node:path";
import { FedsynthError } from "../shared/errors.js";
import {
  certificateFingerprint, createConsortiumCa, issueOperatorCertificate, issueServerCertificate, issueSiteCertificate, type ConsortiumCa,
} from "../shared/crypto/pki/index.js";
import type { CertificateIssuer } from "./sites.js";

export interface Consortium {
  ca: ConsortiumCa;
  /** The coordinator's certificate (the TLS layer sends the CA's after it, for enrolling sites to find). */
  serverCertPem: string;
  serverKeyPem: string;
}

const FILES = { caCert: "ca.pem", caKey: "ca-key.pem", serverCert: "coordinator.pem", serverKey: "coordinator-key.pem" };

export function pkiDir(dataDir: string): string {
  return join(dataDir, "pki");
}

export function hasConsortium(dataDir: string): boolean {
  return existsSync(join(pkiDir(dataDir), FILES.caCert));
}

export interface InitOptions {
  name: string;
  hostnames: string[];
  ips: string[];
}

/** Creates the CA, the coordinator's certificate and the first operator's credentials; refuses to overwrite. */
export async function initConsortium(dataDir: string, opts: InitOptions): Promise<{ caFingerprint: string; coordinatorFingerprint: string; operatorDir: string; names: string[] }> {
  if (hasConsortium(dataDir)) {
    throw new FedsynthError("already-exists", `${pkiDir(dataDir)} already holds a consortium CA`, {
      hint: "a coordinator is initialised once: replacing the CA would cut off every enrolled site",
    });
  }
  const ca = await createConsortiumCa({ name: opts.name });
  const hostnames = [...new Set([...opts.hostnames, hostname().toLowerCase()].filter((h) => /^[a-z0-9.-]+$/i.test(h)))];
  const server = await issueServerCertificate(ca, { hostnames, ips: opts.ips });
  const dir = pkiDir(dataDir);
  writePrivateFile(join(dir, FILES.caKey), ca.keyPem);
  writePrivateFile(join(dir, FILES.serverKey), server.keyPem);
  writeFileAtomic(join(dir, FILES.serverCert), server.certPem);
  writeFileAtomic(join(dir, FILES.caCert), ca.certPem); // last: its presence means the PKI is complete
  const operatorDir = join(dataDir, "operator");
  await writeOperatorCredentials(ca, { name: "admin", role: "operator" }, operatorDir);
  return { caFingerprint: certificateFingerprint(ca.certPem), coordinatorFingerprint: server.fingerprintSha256, operatorDir, names: [...hostnames, "localhost", ...opts.ips, "127.0.0.1", "::1"] };
}

export function loadConsortium(dataDir: string): Consortium {
  const dir = pkiDir(dataDir);
  const read = (name: string) => {
    const path = join(dir, name);
    if (!existsSync(path)) {
      throw new FedsynthError("not-found", `the coordinator's PKI is incomplete: ${path} is missing`, { hint: "restore it from backup; fedsynth coordinator init sets up a new consortium" });
    }
    return readFileSync(path, "utf8");
  };
  return { ca: { certPem: read(FILES.caCert), keyPem: read(FILES.caKey) }, serverCertPem: read(FILES.serverCert), serverKeyPem: read(FILES.serverKey) };
}

export function certificateIssuer(c: Consortium, validityDays?: number): CertificateIssuer {
  return {
    caPem: c.ca.certPem,
    caFingerprint: certificateFingerprint(c.ca.certPem),
    coordinatorFingerprint: certificateFingerprint(c.serverCertPem),
    async issueSiteCertificate(csrPem: string, siteName: string, signingPublicKey: Uint8Array) {
      const issued = await issueSiteCertificate(c.ca, csrPem, { siteId: siteName, validityDays, signingPublicKey });
      return { certPem: issued.certPem, serialHex: issued.serialHex, fingerprint: issued.fingerprintSha256 };
    },
  };
}

/** An operator's or auditor's credentials directory (ca.pem, cert.pem, key.pem), for --credentials. */
export async function writeOperatorCredentials(ca: ConsortiumCa, who: { name: string; role: "operator" | "auditor" }, outDir: string): Promise<string> {
  if (existsSync(join(outDir, "key.pem"))) {
    throw new FedsynthError("already-exists", `${outDir} already holds credentials`, { hint: "choose another --out directory" });
  }
  const issued = await issueOperatorCertificate(ca, { name: who.name, role: who.role });
  writePrivateFile(join(outDir, "key.pem"), issued.keyPem);
  writeFileAtomic(join(outDir, "cert.pem"), issued.certPem);
  writeFileAtomic(join(outDir, "ca.pem"), ca.certPem);
  return issued.fingerprintSha256;
}
