/**
 * The one place that loads @peculiar/x509, so that its reflect polyfill requirement and its crypto
 * provider are set up exactly once, before any use. Everything in pki/ imports the library from here.
 */
import "./reflect-shim.js";
import * as x509 from "@peculiar/x509";
import { webcrypto } from "node:crypto";

// The library's typings name the DOM's Crypto, which this project's lib settings do not load.
x509.cryptoProvider.set(webcrypto as never);

export { x509, webcrypto };

/** ECDSA P-256 with SHA-256: what OpenSSL, BoringSSL and grpc-js all accept without configuration. */
export const EC_KEY_ALGORITHM = { name: "ECDSA", namedCurve: "P-256" } as const;
export const EC_SIGNING_ALGORITHM = { name: "ECDSA", hash: "SHA-256" } as const;
