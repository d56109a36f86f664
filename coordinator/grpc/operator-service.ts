/** OperatorService over gRPC: studies, rounds, sites and model export for consortium operators. */
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import {
  CreateStudyResponseSchema, StartStudyResponseSchema, CancelStudyResponseSchema, ListStudiesResponseSchema,
  GetStudyResponseSchema, ListSitesResponseSchema, ExportModelResponseSchema, StudySchema, StudyState as StudyStateMsg,
  IssueEnrollmentTokenResponseSchema, RevokeSiteResponseSchema, SiteSchema, type Site, type Study,
  SecureAggregationMode, ExportLedgerResponseSchema, BudgetSplit as BudgetSplitMsg,
} from "../../gen/fedsynth/v1/operator_pb.js";
import { getEngine } from "../../shared/engines/registry.js";
import type { BudgetSplit } from "../../shared/engines/engine.js";
import { exportJsonl } from "../../shared/ledger/index.js";
import { FedsynthError } from "../../shared/errors.js";
import { peerIdentity } from "./peer.js";
import type { SiteRecord } from "../store/records.js";
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

function siteToProto(site: SiteRecord, connected: boolean): Site {
  return create(SiteSchema, {
    siteId: site.siteId, name: site.name, connected, lastContactUnixMs: BigInt(site.lastContactAt ?? 0),
    enrolledAtUnixMs: BigInt(site.enrolledAt), agentVersion: site.agentVersion, certificateFingerprint: site.certFingerprint ?? "",
    revoked: site.revokedAt !== null, revokedReason: site.revokedReason,
  });
}

