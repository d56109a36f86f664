/** The one place where fedsynth's error codes meet gRPC status codes, in both directions. */
import * as grpc from "@grpc/grpc-js";
import { FedsynthError, type ErrorCode } from "../errors.js";

const TO_STATUS: Record<ErrorCode, grpc.status> = {
  "invalid-argument": grpc.status.INVALID_ARGUMENT,
  "invalid-schema": grpc.status.INVALID_ARGUMENT,
  "invalid-data": grpc.status.INVALID_ARGUMENT,
  "not-found": grpc.status.NOT_FOUND,
  "already-exists": grpc.status.ALREADY_EXISTS,
  "failed-precondition": grpc.status.FAILED_PRECONDITION,
  "budget-exceeded": grpc.status.RESOURCE_EXHAUSTED,
  unauthenticated: grpc.status.UNAUTHENTICATED,
  "permission-denied": grpc.status.PERMISSION_DENIED,
  unavailable: grpc.status.UNAVAILABLE,
  internal: grpc.status.INTERNAL,
};

/** A gRPC error carrying the message and hint; the hint travels in trailing metadata as well. */
export function toGrpcError(err: unknown): Partial<grpc.StatusObject> {
  const e = FedsynthError.from(err);
  const metadata = new grpc.Metadata();
  metadata.set("fedsynth-code", e.code);
  if (e.hint) metadata.set("fedsynth-hint", e.hint);
  return { code: TO_STATUS[e.code], details: e.hint ? `${e.message} (${e.hint})` : e.message, metadata };
}

export function fromGrpcError(err: unknown, what: string): FedsynthError {
  const se = err as grpc.ServiceError;
  if (typeof se?.code !== "number") return FedsynthError.from(err);
  const code = (se.metadata?.get("fedsynth-code")[0] as ErrorCode | undefined) ?? undefined;
  const hint = se.metadata?.get("fedsynth-hint")[0] as string | undefined;
  if (se.code === grpc.status.UNAVAILABLE || se.code === grpc.status.DEADLINE_EXCEEDED) {
    return new FedsynthError("unavailable", `${what}: the coordinator is not reachable (${se.details})`, {
      hint: "check the --coordinator address and that the coordinator is running",
      cause: err,
    });
  }
  const details = hint && se.details.endsWith(`(${hint})`) ? se.details.slice(0, -hint.length - 3) : se.details;
  return new FedsynthError(code ?? "internal", `${what}: ${details}`, { hint, cause: err });
}
