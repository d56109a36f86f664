/**
 * One error type for everything fedsynth refuses or cannot do. `code` is closed and maps to a gRPC status
 * in exactly one place (coordinator/grpc/status.ts); `hint` tells the person what to do about it.
 */
export type ErrorCode =
  | "invalid-argument"
  | "invalid-schema"
  | "invalid-data"
  | "not-found"
  | "already-exists"
  | "failed-precondition"
  | "budget-exceeded"
  /** Who is calling could not be established: no certificate, a revoked one, a bad token or signature. */
  | "unauthenticated"
  /** The caller is known but its role does not allow the call (an auditor starting a study, a site acting for another). */
  | "permission-denied"
  | "unavailable"
  | "internal";

export interface ErrorLocation {
  file?: string;
  /** 1-based line in the file, counting the header as line 1. */
  line?: number;
  column?: string;
}

export class FedsynthError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;
  readonly location?: ErrorLocation;

  constructor(code: ErrorCode, message: string, opts: { hint?: string; location?: ErrorLocation; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = "FedsynthError";
    this.code = code;
    this.hint = opts.hint;
    this.location = opts.location;
  }

  /** The message with its hint, as a person should read it. */
  describe(): string {
    return this.hint ? `${this.message}\n  → ${this.hint}` : this.message;
  }

  static from(err: unknown): FedsynthError {
    if (err instanceof FedsynthError) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new FedsynthError("internal", message, { cause: err });
  }
}

/** "file:line, column 'x'" — the prefix every data error starts with. */
export function formatLocation(loc: ErrorLocation): string {
  const parts: string[] = [];
  if (loc.file) parts.push(loc.line !== undefined ? `${loc.file}:${loc.line}` : loc.file);
  else if (loc.line !== undefined) parts.push(`line ${loc.line}`);
  if (loc.column !== undefined) parts.push(`column '${loc.column}'`);
  return parts.join(", ");
}