function studyToProto(study: StudyRecord, detail?: StudyDetail): Study {
  return create(StudySchema, {
    studyId: study.studyId, name: study.name, engine: study.engine, engineReason: study.engineReason, epsilon: study.epsilon, delta: study.delta,
    rounds: study.rounds, sites: study.participants.map((p) => p.siteName), minSitesPerRound: study.minSites,
    roundDeadlineSeconds: study.roundDeadlineSeconds, state: STATES[study.state], completedRounds: study.completedRounds,
    statusMessage: study.statusMessage, createdAtUnixMs: BigInt(study.createdAt), schemaJson: study.schemaJson,
    secureAggregationThreshold: study.secureThreshold,
    // Read from the study's engine config, the one place the split is fixed.
    budgetSplit: (getEngine(study.engine).budgetSplit?.(study.engineConfig) ?? "equal") === "annealed" ? BudgetSplitMsg.ANNEALED : BudgetSplitMsg.EQUAL,
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

/** An unknown value is passed on as itself, for the request's validation to name. */
export function budgetSplitOf(value: BudgetSplitMsg): BudgetSplit | undefined {
  if (value === BudgetSplitMsg.UNSPECIFIED) return undefined;
  return value === BudgetSplitMsg.EQUAL ? "equal" : value === BudgetSplitMsg.ANNEALED ? "annealed" : (`BudgetSplit ${value}` as BudgetSplit);
}

const SECURE_MODES: Record<SecureAggregationMode, "auto" | "on" | "off"> = {
  [SecureAggregationMode.UNSPECIFIED]: "auto",
  [SecureAggregationMode.ON]: "on",
  [SecureAggregationMode.OFF]: "off",
};

/** What a call does: auditors may read everything an operator reads, and change nothing. */
type Access = "read" | "write";

/**
 * With mutual TLS every operator call carries an operator or auditor certificate from the consortium CA;
 * a site's certificate opens no operator call. Plaintext development mode has no identities to check.
 * The refusals do not name the call: the client knows what it asked for (the CLI prefixes it).
 */
function authorize(coordinator: Coordinator, call: { getAuthContext(): any }, access: Access): void {
  if (!coordinator.sites.secure) return;
  const peer = peerIdentity(call);
  if (!peer) {
    throw new FedsynthError("unauthenticated", "the call carries no operator certificate from this consortium's CA", {
      hint: "pass --credentials with the directory that fedsynth coordinator init (or fedsynth operator issue) wrote",
    });
  }
  if (peer.kind === "site") {
    throw new FedsynthError("permission-denied", `site ${peer.id}'s certificate cannot use the operator API`, {
      hint: "a site's identity is for its agent only: pass --credentials with an operator's or auditor's directory (fedsynth coordinator init or fedsynth operator issue wrote it)",
    });
  }
  if (access === "write" && peer.kind !== "operator") {
    throw new FedsynthError("permission-denied", `${peer.kind} ${peer.id} has read-only access`, {
      hint: "auditors can list and inspect studies, sites and the ledger; an operator certificate is needed to change anything",
    });
  }
}

export function operatorServiceHandlers(coordinator: Coordinator): grpc.UntypedServiceImplementation {
  const unary = <Req, Res>(access: Access, fn: (req: Req) => Res) =>
    (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => {
      try {
        authorize(coordinator, call, access);
        callback(null, fn(call.request));
      } catch (err) {
        callback(toGrpcError(err));
      }
    };
  const detailed = (id: string) => {
    const detail = coordinator.studyDetail(id);
    return studyToProto(detail.study, detail);
  };
  return {
    createStudy: unary("write", (req: any) => {
      const study = coordinator.createStudy({
        name: req.name, schemaJson: req.schemaJson, engine: req.engine, epsilon: req.epsilon, delta: req.delta,
        rounds: req.rounds, sites: req.sites, minSites: req.minSitesPerRound, roundDeadlineSeconds: req.roundDeadlineSeconds,
        secureAggregation: SECURE_MODES[req.secureAggregation as SecureAggregationMode] ?? "auto", secureThreshold: req.secureAggregationThreshold,
        expectedRows: Number(req.expectedRows ?? 0n), budgetSplit: budgetSplitOf(req.budgetSplit),
      });
      return create(CreateStudyResponseSchema, { study: detailed(study.studyId) });
    }),
    startStudy: unary("write", (req: any) => {
      coordinator.startStudy(req.studyId);
      return create(StartStudyResponseSchema, { study: detailed(req.studyId) });
    }),
    cancelStudy: unary("write", (req: any) => {
      coordinator.cancelStudy(req.studyId, req.reason);
      return create(CancelStudyResponseSchema, { study: detailed(req.studyId) });
    }),
    listStudies: unary("read", () => create(ListStudiesResponseSchema, { studies: coordinator.listStudies().map((s) => detailed(s.studyId)) })),
    getStudy: unary("read", (req: any) => create(GetStudyResponseSchema, { study: detailed(req.studyId) })),
    listSites: unary("read", () => create(ListSitesResponseSchema, {
      sites: coordinator.listSites().map(({ site, connected }) => siteToProto(site, connected)),
    })),
    issueEnrollmentToken: unary("write", (req: any) => {
      const ttl = Number(req.ttlSeconds);
      const issued = coordinator.sites.issueToken(req.siteName, ttl > 0 ? ttl * 1000 : undefined);
      return create(IssueEnrollmentTokenResponseSchema, { token: issued.token, expiresAtUnixMs: BigInt(issued.expiresAt), caFingerprint: issued.caFingerprint });
    }),
    revokeSite: unary("write", (req: any) => {
      const site = coordinator.revokeSite(req.siteName, req.reason);
      return create(RevokeSiteResponseSchema, { site: siteToProto(site, false) });
    }),
    async exportLedger(call: grpc.ServerWritableStream<any, any>) {
      try {
        authorize(coordinator, call, "read");
        coordinator.ledger.seal();
        const bytes = Buffer.from(exportJsonl(coordinator.ledger.entries()));
        const sha256 = sha256Hex(bytes);
        for (let offset = 0; offset < bytes.byteLength; offset += CHUNK_BYTES) {
          const ok = call.write(create(ExportLedgerResponseSchema, { offset: BigInt(offset), data: bytes.subarray(offset, offset + CHUNK_BYTES), totalBytes: BigInt(bytes.byteLength), sha256 }));
          if (!ok) await new Promise((resolve) => call.once("drain", resolve));
        }
        call.end();
      } catch (err) {
        call.destroy(Object.assign(new Error((err as Error).message), toGrpcError(err)));
      }
    },

    async exportModel(call: grpc.ServerWritableStream<any, any>) {
      try {
        authorize(coordinator, call, "read");
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
