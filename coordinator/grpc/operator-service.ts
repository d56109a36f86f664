/** OperatorService over gRPC: studies, rounds, sites and model export for consortium operators. */
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import {
  CreateStudyResponseSchema, StartStudyResponseSchema, CancelStudyResponseSchema, ListStudiesResponseSchema,
  GetStudyResponseSchema, ListSitesResponseSchema, ExportModelResponseSchema, StudySchema, StudyState as StudyStateMsg,
  type Study,
} from "../../gen/fedsynth/v1/operator_pb.js";
import type { Coordinator, StudyDetail } from "../coordinator.js";
import type { StudyRecord, StudyState } from "../store/records.js";
import { toGrpcError } from "../../shared/transport/status.js";
import { CHUNK_BYTES } from "../../shared/transport/grpc-service.js";
import { sha256Hex } from "../../shared/util/vector-bytes.js";

const STATES: Record<StudyState, StudyStateMsg> = {
  created: StudyStateMsg.CREATED,
  running: StudyStateMsg.RUNNING,
  completed: StudyStateMsg.COMPLETED,
  failed: StudyStateMsg.FAILED,
  cancelled: StudyStateMsg.CANCELLED,
};

function studyToProto(study: StudyRecord, detail?: StudyDetail): Study {
  return create(StudySchema, {
    studyId: study.studyId, name: study.name, engine: study.engine, epsilon: study.epsilon, delta: study.delta,
    rounds: study.rounds, sites: study.participants.map((p) => p.siteName), minSitesPerRound: study.minSites,
    roundDeadlineSeconds: study.roundDeadlineSeconds, state: STATES[study.state], completedRounds: study.completedRounds,
    statusMessage: study.statusMessage, createdAtUnixMs: BigInt(study.createdAt), schemaJson: study.schemaJson,
    participants: study.participants.map((p) => ({
      siteName: p.siteName, state: p.state, message: p.message,
      epsilonCharged: detail?.charges.get(p.siteName)?.epsilon ?? 0, deltaCharged: detail?.charges.get(p.siteName)?.delta ?? 0,
    })),
    roundDetails: (detail?.rounds ?? []).map(({ round, tasks }) => ({
      round: round.round, state: round.state,
      submitted: tasks.filter((t) => t.state === "submitted").map((t) => t.siteName),
      pending: tasks.filter((t) => t.state === "pending").map((t) => t.siteName),
      startedAtUnixMs: BigInt(round.startedAt), deadlineUnixMs: BigInt(round.deadlineAt),
      finishedAtUnixMs: BigInt(round.finishedAt ?? 0),
    })),
  });
}

function unary<Req, Res>(fn: (req: Req) => Res) {
  return (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => {
    try {
      callback(null, fn(call.request));
    } catch (err) {
      callback(toGrpcError(err));
    }
  };
}

export function operatorServiceHandlers(coordinator: Coordinator): grpc.UntypedServiceImplementation {
  const detailed = (id: string) => {
    const detail = coordinator.studyDetail(id);
    return studyToProto(detail.study, detail);
  };
  return {
    createStudy: unary((req: any) => {
      const study = coordinator.createStudy({
        name: req.name, schemaJson: req.schemaJson, engine: req.engine, epsilon: req.epsilon, delta: req.delta,
        rounds: req.rounds, sites: req.sites, minSites: req.minSitesPerRound, roundDeadlineSeconds: req.roundDeadlineSeconds,
      });
      return create(CreateStudyResponseSchema, { study: detailed(study.studyId) });
    }),
    startStudy: unary((req: any) => {
      coordinator.startStudy(req.studyId);
      return create(StartStudyResponseSchema, { study: detailed(req.studyId) });
    }),
    cancelStudy: unary((req: any) => {
      coordinator.cancelStudy(req.studyId, req.reason);
      return create(CancelStudyResponseSchema, { study: detailed(req.studyId) });
    }),
    listStudies: unary(() => create(ListStudiesResponseSchema, { studies: coordinator.listStudies().map((s) => detailed(s.studyId)) })),
    getStudy: unary((req: any) => create(GetStudyResponseSchema, { study: detailed(req.studyId) })),
    listSites: unary(() => create(ListSitesResponseSchema, {
      sites: coordinator.listSites().map(({ site, connected }) => ({
        siteId: site.siteId, name: site.name, connected, lastContactUnixMs: BigInt(site.lastContactAt ?? 0),
        enrolledAtUnixMs: BigInt(site.enrolledAt), agentVersion: site.agentVersion,
      })),
    })),
    async exportModel(call: grpc.ServerWritableStream<any, any>) {
      try {
        const { bytes, round, engine } = coordinator.exportModel(call.request.studyId);
        const sha256 = sha256Hex(bytes);
        for (let offset = 0; offset < bytes.byteLength; offset += CHUNK_BYTES) {
          const data = bytes.subarray(offset, Math.min(offset + CHUNK_BYTES, bytes.byteLength));
          const ok = call.write(create(ExportModelResponseSchema, { offset: BigInt(offset), data, totalBytes: BigInt(bytes.byteLength), sha256, engine, round }));
          if (!ok) await new Promise((resolve) => call.once("drain", resolve));
        }
        call.end();
      } catch (err) {
        call.destroy(Object.assign(new Error((err as Error).message), toGrpcError(err)));
      }
    },
  };
}
