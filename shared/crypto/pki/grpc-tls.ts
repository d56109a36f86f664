/**
 * gRPC credentials for mutual TLS, and the server-side check that turns a verified client certificate
 * into a caller identity.
 *
 * One port serves both enrolment (the site has no certificate yet) and everything else (which needs
 * one). grpc-js's `ServerCredentials.createSsl(ca, pairs, true)` cannot do that: it makes the TLS layer
 * refuse certificate-less clients outright, and with `false` it never asks for a certificate at all.
 * So the server asks for a client certificate without requiring it (TLS requestCert = true,
 * rejectUnauthorized = false, via grpc-js's certificate-provider credentials), and grpc-js then reports
 * a client certificate in `call.getAuthContext().sslPeerCertificate` only when TLS verified it against
 * our CA (expired, foreign-CA and absent certificates all leave it empty). Which methods need one is
 * decided per method: `clientCertificateInterceptor` refuses every method not listed as public with
 * UNAUTHENTICATED before its handler runs, and handlers read who is calling with `peerIdentityOfCall`.
 */
import * as tls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { FedsynthError } from "../../errors.js";
import { readPrivateKey, publicKeyDerOf } from "./keys.js";
import {
  certificateFingerprint, checkValidity, fingerprintsEqual, identityOfPeer, normalizeFingerprint, parseCertificate, verifyIssuedBy,
  type PeerIdentity,
} from "./identity.js";
import { invalidArgument } from "./errors.js";

export interface ServerTlsOptions {
  caPem: string;
  certPem: string;
  keyPem: string;
  /**
   * "optional" (default): the handshake succeeds without a client certificate and methods enforce it
   * (clientCertificateInterceptor). "required": TLS itself refuses clients without a certificate from
   * our CA — for a port that serves no enrolment.
   */
  clientCertificates?: "optional" | "required";
}

export function serverCredentials(opts: ServerTlsOptions): grpc.ServerCredentials {
  checkKeyPair(opts.certPem, opts.keyPem, "the coordinator's");
  verifyIssuedBy(opts.certPem, opts.caPem);
  // The CA goes out with the server's certificate so that an enrolling site, which has only the CA's
  // fingerprint, can find the CA in the handshake and check the fingerprint against it.
  const chain = Buffer.from(`${opts.certPem.trim()}\n${opts.caPem.trim()}\n`);
  const key = Buffer.from(opts.keyPem);
  const ca = Buffer.from(opts.caPem);
  if (opts.clientCertificates === "required") {
    return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: chain, private_key: key }], true);
  }
  const provider = new StaticCertificateProvider(ca, chain, key);
  // The same provider serves as CA and identity source, which also keeps this independent of the order
  // of the two provider parameters (grpc-js 1.14 swaps them between the function and the class).
  return grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
}

/**
 * Certificates that never change, as a grpc-js certificate provider. Updates are delivered on a later
 * microtask: grpc-js subscribes to the provider before it registers the watcher that applies updates to
 * the listening socket, so an update delivered synchronously would be lost and every connection dropped.
 */
class StaticCertificateProvider implements grpc.experimental.CertificateProvider {
  constructor(private readonly ca: Buffer, private readonly certificate: Buffer, private readonly privateKey: Buffer) {}

  addCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    queueMicrotask(() => listener({ caCertificate: this.ca }));
  }

  removeCaCertificateListener(): void {}

  addIdentityCertificateListener(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    queueMicrotask(() => listener({ certificate: this.certificate, privateKey: this.privateKey }));
  }

  removeIdentityCertificateListener(): void {}
}

/** What a server call exposes about its connection (ServerUnaryCall, ServerDuplexStream, interceptor calls). */
export interface CallWithAuthContext {
  getAuthContext(): { sslPeerCertificate?: tls.PeerCertificate } | null;
}

/**
 * The caller's identity, or a FedsynthError("unauthenticated") saying why there is none. `caPem`
 * re-checks the issuer independently of the TLS layer (cheap: one ECDSA verification).
 */
export function peerIdentityOfCall(call: CallWithAuthContext, opts: { caPem?: string; now?: Date } = {}): PeerIdentity {
  return identityOfPeer(call.getAuthContext()?.sslPeerCertificate ?? null, opts);
}

export interface ClientCertificatePolicy {
  caPem: string;
  /**
   * Methods callable without a client certificate: full paths ("/fedsynth.v1.AgentService/Enroll") or
   * whole services ("/grpc.health.v1.Health/", with the trailing slash). Everything else needs one.
   */
  publicMethods: readonly string[];
  /** Optional role check once the caller is known: return a reason to refuse (PERMISSION_DENIED), or null. */
  authorize?: (identity: PeerIdentity, methodPath: string) => string | null;
  now?: () => Date;
}

/**
 * A server interceptor that refuses, before any handler runs, every call to a non-public method that
 * does not come with a valid client certificate from our CA. Deny by default: a method added later is
 * protected unless someone lists it as public. Use:
 *
 *   new grpc.Server({ ...SERVER_OPTIONS, interceptors: [clientCertificateInterceptor({ caPem, publicMethods })] })
 */
