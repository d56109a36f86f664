/**
 * Real grpc-js servers and clients on 127.0.0.1 over TLS, with a tiny generic service (raw bytes, no
 * protobuf), to check what the TLS layer and the interceptor really let through.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { FedsynthError } from "../../errors.js";
import {
  createConsortiumCa, issueServerCertificate, createSiteKeyAndCsr, issueSiteCertificate, issueOperatorCertificate,
  serverCredentials, channelCredentials, clientCertificateInterceptor, peerIdentityOfCall, certificateFingerprint,
  type ConsortiumCa, type PeerIdentity,
} from "./index.js";

const DAY = 86_400_000;
const bytes = (b: Buffer) => b;
const unary = (name: string) => ({
  path: `/test.Echo/${name}`, requestStream: false, responseStream: false,
  requestSerialize: bytes, requestDeserialize: bytes, responseSerialize: bytes, responseDeserialize: bytes,
});
const SERVICE = {
  Protected: unary("Protected"),
  Public: unary("Public"),
  AdminOnly: unary("AdminOnly"),
  Chat: { ...unary("Chat"), path: "/test.Echo/Chat", requestStream: true, responseStream: true },
} satisfies grpc.ServiceDefinition;
const EchoClient = grpc.makeGenericClientConstructor(SERVICE, "Echo");
type Client = InstanceType<typeof EchoClient> & Record<string, any>;

interface Pki {
  ca: ConsortiumCa;
  server: { certPem: string; keyPem: string; fingerprintSha256: string };
  site: { certPem: string; keyPem: string; serialHex: string };
  expiredSite: { certPem: string; keyPem: string };
  operator: { certPem: string; keyPem: string };
  foreignSite: { certPem: string; keyPem: string };
  foreignCa: ConsortiumCa;
}

async function siteCertificate(ca: ConsortiumCa, siteId: string, validity: { notBefore?: Date; notAfter?: Date } = {}) {
  const { keyPem, csrPem } = await createSiteKeyAndCsr(siteId);
  return { ...(await issueSiteCertificate(ca, csrPem, { siteId, ...validity })), keyPem };
}

let pki: Pki;
/** Calls the handlers actually ran, by method: a refused call must never get here. */
const handled: Record<string, number> = {};

function handlers(caPem: string): grpc.UntypedServiceImplementation {
  const who = (call: grpc.ServerUnaryCall<Buffer, Buffer>): string => {
    try {
      return JSON.stringify(peerIdentityOfCall(call, { caPem }));
    } catch (err) {
      return JSON.stringify({ none: (err as FedsynthError).message });
    }
  };
  const count = (name: string) => (handled[name] = (handled[name] ?? 0) + 1);
  return {
    Protected: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => (count("Protected"), cb(null, Buffer.from(who(call)))),
    Public: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => (count("Public"), cb(null, Buffer.from(who(call)))),
    AdminOnly: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => (count("AdminOnly"), cb(null, Buffer.from(who(call)))),
    Chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      count("Chat");
      call.on("data", (m: Buffer) => call.write(m));
      call.on("end", () => call.end());
    },
  };
}

async function startServer(credentials: grpc.ServerCredentials, caPem: string): Promise<{ port: number; server: grpc.Server }> {
  const server = new grpc.Server({
    interceptors: [clientCertificateInterceptor({
      caPem,
      publicMethods: ["/test.Echo/Public"],
      authorize: (id, path) => (path === "/test.Echo/AdminOnly" && id.kind !== "operator" ? "only operators may" : null),
    })],
  });
  server.addService(SERVICE, handlers(caPem));
  const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", credentials, (err, p) => (err ? reject(err) : resolve(p))));
  return { port, server };
}

function call(client: Client, method: string): Promise<Buffer> {
  return new Promise((resolve, reject) => client[method](Buffer.from("ping"), { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, res: Buffer) => (err ? reject(err) : resolve(res))));
}

function identityFrom(res: Buffer): PeerIdentity & { none?: string } {
  return JSON.parse(res.toString());
}

async function failure(p: Promise<unknown>): Promise<grpc.ServiceError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err, "the call should have failed").not.toBeNull();
  return err as grpc.ServiceError;
}

function chat(client: Client): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const got: string[] = [];
    const stream = client.Chat({ deadline: Date.now() + 10_000 });
    stream.on("data", (m: Buffer) => got.push(m.toString()));
    stream.on("error", reject);
    stream.on("end", () => resolve(got));
    stream.write(Buffer.from("one"));
    stream.write(Buffer.from("two"));
    stream.end();
  });
}

const clients: Client[] = [];
function client(port: number, credentials: grpc.ChannelCredentials): Client {
  const c = new EchoClient(`127.0.0.1:${port}`, credentials) as Client;
  clients.push(c);
  return c;
}

