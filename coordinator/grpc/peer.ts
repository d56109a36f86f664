/** The caller's identity as mutual TLS proved it: only a certificate the TLS layer verified against our CA counts. */
import type { PeerCertificate } from "node:tls";
import { identityOfPeer } from "../../shared/crypto/pki/index.js";
import type { PeerIdentity } from "../sites.js";

export function peerIdentity(call: { getAuthContext(): { sslPeerCertificate?: PeerCertificate } }): PeerIdentity | null {
  // grpc-js fills sslPeerCertificate only when the socket is TLS and the certificate verified against the
  // server's CA; a client without a certificate (enrolment) or with an unverifiable one gets nothing here.
  const certificate = call.getAuthContext().sslPeerCertificate;
  if (!certificate) return null;
  return identityOfPeer(certificate);
}
