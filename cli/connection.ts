/**
 * How operator and auditor commands reach the coordinator: mutual TLS with the credentials that
 * `coordinator init` (or `operator issue`) wrote, or plaintext on loopback for development.
 */
import type { Command } from "commander";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { FedsynthError } from "../shared/errors.js";
import { requireLoopbackForPlaintext } from "../shared/transport/loopback.js";
import { channelCredentials } from "../shared/crypto/pki/index.js";
import { OperatorClient } from "./operator-client.js";

export interface ConnectionOptions {
  coordinator: string;
  credentials?: string;
  insecure: boolean;
}

export const CREDENTIALS_ENV = "FEDSYNTH_CREDENTIALS";

export function addConnectionOptions(cmd: Command): Command {
  return cmd
    .requiredOption("--coordinator <host:port>", "the coordinator's address")
    .option("--credentials <dir>", `operator or auditor credentials: a directory with ca.pem, cert.pem and key.pem (default: $${CREDENTIALS_ENV})`)
    .option("--insecure", "plaintext gRPC to a development coordinator on loopback", false);
}

/** The files of a credentials directory (as written by `coordinator init` and `operator issue`). */
export function readCredentials(dir: string): { caPem: string; certPem: string; keyPem: string } {
  const read = (name: string) => {
    const path = join(dir, name);
    if (!existsSync(path)) {
      throw new FedsynthError("not-found", `the credentials directory ${dir} has no ${name}`, {
        hint: "use the directory that fedsynth coordinator init wrote (DATA_DIR/operator) or that fedsynth operator issue wrote",
      });
    }
    return readFileSync(path, "utf8");
  };
  return { caPem: read("ca.pem"), certPem: read("cert.pem"), keyPem: read("key.pem") };
}

export function operatorCredentials(opts: ConnectionOptions): grpc.ChannelCredentials {
  if (opts.insecure) {
    requireLoopbackForPlaintext(opts.coordinator, "--coordinator");
    return grpc.credentials.createInsecure();
  }
  const dir = opts.credentials ?? process.env[CREDENTIALS_ENV];
  if (!dir) {
    throw new FedsynthError("invalid-argument", "no credentials to reach the coordinator with", {
      hint: `pass --credentials DIR (or set ${CREDENTIALS_ENV}); for a development coordinator on loopback, pass --insecure`,
    });
  }
  return channelCredentials(readCredentials(resolve(dir)));
}

export async function withOperator<T>(opts: ConnectionOptions, fn: (c: OperatorClient) => Promise<T>): Promise<T> {
  const client = new OperatorClient(opts.coordinator, operatorCredentials(opts));
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}
