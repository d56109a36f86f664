/**
 * protobuf ↔ domain values for what both sides exchange. Only transport code imports this file (and the
 * generated types); everything below it works with the plain values of shared/federation.
 */
import { create } from "@bufbuild/protobuf";
import { MechanismSchema, StudySpecSchema, type Mechanism as MechanismMsg, type StudySpec as StudySpecMsg } from "../../gen/fedsynth/v1/study_pb.js";
import { TaskSchema, DeclineReason as DeclineReasonMsg, type Task } from "../../gen/fedsynth/v1/agent_pb.js";
import type { Mechanism } from "../privacy/mechanism.js";
import type { DeclineReason, StudySpec, TaskAssignment } from "../federation/task.js";
import type { JsonObject } from "../engines/engine.js";
import { FedsynthError } from "../errors.js";

const UINT32_MAX = 0xffff_ffff;

export function mechanismToProto(m: Mechanism): MechanismMsg {
  switch (m.kind) {
    case "gaussian":
      return create(MechanismSchema, { kind: { case: "gaussian", value: { l2Sensitivity: m.l2Sensitivity, sigma: m.sigma, repetitions: m.repetitions } } });
    case "subsampled-gaussian":
      if (!Number.isInteger(m.steps) || m.steps < 0 || m.steps > UINT32_MAX) {
        throw new FedsynthError("invalid-argument", `a subsampled Gaussian mechanism's steps (${m.steps}) do not fit the protocol (a whole number up to ${UINT32_MAX})`);
      }
      return create(MechanismSchema, {
        kind: {
          case: "subsampledGaussian",
          value: { samplingRate: m.samplingRate, noiseMultiplier: m.noiseMultiplier, steps: m.steps, clipNorm: m.clipNorm },
        },
      });
    case "distributed-discrete-gaussian":
      if (!Number.isInteger(m.sites) || m.sites < 0 || m.sites > UINT32_MAX || !Number.isInteger(m.repetitions) || m.repetitions < 0 || m.repetitions > UINT32_MAX) {
        throw new FedsynthError("invalid-argument", `a distributed discrete Gaussian mechanism's sites (${m.sites}) or repetitions (${m.repetitions}) do not fit the protocol`);
      }
      return create(MechanismSchema, {
        kind: {
          case: "distributedDiscreteGaussian",
          value: { l2Sensitivity: m.l2Sensitivity, dimension: BigInt(m.dimension), sigma: m.sigma, sites: m.sites, repetitions: m.repetitions },
        },
      });
    default:
      throw new FedsynthError("internal", `no protocol encoding for privacy mechanism kind ${JSON.stringify((m as { kind?: unknown }).kind)}`);
  }
}

export function mechanismFromProto(m: MechanismMsg): Mechanism {
  switch (m.kind.case) {
    case "gaussian":
      return { kind: "gaussian", l2Sensitivity: m.kind.value.l2Sensitivity, sigma: m.kind.value.sigma, repetitions: m.kind.value.repetitions };
    case "subsampledGaussian": {
      const v = m.kind.value;
      return { kind: "subsampled-gaussian", samplingRate: v.samplingRate, noiseMultiplier: v.noiseMultiplier, steps: v.steps, clipNorm: v.clipNorm };
    }
    case "distributedDiscreteGaussian": {
      const v = m.kind.value;
      return { kind: "distributed-discrete-gaussian", l2Sensitivity: v.l2Sensitivity, dimension: Number(v.dimension), sigma: v.sigma, sites: v.sites, repetitions: v.repetitions };
    }
    default:
      throw new FedsynthError("invalid-argument", "a task carries a privacy mechanism this agent does not know", {
        hint: "upgrade the site agent to the coordinator's version",
      });
  }
}

export function studySpecToProto(s: StudySpec): StudySpecMsg {
  return create(StudySpecSchema, {
    studyId: s.studyId, name: s.name, schemaJson: s.schemaJson, engine: s.engine, epsilon: s.epsilon, delta: s.delta,
    rounds: s.rounds, engineConfigJson: JSON.stringify(s.engineConfig),
  });
}

export function studySpecFromProto(s: StudySpecMsg): StudySpec {
  return {
    studyId: s.studyId, name: s.name, schemaJson: s.schemaJson, engine: s.engine, epsilon: s.epsilon, delta: s.delta,
    rounds: s.rounds, engineConfig: parseJsonObject(s.engineConfigJson, "engine_config_json"),
  };
}

export function taskToProto(t: TaskAssignment): Task {
  return create(TaskSchema, {
    taskId: t.taskId, study: studySpecToProto(t.study), round: t.round, mechanisms: t.mechanisms.map(mechanismToProto),
    modelId: t.modelId, modelSha256: t.modelSha256, modelBytes: BigInt(t.modelBytes), updateLength: BigInt(t.updateLength),
    roundConfigJson: JSON.stringify(t.roundConfig), traceContext: t.traceContext ?? {},
    ...(t.secureAggregation ? {
      secureAggregation: {
        sessionNonce: t.secureAggregation.sessionNonce, threshold: t.secureAggregation.threshold,
        sites: t.secureAggregation.siteKeys.map((k) => ({ siteName: k.siteName, publicKey: k.publicKey })),
      },
    } : {}),
  });
}

export function taskFromProto(t: Task): TaskAssignment {
  if (!t.study) throw new FedsynthError("invalid-argument", `task ${t.taskId} carries no study`);
  return {
    taskId: t.taskId, study: studySpecFromProto(t.study), round: t.round, mechanisms: t.mechanisms.map(mechanismFromProto),
    modelId: t.modelId, modelSha256: t.modelSha256, modelBytes: Number(t.modelBytes), updateLength: Number(t.updateLength),
    roundConfig: parseJsonObject(t.roundConfigJson, "round_config_json"),
    ...(Object.keys(t.traceContext).length > 0 ? { traceContext: { ...t.traceContext } } : {}),
    ...(t.secureAggregation ? {
      secureAggregation: {
        sessionNonce: t.secureAggregation.sessionNonce, threshold: t.secureAggregation.threshold,
        siteKeys: t.secureAggregation.sites.map((k) => ({ siteName: k.siteName, publicKey: k.publicKey })),
      },
    } : {}),
  };
}

const REASONS: [DeclineReason, DeclineReasonMsg][] = [
  ["budget-cap", DeclineReasonMsg.BUDGET_CAP],
  ["data-invalid", DeclineReasonMsg.DATA_INVALID],
  ["unsupported", DeclineReasonMsg.UNSUPPORTED],
  ["charge-mismatch", DeclineReasonMsg.CHARGE_MISMATCH],
];

export function declineReasonToProto(r: DeclineReason): DeclineReasonMsg {
  return REASONS.find(([d]) => d === r)?.[1] ?? DeclineReasonMsg.UNSPECIFIED;
}

export function declineReasonFromProto(r: DeclineReasonMsg): DeclineReason {
  return REASONS.find(([, p]) => p === r)?.[0] ?? "unsupported";
}

export function parseJsonObject(text: string, field: string): JsonObject {
  if (!text) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new FedsynthError("invalid-argument", `${field} is not valid JSON`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new FedsynthError("invalid-argument", `${field} is not a JSON object`);
  return value as JsonObject;
}
