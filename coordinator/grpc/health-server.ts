/**
 * A second, plaintext gRPC server that serves grpc.health.v1 and nothing else, for probes that cannot speak
 * TLS: Kubernetes' native `grpc:` probes do not, and the coordinator's main port is mutual TLS. It shares
 * the main server's HealthImplementation, so it answers exactly what the main port answers (NOT_SERVING as
 * soon as the coordinator starts shutting down). No agent or operator service, no reflection: nothing on it
 * reads or changes consortium state, so it carries no identity and needs none.
 */
import * as grpc from "@grpc/grpc-js";
import type { HealthImplementation } from "grpc-health-check";
import { FedsynthError } from "../../shared/errors.js";
import { parseListen, shutdownServer } from "./server.js";

export interface HealthServer {
  /** The address actually bound (with the real port when 0 was asked for). */
  address: string;
  port: number;
  shutdown(): Promise<void>;
}

/** HOST:PORT of --health-listen, with an error that names that flag (parseListen's names --listen). */
export function checkHealthListen(listen: string, flag = "--health-listen"): { host: string; port: number } {
  try {
    return parseListen(listen);
  } catch (err) {
    throw new FedsynthError("invalid-argument", `${flag} ${JSON.stringify(listen)} is not HOST:PORT with a valid port`, {
      hint: `e.g. ${flag} 0.0.0.0:8081 (a port of its own, not the --listen port)`, cause: err,
    });
  }
}

export async function startHealthServer(opts: { listen: string; health: HealthImplementation; flag?: string }): Promise<HealthServer> {
  const flag = opts.flag ?? "--health-listen";
  const { host, port } = checkHealthListen(opts.listen, flag);
  const server = new grpc.Server();
  opts.health.addToServer(server);
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  }).catch((err: Error) => {
    throw new FedsynthError("unavailable", `cannot serve health on ${flag} ${opts.listen}: ${err.message}`, {
      hint: "pick a free port (another than --listen), or stop the process that holds it",
    });
  });
  const address = `${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${bound}`;
  return {
    address,
    port: bound,
    // Open Watch streams would hold a graceful shutdown forever; they have had their NOT_SERVING by now.
    shutdown: () => shutdownServer(server, 1000),
  };
}