export function clientCertificateInterceptor(policy: ClientCertificatePolicy): grpc.ServerInterceptor {
  for (const m of policy.publicMethods) {
    if (!/^\/[^/]+\/[^/]*$/.test(m)) {
      throw invalidArgument(`public method ${JSON.stringify(m)} is not "/package.Service/Method" or "/package.Service/"`, "e.g. /grpc.health.v1.Health/ or /fedsynth.v1.AgentService/Enroll");
    }
  }
  const isPublic = (path: string) => policy.publicMethods.some((m) => (m.endsWith("/") ? path.startsWith(m) : path === m));
  return (method, call) => {
    if (isPublic(method.path)) return new grpc.ServerInterceptingCall(call);
    const refuse = (code: grpc.status, err: FedsynthError) => {
      const metadata = new grpc.Metadata();
      metadata.set("fedsynth-code", err.code);
      // Binary ("-bin") so that any text survives; shared/transport/status.ts reads it back.
      if (err.hint) metadata.set("fedsynth-hint-bin", Buffer.from(err.hint, "utf8"));
      call.sendStatus({ code, details: err.hint ? `${err.message} (${err.hint})` : err.message, metadata });
    };
    const listener = new grpc.ServerListenerBuilder()
      .withOnReceiveMetadata((metadata, next) => {
        let identity: PeerIdentity;
        try {
          identity = peerIdentityOfCall(call, { caPem: policy.caPem, now: policy.now?.() });
        } catch (err) {
          refuse(grpc.status.UNAUTHENTICATED, FedsynthError.from(err));
          return;
        }
        const denied = policy.authorize?.(identity, method.path);
        if (denied) {
          refuse(grpc.status.PERMISSION_DENIED, new FedsynthError("permission-denied", `${identity.kind} ${identity.id} may not call ${method.path}: ${denied}`));
          return;
        }
        next(metadata);
      })
      .build();
    return new grpc.ServerInterceptingCall(call, new grpc.ResponderBuilder().withStart((next) => next(listener)).build());
  };
}

export interface ChannelTlsOptions {
  /** The consortium CA: the coordinator's certificate must chain to it. */
  caPem: string;
  /** The client's certificate and key (a site after enrolment, an operator); both or neither. */
  certPem?: string;
  keyPem?: string;
  /**
   * SHA-256 fingerprint (any spelling normalizeFingerprint accepts) of the coordinator's certificate or
   * of a CA certificate in its verified chain. A mismatch fails the connection.
   */
  pinnedFingerprint?: string;
  now?: Date;
}

/**
 * Client credentials for the coordinator. Problems this side can see — a mismatched key, an expired or
 * foreign certificate — are thrown here with a hint, rather than surfacing later as an opaque refusal.
 */
export function channelCredentials(opts: ChannelTlsOptions): grpc.ChannelCredentials {
  parseCertificate(opts.caPem, "CA certificate");
  if ((opts.certPem === undefined) !== (opts.keyPem === undefined)) {
    throw invalidArgument("a client certificate needs its private key and the other way round; only one was given",
      "pass both the certificate and the key written at enrolment, or neither (to enrol)");
  }
  if (opts.certPem !== undefined && opts.keyPem !== undefined) {
    checkKeyPair(opts.certPem, opts.keyPem, "this client's");
    verifyIssuedBy(opts.certPem, opts.caPem);
    checkValidity(opts.certPem, opts.now);
  }
  const pinned = opts.pinnedFingerprint === undefined ? undefined : normalizeFingerprint(opts.pinnedFingerprint);
  return grpc.credentials.createSsl(
    Buffer.from(opts.caPem),
    opts.keyPem === undefined ? null : Buffer.from(opts.keyPem),
    opts.certPem === undefined ? null : Buffer.from(opts.certPem),
    {
      // Node calls this only after the chain verified against caPem; it replaces Node's own host name
      // check, so that check runs first.
      checkServerIdentity: (hostname, cert) => {
        const hostError = tls.checkServerIdentity(hostname, cert);
        if (hostError) return hostError;
        if (pinned === undefined) return undefined;
        const chain = presentedChain(cert);
        if (chain.some((c) => fingerprintsEqual(certificateFingerprint(c), pinned))) return undefined;
        const err = new Error(
          `the coordinator's certificate does not match the pinned fingerprint ${opts.pinnedFingerprint}: it presented ${chain.map((c) => certificateFingerprint(c)).join(" issued by ")}; ` +
            "someone may be intercepting the connection, or the coordinator's certificate changed — do not proceed until the consortium operator confirms the new fingerprint",
        ) as Error & { code: string };
        err.code = "ERR_FEDSYNTH_PINNED_FINGERPRINT_MISMATCH";
        return err;
      },
    },
  );
}

/** The peer's certificate and its issuers as Node links them (the issuer of a root is itself). */
function presentedChain(cert: tls.PeerCertificate | tls.DetailedPeerCertificate): Uint8Array[] {
  const out: Uint8Array[] = [];
  const seen = new Set<string>();
  for (let c: tls.PeerCertificate | undefined = cert; c?.raw && !seen.has(c.fingerprint256); c = (c as tls.DetailedPeerCertificate).issuerCertificate) {
    seen.add(c.fingerprint256);
    out.push(c.raw);
  }
  return out;
}

function checkKeyPair(certPem: string, keyPem: string, whose: string): void {
  const cert = parseCertificate(certPem, `${whose} certificate`);
  const key = readPrivateKey(keyPem, `${whose} private key`);
  if (!publicKeyDerOf(key).equals(cert.publicKey.export({ type: "spki", format: "der" }))) {
    throw invalidArgument(`${whose} private key does not belong to ${whose} certificate`,
      "the key and certificate files are from different enrolments: use the pair written together, or enrol again");
  }
}
