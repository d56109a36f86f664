import { FedsynthError } from "../../errors.js";

export function unauthenticated(message: string, hint: string, cause?: unknown): FedsynthError {
  return new FedsynthError("unauthenticated", message, { hint, cause });
}

export function invalidArgument(message: string, hint: string, cause?: unknown): FedsynthError {
  return new FedsynthError("invalid-argument", message, { hint, cause });
}