/** Bypasses channelCredentials' own checks, to see what the server does with a client it should refuse. */
function rawCredentials(caPem: string, cert?: { certPem: string; keyPem: string }): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(Buffer.from(caPem), cert ? Buffer.from(cert.keyPem) : null, cert ? Buffer.from(cert.certPem) : null);
}

let port: number;
const servers: grpc.Server[] = [];

beforeAll(async () => {
  const ca = await createConsortiumCa({ name: "Test Consortium CA" });
  const foreignCa = await createConsortiumCa({ name: "Another Consortium CA" });
  pki = {
    ca,
    foreignCa,
    server: await issueServerCertificate(ca, { hostnames: [], includeLoopback: true }),
    site: await siteCertificate(ca, "cleveland"),
    expiredSite: await siteCertificate(ca, "hungary", { notBefore: new Date(Date.now() - 30 * DAY), notAfter: new Date(Date.now() - DAY) }),
    operator: await issueOperatorCertificate(ca, { name: "alice", role: "operator" }),
    // The same site id, certified by another consortium's CA.
    foreignSite: await siteCertificate(foreignCa, "cleveland"),
  };
  const started = await startServer(serverCredentials({ caPem: ca.certPem, certPem: pki.server.certPem, keyPem: pki.server.keyPem }), ca.certPem);
  port = started.port;
  servers.push(started.server);
});

afterAll(() => {
  for (const c of clients) c.close();
  for (const s of servers) s.forceShutdown();
});

