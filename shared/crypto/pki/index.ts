/** The consortium's PKI: keys, the CA and what it issues, peer identities, TLS credentials, enrolment tokens. */
export { generateKeyPair, readPrivateKey, type KeyPairPem, type GeneratedKeyPair } from "./keys.js";
export {
  createConsortiumCa, issueServerCertificate, createSiteKeyAndCsr, issueSiteCertificate, issueOperatorCertificate, randomSerial, certifiedSigningKeyHex,
  LOOPBACK_NAMES, DEFAULT_CA_VALIDITY_DAYS, DEFAULT_LEAF_VALIDITY_DAYS,
  type ConsortiumCa, type IssuedCertificate, type IssuedCertificateAndKey, type Validity, type ServerCertificateOptions,
} from "./certificates.js";
export {
  identityOfPeer, verifyIssuedBy, checkValidity, certificateFingerprint, normalizeFingerprint, fingerprintsEqual,
  identityUri, parseIdentityUri, validateIdentityId, parseCertificate, serialHexOf, normalizeSerial,
  IDENTITY_URI_SCHEME, PEER_KINDS,
  type PeerIdentity, type PeerKind, type CertificateInput,
} from "./identity.js";
export {
  serverCredentials, channelCredentials, clientCertificateInterceptor, peerIdentityOfCall,
  type ServerTlsOptions, type ChannelTlsOptions, type ClientCertificatePolicy, type CallWithAuthContext,
} from "./grpc-tls.js";
export { newEnrollmentToken, hashEnrollmentToken, enrollmentTokenMatches, constantTimeEqual, ENROLLMENT_TOKEN_PREFIX } from "./enrollment.js";
