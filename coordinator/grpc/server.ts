/**
 * The coordinator's gRPC server: AgentService, OperatorService, grpc.health.v1 and server reflection, so
 * that grpcurl, Kubernetes probes and clients in any language can talk to it.
 */
import * as grpc from "@grpc/grpc-js";
import { toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { HealthImplementation, service as healthService } from "grpc-health-check";
import { ReflectionService } from "@grpc/reflection";
import { AgentService, file_fedsynth_v1_agent } from "../../gen/fedsynth/v1/agent_pb.js";
import { OperatorService, file_fedsynth_v1_operator } from "../../gen/fedsynth/v1/operator_pb.js";
import { file_fedsynth_v1_study } from "../../gen/fedsynth/v1/study_pb.js";
import { grpcServiceDefinition } from "../../shared/transport/grpc-service.js";
import { FedsynthError } from "../../shared/errors.js";
import type { Logger } from "../../shared/telemetry/log.js";
import type { Coordinator } from "../coordinator.js";
import { agentServiceHandlers } from "./agent-service.js";
import { operatorServiceHandlers } from "./operator-service.js";
import { serverCredentials } from "../../shared/crypto/pki/index.js";

export interface CoordinatorServer {
  /** The address actually bound (with the real port when 0 was asked for). */
  address: string;
  port: number;
  /** The grpc.health.v1 statuses this server answers with (a plaintext health-only server may share them). */
  health: HealthImplementation;
  shutdown(): Promise<void>;
}

export const SERVER_OPTIONS: grpc.ServerOptions = {
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.keepalive_permit_without_calls": 1,
  "grpc.http2.min_ping_interval_without_data_ms": 5_000,
};

export interface ServerTls {
  caPem: string;
  certPem: string;
  keyPem: string;
}

/**
 * With `tls`, mutual TLS: a client certificate is requested and, when presented, must verify against the
 * consortium CA; calls that need an identity (everything but Enroll and health) check it per call. Without
 * `tls`, plaintext (development on loopback; the CLI enforces that).
 */
export async function startCoordinatorServer(opts: { coordinator: Coordinator; listen: string; tls?: ServerTls; log: Logger; health?: HealthImplementation }): Promise<CoordinatorServer> {
  const { host, port } = parseListen(opts.listen);
  const server = new grpc.Server(SERVER_OPTIONS);
  server.addService(grpcServiceDefinition(AgentService), agentServiceHandlers(opts.coordinator, opts.log));
  server.addService(grpcServiceDefinition(OperatorService), operatorServiceHandlers(opts.coordinator));

  const health = opts.health ?? coordinatorHealth();
  health.addToServer(server);
  reflectionFor(healthService).addToServer(server);

  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, opts.tls ? serverCredentials(opts.tls) : grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  }).catch((err: Error) => {
    throw new FedsynthError("unavailable", `cannot listen on ${opts.listen}: ${err.message}`, {
      hint: "pick a free port, or stop the process that holds it",
    });
  });
  const address = `${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${bound}`;
  for (const service of ["", AgentService.typeName, OperatorService.typeName]) health.setStatus(service, "SERVING");
  return {
    address,
    port: bound,
    health,
    shutdown: () => {
      health.setStatus("", "NOT_SERVING");
      return shutdownServer(server, 3000);
    },
  };
}

/**
 * A replica that runs but does not drive (a standby waiting for the lease) answers NOT_SERVING for the
 * coordinator ("" and its services), so a load balancer or Kubernetes' readiness probe sends it nothing,
 * and SERVING for this one, so a liveness probe does not restart it for waiting.
 */
export const LIVENESS_SERVICE = "fedsynth.v1.Liveness";

/** The coordinator's grpc.health.v1 statuses before it serves: alive, not yet serving. */
export function coordinatorHealth(): HealthImplementation {
  return new HealthImplementation({
    "": "NOT_SERVING",
    [AgentService.typeName]: "NOT_SERVING",
    [OperatorService.typeName]: "NOT_SERVING",
    [LIVENESS_SERVICE]: "SERVING",
  });
}

/** Lets calls in flight finish for up to `graceMs`, then cuts whatever is left (open streams, Watch calls). */
export function shutdownServer(server: grpc.Server, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Server reflection over our own descriptors (from protobuf-es) plus the health service's. */
function reflectionFor(health: typeof healthService): ReflectionService {
  const ours = [file_fedsynth_v1_study, file_fedsynth_v1_agent, file_fedsynth_v1_operator].map((f) => Buffer.from(toBinary(FileDescriptorProtoSchema, f.proto)));
  const healthFiles = (Object.values(health)[0] as any).requestType.fileDescriptorProtos as Buffer[];
  return new ReflectionService({ fedsynth: { fileDescriptorProtos: [...ours, ...healthFiles] } } as any);
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+|):(\d+)$/.exec(listen.trim());
  if (!m) {
    throw new FedsynthError("invalid-argument", `--listen ${JSON.stringify(listen)} is not HOST:PORT`, { hint: "e.g. --listen 127.0.0.1:7070 or --listen 0.0.0.0:7070" });
  }
  const port = Number(m[2]);
  if (port > 65535) throw new FedsynthError("invalid-argument", `port ${port} is out of range`, { hint: "use 1-65535, or 0 for any free port" });
  return { host: m[1] || "0.0.0.0", port };
}
