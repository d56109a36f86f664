/** The agent's side of AgentService: outbound calls only, with protobuf kept inside this file. */
import * as grpc from "@grpc/grpc-js";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  AgentService, ConnectRequestSchema, EnrollRequestSchema, DownloadModelRequestSchema,
  type ConnectRequest, type ConnectResponse, type DownloadModelResponse, type EnrollResponse,
} from "../../gen/fedsynth/v1/agent_pb.js";
import { grpcClientConstructor, CHUNK_BYTES } from "../../shared/transport/grpc-service.js";
import { declineReasonToProto, studySpecFromProto, taskFromProto } from "../../shared/transport/convert.js";
import { fromGrpcError, type ChannelKind } from "../../shared/transport/status.js";
import { FedsynthError } from "../../shared/errors.js";
import { sha256Hex } from "../../shared/util/vector-bytes.js";
import type { DeclineReason, StudySpec, TaskAssignment } from "../../shared/federation/task.js";
import { countTransfer, injectCarrier, inSpan } from "../../shared/telemetry/otel.js";
import { SpanKind } from "@opentelemetry/api";

export const CLIENT_OPTIONS: grpc.ChannelOptions = {
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.keepalive_permit_without_calls": 1,
  "grpc.max_reconnect_backoff_ms": 5_000,
};

export type CoordinatorMessage =
  | { kind: "welcome"; heartbeatIntervalMs: number; coordinatorVersion: string }
  | { kind: "invitation"; study: StudySpec; answerBy: number }
  | { kind: "task"; task: TaskAssignment }
  | { kind: "result-ack"; taskId: string; accepted: boolean; message: string }
  | { kind: "study-closed"; studyId: string; state: string; message: string }
  | { kind: "secagg-relay"; taskId: string; message: Uint8Array }
  /** A message this agent could not decode (e.g. from a newer coordinator). */
  | { kind: "invalid"; taskId: string; message: string };

export interface AgentSession {
  onMessage(fn: (m: CoordinatorMessage) => void): void;
  /** Resolves when the coordinator ends the stream, rejects on a transport error. */
  closed: Promise<void>;
  sendHeartbeat(): void;
  sendProgress(taskId: string, fraction: number, message: string): void;
  sendDecline(taskId: string, studyId: string, reason: DeclineReason, message: string): void;
  sendFailed(taskId: string, message: string): void;
  sendInvitationAnswer(studyId: string, accepted: boolean, reason: DeclineReason | null, message: string): void;
  sendResult(r: { taskId: string; bytes: Uint8Array; sha256: string; epsilon: number; delta: number; signature: Uint8Array }): Promise<void>;
  /** A secure-aggregation message, in chunks; `charge` goes with a masked input. */
  sendSecAgg(taskId: string, bytes: Uint8Array, charge?: SecAggCharge): Promise<void>;
  end(): void;
}

export interface SecAggCharge {
  epsilon: number;
  delta: number;
  signature: Uint8Array;
}

export class AgentClient {
  private client: grpc.Client & Record<string, any>;
  /** Whether the channel is plaintext: a failed connection means something else then (see fromGrpcError). */
  private readonly channel: ChannelKind;

  /** Without credentials: plaintext (development mode on loopback only; the CLI enforces that). */
  constructor(address: string, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure()) {
    const Ctor = grpcClientConstructor(AgentService);
    this.client = new Ctor(address, credentials, CLIENT_OPTIONS) as any;
    this.channel = { plaintext: !credentials._isSecure() };
  }

  close(): void {
    this.client.close();
  }

  /** Registers the site: with a token and CSR it comes back with the site's certificate (mutual-TLS mode). */
  enroll(req: { siteName: string; agentVersion: string; signingPublicKey: Uint8Array; token?: string; csrPem?: string }): Promise<{
    siteId: string; coordinatorVersion: string; certificatePem: string; caCertificatePem: string; coordinatorFingerprint: string;
  }> {
    return new Promise((resolve, reject) => {
      this.client.enroll(create(EnrollRequestSchema, {
        siteName: req.siteName, agentVersion: req.agentVersion, signingPublicKey: req.signingPublicKey,
        enrollmentToken: req.token ?? "", csrPem: req.csrPem ?? "",
      }), { deadline: Date.now() + 10_000 },
      (err: grpc.ServiceError | null, res: EnrollResponse) => (err ? reject(fromGrpcError(err, "enrolment", this.channel)) : resolve(res)));
    });
  }

