/**
 * AgentService over gRPC: decodes what agents send into domain calls on the Coordinator and encodes what it
 * answers. Result chunks are reassembled here, bounded by the size the task announced.
 */
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import {
  ConnectResponseSchema, DownloadModelResponseSchema, EnrollResponseSchema,
  type ConnectRequest, type ConnectResponse, type DownloadModelRequest, type DownloadModelResponse, type EnrollRequest, type EnrollResponse,
  type ResultChunk, type SecAggUpload,
} from "../../gen/fedsynth/v1/agent_pb.js";
import { ChunkAssembler } from "./chunk-assembler.js";
import { COORDINATOR_VERSION, type Coordinator } from "../coordinator.js";
import type { AgentBound, SiteSession } from "../sessions.js";
import { declineReasonFromProto, studySpecToProto, taskToProto } from "../../shared/transport/convert.js";
import { toGrpcError } from "../../shared/transport/status.js";
import { bytesToVector } from "../../shared/util/vector-bytes.js";
import { CHUNK_BYTES } from "../../shared/transport/grpc-service.js";
import { FedsynthError } from "../../shared/errors.js";
import type { Logger } from "../../shared/telemetry/log.js";
import { peerIdentity } from "./peer.js";

export const HEARTBEAT_INTERVAL_MS = 10_000;

export function agentServiceHandlers(coordinator: Coordinator, log: Logger): grpc.UntypedServiceImplementation {
  return {
    async enroll(call: grpc.ServerUnaryCall<EnrollRequest, EnrollResponse>, callback: grpc.sendUnaryData<EnrollResponse>) {
      try {
        const r = call.request;
        if (!coordinator.sites.secure) {
          const site = coordinator.sites.enrollInsecure(r.siteName, r.agentVersion, r.signingPublicKey);
          callback(null, create(EnrollResponseSchema, { siteId: site.siteId, coordinatorVersion: COORDINATOR_VERSION }));
          return;
        }
        const enrolled = await coordinator.sites.enroll({
          siteName: r.siteName, agentVersion: r.agentVersion, token: r.enrollmentToken, csrPem: r.csrPem, signingPublicKey: r.signingPublicKey,
        });
        callback(null, create(EnrollResponseSchema, {
          siteId: enrolled.site.siteId, coordinatorVersion: COORDINATOR_VERSION, certificatePem: enrolled.certPem,
          caCertificatePem: enrolled.caPem, coordinatorFingerprint: enrolled.coordinatorFingerprint,
        }));
      } catch (err) {
        log.warn("enrolment refused", { site: call.request.siteName, error: FedsynthError.from(err).message });
        callback(toGrpcError(err));
      }
    },

    connect(call: grpc.ServerDuplexStream<ConnectRequest, ConnectResponse>) {
      new AgentStream(coordinator, call, log).run();
    },

    async downloadModel(call: grpc.ServerWritableStream<DownloadModelRequest, DownloadModelResponse>) {
      try {
        const site = coordinator.sites.secure ? coordinator.sites.authenticateSite(peerIdentity(call)).name : "";
        const { bytes, sha256 } = coordinator.model(call.request.modelId);
        // The agent sends its trace context in the call's metadata (traceparent), as any gRPC client would.
        await coordinator.telemetry.servingModel(site, call.request.modelId, metadataCarrier(call.metadata), async () => {
          for (let offset = 0; offset < bytes.byteLength || offset === 0; offset += CHUNK_BYTES) {
            const data = bytes.subarray(offset, Math.min(offset + CHUNK_BYTES, bytes.byteLength));
            const ok = call.write(create(DownloadModelResponseSchema, { offset: BigInt(offset), data, totalBytes: BigInt(bytes.byteLength), sha256 }));
            if (!ok) await new Promise((resolve) => call.once("drain", resolve));
            if (bytes.byteLength === 0) break;
          }
        });
        coordinator.telemetry.transfer("transmit", "model", site, bytes.byteLength);
        call.end();
      } catch (err) {
        call.destroy(Object.assign(new Error(String((err as Error).message)), toGrpcError(err)));
      }
    },
  };
}