describe("one TLS port, client certificates optional at TLS and enforced per method", () => {
  it("accepts a site certificate from our CA and tells the handler which site is calling", async () => {
    const before = handled.Protected ?? 0;
    const c = client(port, channelCredentials({ caPem: pki.ca.certPem, certPem: pki.site.certPem, keyPem: pki.site.keyPem }));
    const id = identityFrom(await call(c, "Protected"));
    expect(id).toMatchObject({ kind: "site", id: "cleveland", serialHex: pki.site.serialHex, fingerprintSha256: certificateFingerprint(pki.site.certPem) });
    expect(handled.Protected).toBe(before + 1);
    expect(await chat(c)).toEqual(["one", "two"]);
  });

  it("lets a client without a certificate call a public method (enrolment) but refuses protected ones before their handler runs", async () => {
    const c = client(port, channelCredentials({ caPem: pki.ca.certPem }));
    expect(identityFrom(await call(c, "Public")).none).toMatch(/no verified client certificate/);

    const before = { Protected: handled.Protected ?? 0, Chat: handled.Chat ?? 0 };
    const err = await failure(call(c, "Protected"));
    expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(err.details).toMatch(/no verified client certificate: none was presented/);
    expect(err.metadata.get("fedsynth-code")).toEqual(["unauthenticated"]);
    expect(String(err.metadata.get("fedsynth-hint-bin")[0])).toMatch(/enrolling/);

    const streamErr = await failure(chat(c));
    expect(streamErr.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(handled.Protected ?? 0).toBe(before.Protected);
    expect(handled.Chat ?? 0).toBe(before.Chat);
  });

  it("treats a certificate from another CA as no certificate", async () => {
    const c = client(port, rawCredentials(pki.ca.certPem, pki.foreignSite));
    const err = await failure(call(c, "Protected"));
    expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(err.details).toMatch(/not issued by this consortium's CA/);
    // Still allowed to enrol: the certificate is merely not believed.
    expect(identityFrom(await call(c, "Public")).none).toMatch(/no verified client certificate/);
  });

  it("refuses an expired certificate from our CA", async () => {
    const c = client(port, rawCredentials(pki.ca.certPem, pki.expiredSite));
    const err = await failure(call(c, "Protected"));
    expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(err.details).toMatch(/no verified client certificate/);
  });

  it("refuses the coordinator's own server certificate used as a client certificate", async () => {
    const c = client(port, rawCredentials(pki.ca.certPem, pki.server));
    expect((await failure(call(c, "Protected"))).code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it("applies the role check after authentication", async () => {
    const asSite = client(port, channelCredentials({ caPem: pki.ca.certPem, certPem: pki.site.certPem, keyPem: pki.site.keyPem }));
    const before = handled.AdminOnly ?? 0;
    const err = await failure(call(asSite, "AdminOnly"));
    expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(err.details).toBe("site cleveland may not call /test.Echo/AdminOnly: only operators may");
    expect(handled.AdminOnly ?? 0).toBe(before);

    const asOperator = client(port, channelCredentials({ caPem: pki.ca.certPem, certPem: pki.operator.certPem, keyPem: pki.operator.keyPem }));
    expect(identityFrom(await call(asOperator, "AdminOnly"))).toMatchObject({ kind: "operator", id: "alice" });
  });
});

describe("channelCredentials", () => {
  it("connects when the pinned fingerprint is the coordinator's, or its CA's", async () => {
    for (const pinned of [pki.server.fingerprintSha256, certificateFingerprint(pki.ca.certPem).replace(/:/g, "").toLowerCase()]) {
      const c = client(port, channelCredentials({ caPem: pki.ca.certPem, certPem: pki.site.certPem, keyPem: pki.site.keyPem, pinnedFingerprint: pinned }));
      expect(identityFrom(await call(c, "Protected")).id).toBe("cleveland");
    }
  });

  it("fails the connection with a clear error when the pinned fingerprint does not match", async () => {
    const wrong = certificateFingerprint(pki.foreignCa.certPem);
    const c = client(port, channelCredentials({ caPem: pki.ca.certPem, pinnedFingerprint: wrong }));
    const before = handled.Public ?? 0;
    const err = await failure(call(c, "Public"));
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
    expect(err.details).toContain(`does not match the pinned fingerprint ${wrong}`);
    expect(err.details).toContain(pki.server.fingerprintSha256);
    expect(handled.Public ?? 0).toBe(before);
  });

  it("still checks the host name when a fingerprint is pinned", async () => {
    const elsewhere = await issueServerCertificate(pki.ca, { hostnames: ["coord.example.org"], includeLoopback: false });
    const started = await startServer(serverCredentials({ caPem: pki.ca.certPem, certPem: elsewhere.certPem, keyPem: elsewhere.keyPem }), pki.ca.certPem);
    servers.push(started.server);
    const c = client(started.port, channelCredentials({ caPem: pki.ca.certPem, pinnedFingerprint: elsewhere.fingerprintSha256 }));
    const err = await failure(call(c, "Public"));
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
    expect(err.details).toMatch(/IP: 127\.0\.0\.1 is not in the cert's list/);
  });

  it("refuses a coordinator whose certificate is not from the consortium CA", async () => {
    const c = client(port, channelCredentials({ caPem: pki.foreignCa.certPem }));
    const err = await failure(call(c, "Public"));
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
  });

  it("says locally what is wrong with this side's own certificate", () => {
    const thrown = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        expect(e).toBeInstanceOf(FedsynthError);
        return e as FedsynthError;
      }
      throw new Error("nothing thrown");
    };
    const expired = thrown(() => channelCredentials({ caPem: pki.ca.certPem, ...pki.expiredSite }));
    expect(expired.code).toBe("unauthenticated");
    expect(expired.message).toMatch(/fedsynth:site:hungary expired on/);
    expect(thrown(() => channelCredentials({ caPem: pki.ca.certPem, ...pki.foreignSite })).message).toMatch(/not by this consortium's CA/);
    expect(thrown(() => channelCredentials({ caPem: pki.ca.certPem, certPem: pki.site.certPem, keyPem: pki.operator.keyPem })).message).toMatch(/private key does not belong/);
    expect(thrown(() => channelCredentials({ caPem: pki.ca.certPem, certPem: pki.site.certPem })).message).toMatch(/needs its private key/);
    expect(thrown(() => channelCredentials({ caPem: pki.ca.certPem, pinnedFingerprint: "sha256:abc" })).message).toMatch(/not a SHA-256 certificate fingerprint/);
  });
});

describe("serverCredentials with client certificates required", () => {
  it("refuses certificate-less clients at the TLS layer, even for public methods, and accepts our sites", async () => {
    const started = await startServer(serverCredentials({ caPem: pki.ca.certPem, certPem: pki.server.certPem, keyPem: pki.server.keyPem, clientCertificates: "required" }), pki.ca.certPem);
    servers.push(started.server);
    const before = handled.Public ?? 0;
    const anonymous = client(started.port, channelCredentials({ caPem: pki.ca.certPem }));
    expect((await failure(call(anonymous, "Public"))).code).toBe(grpc.status.UNAVAILABLE);
    const foreign = client(started.port, rawCredentials(pki.ca.certPem, pki.foreignSite));
    expect((await failure(call(foreign, "Public"))).code).toBe(grpc.status.UNAVAILABLE);
    expect(handled.Public ?? 0).toBe(before);
    const site = client(started.port, channelCredentials({ caPem: pki.ca.certPem, certPem: pki.site.certPem, keyPem: pki.site.keyPem }));
    expect(identityFrom(await call(site, "Protected")).id).toBe("cleveland");
  });

  it("refuses to start with a key that does not match the certificate", () => {
    expect(() => serverCredentials({ caPem: pki.ca.certPem, certPem: pki.server.certPem, keyPem: pki.site.keyPem })).toThrow(/private key does not belong/);
    expect(() => serverCredentials({ caPem: pki.foreignCa.certPem, certPem: pki.server.certPem, keyPem: pki.server.keyPem })).toThrow(/not by this consortium's CA/);
  });
});

describe("clientCertificateInterceptor", () => {
  it("refuses malformed public method names at set-up", () => {
    expect(() => clientCertificateInterceptor({ caPem: pki.ca.certPem, publicMethods: ["Enroll"] })).toThrow(/is not "\/package.Service\/Method"/);
  });
});
