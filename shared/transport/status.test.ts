import { describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { fromGrpcError, toGrpcError } from "./status.js";
import { FedsynthError } from "../errors.js";

/** A client-side error as grpc-js builds it for a call that never got a connection. */
function unavailable(lastError: string): grpc.ServiceError {
  const details = `No connection established. Last error: ${lastError}. Resolution note: `;
  return Object.assign(new Error(`14 UNAVAILABLE: ${details}`), { code: grpc.status.UNAVAILABLE, details, metadata: new grpc.Metadata() });
}

// The transport errors below are the ones grpc-js 1.14 reported when the situations were run for real
// (test/identity.test.ts runs the first two through the CLI).
const FOREIGN_CA = "Error: self-signed certificate in certificate chain";
const PLAINTEXT_TO_TLS = "Failed to connect (2026-12-01T07:14:47.119Z)";
const TLS_TO_PLAINTEXT = "Error: 800CEB4B2A7F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/openssl/openssl/ssl/record/ssl3_record.c:350:\n";
const NOTHING_LISTENS = "Error: connect ECONNREFUSED 127.0.0.1:1";

describe("fromGrpcError: connections that reached a coordinator but no gRPC answer", () => {
  it("says the coordinator's certificate is not from the CA in the credentials", () => {
    const e = fromGrpcError(unavailable(FOREIGN_CA), "list sites");
    expect(e.code).toBe("unauthenticated");
    expect(e.message).toBe("list sites: the coordinator's certificate is not from the CA in the credentials (self-signed certificate in certificate chain)");
    expect(e.hint).toMatch(/use the credentials of this coordinator's consortium/);
    for (const other of ["Error: unable to verify the first certificate", "Error: unable to get local issuer certificate"]) {
      expect(fromGrpcError(unavailable(other), "list sites").message).toMatch(/is not from the CA in the credentials/);
    }
  });

  it("says the coordinator speaks TLS when a plaintext channel is dropped, and only then", () => {
    const e = fromGrpcError(unavailable(PLAINTEXT_TO_TLS), "list sites", { plaintext: true });
    expect(e.code).toBe("failed-precondition");
    expect(e.message).toBe("list sites: the coordinator speaks TLS, and --insecure talks plaintext: it closed the connection without a gRPC answer (Failed to connect)");
    expect(e.hint).toMatch(/^drop --insecure and pass --credentials/);
    // Over TLS the same words mean something else: no guess then.
    expect(fromGrpcError(unavailable(PLAINTEXT_TO_TLS), "list sites", { plaintext: false }).message).toMatch(/the coordinator is not reachable/);
  });

  it("says the coordinator does not speak TLS when a TLS channel gets plaintext back", () => {
    const e = fromGrpcError(unavailable(TLS_TO_PLAINTEXT), "list sites");
    expect(e.message).toBe("list sites: the coordinator does not speak TLS: it answered in plaintext, as a development coordinator started with --insecure does (wrong version number)");
    expect(e.hint).toMatch(/without --insecure/);
  });

  it("keeps the pinned-fingerprint refusal's own words, and tells expiry and address mismatches apart from a foreign CA", () => {
    const pinned = fromGrpcError(unavailable("Error: the coordinator's certificate does not match the pinned fingerprint AA:BB: it presented CC issued by DD; someone may be intercepting the connection"), "connection to the coordinator");
    expect(pinned.code).toBe("unauthenticated");
    expect(pinned.message).toMatch(/^connection to the coordinator: the coordinator's certificate does not match the pinned fingerprint AA:BB/);
    expect(fromGrpcError(unavailable("Error: certificate has expired"), "x").message).toMatch(/outside its validity period/);
    expect(fromGrpcError(unavailable("Error: Hostname/IP does not match certificate's altnames: IP: 10.0.0.9 is not in the cert's list: 127.0.0.1"), "x").message)
      .toMatch(/not issued for the address dialled/);
  });

  it("still says 'not reachable' when nothing listens, and leaves the coordinator's own errors alone", () => {
    for (const plaintext of [true, false]) {
      const e = fromGrpcError(unavailable(NOTHING_LISTENS), "list sites", { plaintext });
      expect(e.code).toBe("unavailable");
      expect(e.message).toMatch(/^list sites: the coordinator is not reachable \(.*ECONNREFUSED/);
      expect(e.hint).toBe("check the --coordinator address and that the coordinator is running");
    }
    // An "unavailable" the coordinator sent itself (it has a fedsynth code) is not a transport failure.
    const sent = toGrpcError(new FedsynthError("unavailable", "the certificate store is busy", { hint: "try again" }));
    expect(fromGrpcError(Object.assign(new Error("x"), sent), "list sites").message).not.toMatch(/not from the CA/);
  });

  it("passes the coordinator's message and hint through with one prefix", () => {
    const sent = toGrpcError(new FedsynthError("permission-denied", "site cleveland's certificate cannot use the operator API", { hint: "use operator credentials" }));
    const e = fromGrpcError(Object.assign(new Error("x"), sent), "list sites");
    expect(e.code).toBe("permission-denied");
    expect(e.message).toBe("list sites: site cleveland's certificate cannot use the operator API");
    expect(e.hint).toBe("use operator credentials");
  });
});
