/** The one place where fedsynth's error codes meet gRPC status codes, in both directions. */
import * as grpc from "@grpc/grpc-js";
import { FedsynthError, type ErrorCode } from "../errors.js";

const TO_STATUS: Record<ErrorCode, grpc.status> = {
  "invalid-argument": grpc.status.INVALID_ARGUMENT,
  "invalid-schema": grpc.status.INVALID_ARGUMENT,
  "invalid-data": grpc.status.INVALID_ARGUMENT,
  "not-found": grpc.status.NOT_FOUND,
  "already-exists": grpc.status.ALREADY_EXISTS,
  "failed-precondition": grpc.status.FAILED_PRECONDITION,
  "budget-exceeded": grpc.status.RESOURCE_EXHAUSTED,
  unauthenticated: grpc.status.UNAUTHENTICATED,
  "permission-denied": grpc.status.PERMISSION_DENIED,
  unavailable: grpc.status.UNAVAILABLE,
  internal: grpc.status.INTERNAL,
};

/** A gRPC error carrying the message and hint; the hint travels in trailing metadata as well. */
export function toGrpcError(err: unknown): Partial<grpc.StatusObject> {
  const e = FedsynthError.from(err);
  const metadata = new grpc.Metadata();
  metadata.set("fedsynth-code", e.code);
  // A "-bin" key carries any bytes (base64 on the wire): hints hold text such as "⌈2n/3⌉" or "ε", which
  // an ASCII metadata value cannot, and grpc-js would drop the whole answer as "Unknown error".
  if (e.hint) metadata.set("fedsynth-hint-bin", Buffer.from(e.hint, "utf8"));
  return { code: TO_STATUS[e.code], details: e.hint ? `${e.message} (${e.hint})` : e.message, metadata };
}

/** How the failed call travelled: grpc-js says only what the socket saw, and what that means depends on it. */
export interface ChannelKind {
  /** The channel talked plaintext gRPC (--insecure), not TLS. */
  plaintext?: boolean;
}

export function fromGrpcError(err: unknown, what: string, channel: ChannelKind = {}): FedsynthError {
  const se = err as grpc.ServiceError;
  if (typeof se?.code !== "number") return FedsynthError.from(err);
  const code = (se.metadata?.get("fedsynth-code")[0] as ErrorCode | undefined) ?? undefined;
  const rawHint = se.metadata?.get("fedsynth-hint-bin")[0];
  const hint = rawHint === undefined ? undefined : Buffer.isBuffer(rawHint) ? rawHint.toString("utf8") : String(rawHint);
  if (se.code === grpc.status.UNAVAILABLE || se.code === grpc.status.DEADLINE_EXCEEDED) {
    // A coordinator that answered says so with its own code; without one, the channel never got that far.
    const failure = code ? null : explainConnectionFailure(se.details ?? "", channel.plaintext ?? false);
    if (failure) return new FedsynthError(failure.code, `${what}: ${failure.message}`, { hint: failure.hint, cause: err });
    return new FedsynthError("unavailable", `${what}: the coordinator is not reachable (${se.details})`, {
      hint: "check the --coordinator address and that the coordinator is running",
      cause: err,
    });
  }
  const details = hint && se.details.endsWith(`(${hint})`) ? se.details.slice(0, -hint.length - 3) : se.details;
  return new FedsynthError(code ?? "internal", `${what}: ${details}`, { hint, cause: err });
}

interface Explained {
  code: ErrorCode;
  message: string;
  hint: string;
}

/**
 * A connection that reached the coordinator's port but no gRPC answer: the two ends disagree about TLS or
 * about whom to trust. Nothing is wrong with the network then, and "not reachable" would send people
 * looking in the wrong place. What grpc-js reports (1.14, Node 20+), per case:
 *
 * - TLS, and the coordinator's certificate is not from the CA we trust (another consortium's credentials):
 *   "No connection established. Last error: Error: self-signed certificate in certificate chain. …";
 *   other chains give "unable to verify the first certificate", "unable to get local issuer certificate".
 * - plaintext (--insecure) to a coordinator serving TLS: the server drops the connection at the first
 *   bytes, before any HTTP/2 settings, and grpc-js says only "Last error: Failed to connect (<time>)".
 *   (Nothing listening says "connect ECONNREFUSED" instead, so the two stay apart.)
 * - TLS to a plaintext coordinator: OpenSSL reads the HTTP/2 reply as a TLS record,
 *   "…:SSL routines:ssl3_get_record:wrong version number:…".
 */