  openSession(siteName: string, agentVersion: string, cap?: { epsilon: number; delta: number }): AgentSession {
    const call: grpc.ClientDuplexStream<ConnectRequest, ConnectResponse> = this.client.connect();
    const listeners: ((m: CoordinatorMessage) => void)[] = [];
    const closed = new Promise<void>((resolve, reject) => {
      call.on("end", () => resolve());
      call.on("error", (err) => {
        const code = (err as grpc.ServiceError).code;
        if (code === grpc.status.CANCELLED) resolve();
        else reject(fromGrpcError(err, "connection to the coordinator", this.channel));
      });
    });
    call.on("data", (msg: ConnectResponse) => {
      let decoded: CoordinatorMessage | undefined;
      try {
        decoded = decode(msg);
      } catch (err) {
        const taskId = msg.message.case === "task" ? msg.message.value.taskId : "";
        decoded = { kind: "invalid", taskId, message: FedsynthError.from(err).message };
      }
      if (decoded?.kind === "secagg-relay") countTransfer("receive", "secagg", decoded.message.byteLength);
      if (decoded) for (const l of listeners) l(decoded);
    });
    const send = (message: MessageInitShape<typeof ConnectRequestSchema>["message"]) => call.write(create(ConnectRequestSchema, { message }));
    /** A large message in pieces below gRPC's message limit, waiting for the stream to drain as needed. */
    const writeChunks = async (kind: "result" | "secagg", bytes: Uint8Array, piece: (offset: number, data: Uint8Array, last: boolean, total: number) => MessageInitShape<typeof ConnectRequestSchema>["message"]) => {
      const total = bytes.byteLength;
      for (let offset = 0; ; offset += CHUNK_BYTES) {
        const end = Math.min(offset + CHUNK_BYTES, total);
        const last = end >= total;
        const ok = send(piece(offset, bytes.subarray(offset, end), last, total));
        countTransfer("transmit", kind, end - offset);
        if (last) break;
        if (!ok) {
          // A stream that closes meanwhile never drains: stop waiting, and say that it did not go.
          let ended = false;
          await Promise.race([new Promise((resolve) => call.once("drain", resolve)), closed.then(() => { ended = true; }, () => { ended = true; })]);
          if (ended) throw new FedsynthError("unavailable", "the connection to the coordinator closed while a message was being sent");
        }
      }
    };
    send({ case: "hello", value: { siteName, agentVersion, siteId: "", epsilonCap: cap?.epsilon ?? 0, deltaCap: cap?.delta ?? 0 } });
    return {
      onMessage: (fn) => listeners.push(fn),
      closed,
      sendHeartbeat: () => send({ case: "heartbeat", value: { sentAtUnixMs: BigInt(Date.now()) } }),
      sendProgress: (taskId, fraction, message) => send({ case: "progress", value: { taskId, fraction, message } }),
      // What the agent sends for a task carries the active span's trace context (empty when telemetry is off).
      sendDecline: (taskId, studyId, reason, message) => send({ case: "declined", value: { taskId, studyId, reason: declineReasonToProto(reason), message, traceContext: injectCarrier() } }),
      sendFailed: (taskId, message) => send({ case: "failed", value: { taskId, message, traceContext: injectCarrier() } }),
      sendInvitationAnswer: (studyId, accepted, reason, message) =>
        send({ case: "invitationAnswer", value: { studyId, accepted, reason: reason ? declineReasonToProto(reason) : 0, message } }),
      sendResult: (r) => writeChunks("result", r.bytes, (offset, data, last, total) => ({
        case: "resultChunk",
        value: {
          taskId: r.taskId, offset: BigInt(offset), data, last, updateSha256: last ? r.sha256 : "", totalBytes: BigInt(last ? total : 0),
          epsilonCharged: last ? r.epsilon : 0, deltaCharged: last ? r.delta : 0, signature: last ? r.signature : new Uint8Array(0),
          traceContext: last ? injectCarrier() : {},
        },
      })),
      sendSecAgg: (taskId, bytes, charge) => writeChunks("secagg", bytes, (offset, data, last, total) => ({
        case: "secaggUpload",
        value: {
          taskId, offset: BigInt(offset), data, last, totalBytes: BigInt(last ? total : 0), traceContext: last ? injectCarrier() : {},
          ...(last && charge ? { epsilonCharged: charge.epsilon, deltaCharged: charge.delta, chargeSignature: charge.signature } : {}),
        },
      })),
      end: () => call.end(),
    };
  }

  /** Downloads a model in chunks and checks it against the hash the task announced. */
  downloadModel(modelId: string, sha256: string): Promise<Uint8Array> {
    return inSpan("fedsynth.model.download", { kind: SpanKind.CLIENT, attributes: { "fedsynth.model.id": modelId } }, undefined, () => this.download(modelId, sha256));
  }

  private download(modelId: string, sha256: string): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      const parts: Buffer[] = [];
      // The call's metadata carries the active span's W3C trace context (traceparent), when telemetry is on.
      const metadata = new grpc.Metadata();
      for (const [k, v] of Object.entries(injectCarrier())) metadata.set(k, v);
      const call: grpc.ClientReadableStream<DownloadModelResponse> = this.client.downloadModel(create(DownloadModelRequestSchema, { modelId }), metadata);
      call.on("data", (chunk: DownloadModelResponse) => parts.push(Buffer.from(chunk.data)));
      call.on("error", (err) => reject(fromGrpcError(err, `download of model ${modelId}`, this.channel)));
      call.on("end", () => {
        const bytes = Buffer.concat(parts);
        countTransfer("receive", "model", bytes.byteLength);
        if (sha256 && sha256Hex(bytes) !== sha256) {
          reject(new FedsynthError("invalid-argument", `model ${modelId} does not match the hash its task announced`));
          return;
        }
        resolve(new Uint8Array(bytes));
      });
    });
  }
}

function decode(msg: ConnectResponse): CoordinatorMessage | undefined {
  const m = msg.message;
  switch (m.case) {
    case "welcome":
      return { kind: "welcome", heartbeatIntervalMs: m.value.heartbeatIntervalMs, coordinatorVersion: m.value.coordinatorVersion };
    case "task":
      return { kind: "task", task: taskFromProto(m.value) };
    case "invitation":
      if (!m.value.study) throw new FedsynthError("invalid-argument", "an invitation without a study");
      return { kind: "invitation", study: studySpecFromProto(m.value.study), answerBy: Number(m.value.answerByUnixMs) };
    case "resultAck":
      return { kind: "result-ack", taskId: m.value.taskId, accepted: m.value.accepted, message: m.value.message };
    case "studyClosed":
      return { kind: "study-closed", studyId: m.value.studyId, state: m.value.state, message: m.value.message };
    case "secaggRelay":
      return { kind: "secagg-relay", taskId: m.value.taskId, message: m.value.message };
    default:
      return undefined;
  }
}