/** One agent's Connect stream: the first message must be Hello; then heartbeats, progress, results, refusals. */
class AgentStream {
  private session?: SiteSession;
  private readonly results: ChunkAssembler;
  private readonly secagg: ChunkAssembler;

  constructor(private coordinator: Coordinator, private call: grpc.ServerDuplexStream<ConnectRequest, ConnectResponse>, private log: Logger) {
    const site = () => this.session?.siteName ?? "";
    const limit = (bytes: number | undefined, taskId: string) => bytes ?? `task ${taskId} is not assigned to site ${site()}`;
    this.results = new ChunkAssembler("result", (taskId) => limit(coordinator.expectedUpdateBytes(site(), taskId), taskId));
    this.secagg = new ChunkAssembler("secure-aggregation message", (taskId) => limit(coordinator.secAggMessageLimit(site(), taskId), taskId));
  }

  run(): void {
    this.call.on("data", (msg: ConnectRequest) => {
      try {
        this.handle(msg);
      } catch (err) {
        const e = FedsynthError.from(err);
        this.log.error("agent message failed", { site: this.session?.siteName, error: e.message });
        this.call.emit("error", toGrpcError(e));
      }
    });
    const done = () => {
      if (this.session) this.coordinator.detachSession(this.session);
      this.session = undefined;
    };
    this.call.on("end", () => {
      done();
      this.call.end();
    });
    this.call.on("cancelled", done);
    this.call.on("error", done);
  }

  private handle(msg: ConnectRequest): void {
    const m = msg.message;
    if (!this.session) {
      if (m.case !== "hello") throw new FedsynthError("failed-precondition", "the first message on a Connect stream must be Hello");
      // Who the site is comes from its certificate (or, in development mode, its registration); Hello only
      // names it, and a certificate may act only as its own site.
      this.coordinator.sites.authenticateSite(peerIdentity(this.call), m.value.siteName);
      this.open(m.value.siteName, m.value.agentVersion, m.value.epsilonCap > 0 ? { epsilon: m.value.epsilonCap, delta: m.value.deltaCap } : undefined);
      return;
    }
    const site = this.session.siteName;
    switch (m.case) {
      case "hello":
        throw new FedsynthError("failed-precondition", "Hello may be sent only once per stream");
      case "heartbeat":
        this.coordinator.touch(site);
        return;
      case "progress":
        this.log.debug("task progress", { site, task: m.value.taskId, fraction: m.value.fraction, message: m.value.message });
        this.coordinator.touch(site);
        return;
      case "resultChunk":
        this.onChunk(site, m.value);
        return;
      case "secaggUpload":
        this.onSecAgg(site, m.value);
        return;
      case "declined": {
        const d = m.value;
        this.coordinator.telemetry.received("decline", site, d.taskId, d.traceContext, () =>
          this.coordinator.decline(site, { taskId: d.taskId, studyId: d.studyId, reason: declineReasonFromProto(d.reason), message: d.message }));
        return;
      }
      case "failed": {
        const f = m.value;
        this.coordinator.telemetry.received("failure", site, f.taskId, f.traceContext, () => this.coordinator.fail(site, f.taskId, f.message));
        return;
      }
      case "invitationAnswer":
        this.coordinator.answerInvitation(site, {
          studyId: m.value.studyId, accepted: m.value.accepted,
          reason: m.value.accepted ? null : declineReasonFromProto(m.value.reason), message: m.value.message,
        });
        return;
      default:
        this.log.warn("unknown message from agent ignored", { site });
    }
  }