export function explainConnectionFailure(details: string, plaintext: boolean): Explained | null {
  const reason = lastTransportError(details);
  if (plaintext) {
    if (/^Failed to connect\b|Connection closed before starting HTTP\/2 handshake|ECONNRESET|socket hang up/i.test(reason)) {
      return {
        code: "failed-precondition",
        message: `the coordinator speaks TLS, and --insecure talks plaintext: it closed the connection without a gRPC answer (${reason})`,
        hint: "drop --insecure and pass --credentials with this consortium's credentials (a site agent uses the identity that fedsynth site enroll wrote to its --data-dir)",
      };
    }
    return null;
  }
  if (/pinned fingerprint/.test(reason)) {
    return {
      code: "unauthenticated",
      message: reason,
      hint: "ask the consortium operator for the coordinator's current certificate fingerprint; if it did change, enrol the site again with a new token",
    };
  }
  if (/wrong version number|packet length too long|unknown protocol/i.test(reason)) {
    return {
      code: "failed-precondition",
      message: `the coordinator does not speak TLS: it answered in plaintext, as a development coordinator started with --insecure does (${reason})`,
      hint: "start the coordinator with its consortium CA (without --insecure); for a development coordinator on loopback, pass --insecure instead of credentials",
    };
  }
  // Alerts are the coordinator refusing this side's certificate during the handshake, not the other way round.
  if (/alert (certificate required|unknown ca|bad certificate|certificate unknown|certificate revoked|certificate expired)/i.test(reason)) {
    return {
      code: "unauthenticated",
      message: `the coordinator refused this client's certificate during the TLS handshake (${reason})`,
      hint: "use credentials issued by this consortium's CA (fedsynth coordinator init, fedsynth operator issue or fedsynth site enroll)",
    };
  }
  if (/certificate has expired|certificate is not yet valid/i.test(reason)) {
    return {
      code: "unauthenticated",
      message: `the coordinator's certificate is outside its validity period (${reason})`,
      hint: "check this machine's clock; if it is right, the consortium operator must renew the coordinator's certificate",
    };
  }
  if (/does not match certificate's altnames/i.test(reason)) {
    return {
      code: "unauthenticated",
      message: `the coordinator's certificate is not issued for the address dialled (${reason})`,
      hint: "use a --coordinator host name or IP address the certificate names (fedsynth coordinator init --hostname/--ip set them)",
    };
  }
  if (/self[- ]signed certificate|unable to verify|unable to get (local )?issuer certificate|certificate signature failure|certificate verify failed|certificate/i.test(reason)) {
    return {
      code: "unauthenticated",
      message: `the coordinator's certificate is not from the CA in the credentials (${reason})`,
      hint: "use the credentials of this coordinator's consortium (their ca.pem must be the CA that issued its certificate), or check that --coordinator is the right coordinator",
    };
  }
  if (/handshake failure|alert|secure TLS connection/i.test(reason)) {
    return {
      code: "unauthenticated",
      message: `the TLS handshake with the coordinator failed (${reason})`,
      hint: "check that the credentials are this consortium's and that the coordinator serves TLS (not --insecure)",
    };
  }
  return null;
}

/**
 * "No connection established. Last error: Error: X. Resolution note: " → "X": OpenSSL's error codes
 * trimmed to their reason, grpc-js's timestamp dropped.
 */
function lastTransportError(details: string): string {
  const last = (/Last error: (?:Error: )?([\s\S]*?)(?:\.?\s*Resolution note:[\s\S]*)?$/.exec(details)?.[1] ?? details).trim();
  const openssl = /^[0-9A-F]+:error:[0-9A-F]+:SSL routines:[^:]*:([^:]+):/.exec(last);
  return (openssl ? openssl[1] : last).replace(/ \(\d{4}-\d\d-\d\dT[\d:.]+Z\)$/, "").replace(/\.$/, "").trim();
}
