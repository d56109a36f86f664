/** ECDSA P-256 key pairs as PEM, and PEM keys back into the forms WebCrypto and node:crypto need. */
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { webcrypto, EC_KEY_ALGORITHM } from "./x509-lib.js";
import { invalidArgument } from "./errors.js";

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

export interface KeyPairPem {
  /** PKCS#8 PEM ("BEGIN PRIVATE KEY"): what OpenSSL, grpc-js and every TLS stack read. */
  keyPem: string;
  /** SubjectPublicKeyInfo PEM ("BEGIN PUBLIC KEY"). */
  publicKeyPem: string;
}

export interface GeneratedKeyPair extends KeyPairPem {
  keys: CryptoKeyPair;
}

export async function generateKeyPair(): Promise<GeneratedKeyPair> {
  const keys = (await webcrypto.subtle.generateKey(EC_KEY_ALGORITHM, true, ["sign", "verify"])) as CryptoKeyPair;
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
  const spki = Buffer.from(await webcrypto.subtle.exportKey("spki", keys.publicKey));
  return { keys, keyPem: toPem("PRIVATE KEY", pkcs8), publicKeyPem: toPem("PUBLIC KEY", spki) };
}

/**
 * Reads a P-256 private key, in PKCS#8 or OpenSSL's older "EC PRIVATE KEY" form (so that a CA made
 * with `openssl ecparam -genkey` works too). `what` names the key in errors.
 */
export function readPrivateKey(keyPem: string, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw invalidArgument(`${what} is not a readable PEM private key (${(err as Error).message})`,
      "pass the PEM file the key was written to (it starts with -----BEGIN PRIVATE KEY-----)", err);
  }
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    const kind = key.asymmetricKeyType === "ec" ? `EC ${key.asymmetricKeyDetails?.namedCurve}` : key.asymmetricKeyType;
    throw invalidArgument(`${what} is a ${kind} key; fedsynth uses ECDSA P-256 keys only`,
      "create the key with fedsynth, or with: openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256");
  }
  return key;
}

/** The private key as a WebCrypto signing key, for the certificate generator. */
export async function importSigningKey(keyPem: string, what: string): Promise<CryptoKey> {
  const der = readPrivateKey(keyPem, what).export({ type: "pkcs8", format: "der" });
  return webcrypto.subtle.importKey("pkcs8", der, EC_KEY_ALGORITHM, false, ["sign"]);
}

/** DER SubjectPublicKeyInfo of the public half of a private key, to compare with a certificate's. */
export function publicKeyDerOf(key: KeyObject): Buffer {
  return createPublicKey(key).export({ type: "spki", format: "der" });
}

export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}