  private open(siteName: string, agentVersion: string, cap?: { epsilon: number; delta: number }): void {
    const call = this.call;
    const session: SiteSession = {
      siteName,
      connectedAt: Date.now(),
      send: (message: AgentBound) => {
        call.write(toProto(message));
        if (message.kind === "secagg-relay") this.coordinator.telemetry.transfer("transmit", "secagg", siteName, message.message.byteLength);
      },
      close: (reason: string) => {
        this.log.info("closing agent stream", { site: siteName, reason });
        call.end();
      },
    };
    this.session = session;
    call.write(create(ConnectResponseSchema, {
      message: { case: "welcome", value: { siteId: "", heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS, coordinatorVersion: COORDINATOR_VERSION } },
    }));
    this.coordinator.attachSession(session, agentVersion, cap);
  }

  private onChunk(site: string, chunk: ResultChunk): void {
    this.coordinator.telemetry.transfer("receive", "result", site, chunk.data.byteLength);
    const step = this.results.add(chunk.taskId, Number(chunk.offset), chunk.data, chunk.last, Number(chunk.totalBytes));
    if (step.kind === "more") return;
    if (step.kind === "refused") return this.ack(chunk.taskId, false, step.message);
    if (step.bytes.byteLength % 8 !== 0) return this.ack(chunk.taskId, false, `the result has ${step.bytes.byteLength} bytes, not a whole number of float64 values`);
    const verdict = this.coordinator.telemetry.received("result", site, chunk.taskId, chunk.traceContext, () => this.coordinator.submitResult(site, {
      taskId: chunk.taskId, update: bytesToVector(step.bytes), updateSha256: chunk.updateSha256,
      epsilon: chunk.epsilonCharged, delta: chunk.deltaCharged, signature: chunk.signature,
    }));
    this.ack(chunk.taskId, verdict.accepted, verdict.message);
  }

  private onSecAgg(site: string, chunk: SecAggUpload): void {
    this.coordinator.telemetry.transfer("receive", "secagg", site, chunk.data.byteLength);
    const step = this.secagg.add(chunk.taskId, Number(chunk.offset), chunk.data, chunk.last, Number(chunk.totalBytes));
    if (step.kind === "more") return;
    if (step.kind === "refused") return this.ack(chunk.taskId, false, step.message);
    const charge = chunk.chargeSignature.byteLength > 0 ? { epsilon: chunk.epsilonCharged, delta: chunk.deltaCharged, signature: chunk.chargeSignature } : undefined;
    const verdict = this.coordinator.telemetry.received(charge ? "masked input" : "secure-aggregation message", site, chunk.taskId, chunk.traceContext,
      () => this.coordinator.receiveSecAgg(site, chunk.taskId, step.bytes, charge));
    // Only a refusal is answered: the protocol's next message is the coordinator's answer to an accepted one.
    if (!verdict.accepted) this.ack(chunk.taskId, false, verdict.message);
  }

  private ack(taskId: string, accepted: boolean, message: string): void {
    this.call.write(toProto({ kind: "result-ack", taskId, accepted, message }));
  }
}

/** Call metadata as a trace-context carrier (its text values; traceparent and tracestate are text). */
function metadataCarrier(metadata: grpc.Metadata): Record<string, string> {
  const carrier: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata.getMap())) if (typeof v === "string") carrier[k] = v;
  return carrier;
}

function toProto(message: AgentBound): ConnectResponse {
  switch (message.kind) {
    case "invitation":
      return create(ConnectResponseSchema, {
        message: { case: "invitation", value: { study: studySpecToProto(message.study), answerByUnixMs: BigInt(message.answerBy) } },
      });
    case "task":
      return create(ConnectResponseSchema, { message: { case: "task", value: taskToProto(message.task) } });
    case "result-ack":
      return create(ConnectResponseSchema, { message: { case: "resultAck", value: { taskId: message.taskId, accepted: message.accepted, message: message.message } } });
    case "study-closed":
      return create(ConnectResponseSchema, { message: { case: "studyClosed", value: { studyId: message.studyId, state: message.state, message: message.message } } });
    case "secagg-relay":
      return create(ConnectResponseSchema, { message: { case: "secaggRelay", value: { taskId: message.taskId, message: message.message } } });
  }
}
