import type { z } from "zod";

/**
 * The closed set of errors that operations raise. The API maps them to problem+json in one
 * place (src/api/problem.ts); nothing else decides an HTTP status.
 */
export const ERROR_STATUS = {
  bad_request: 400,
  malformed_json: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  request_timeout: 408,
  payload_too_large: 413,
  unsupported_media_type: 415,
  header_fields_too_large: 431,
  invalid: 422,
  idempotency_key_reused: 422,
  limit_exceeded: 429,
  internal: 500,
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export type FieldError = { path: string; message: string };

export class AppError extends Error {
  override name = "AppError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra: { errors?: FieldError[]; retryAfter?: number; headers?: Record<string, string> } = {},
  ) {
    super(message);
  }
  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

export const notFound = (what: string) => new AppError("not_found", `${what} not found`);
export const conflict = (message: string) => new AppError("conflict", message);
export const invalid = (message: string, errors: FieldError[]) => new AppError("invalid", message, { errors });

/** zod issues as `[{path, message}]`, with `prefix` naming where the validated value sits. */
export function zodFieldErrors(error: z.ZodError, prefix: string): FieldError[] {
  return error.issues.map((issue) => ({
    path: [prefix, ...issue.path.map(String)].filter(Boolean).join("."),
    message: issue.message,
  }));
}

/**
 * Connection-level failures of Postgres or Redis: the service is temporarily unable to answer
 * (503 + Retry-After), not broken (500). SQLSTATE class 08 is "connection exception", 57P0x
 * "operator intervention" (shutdown), 53300 "too many connections".
 */
export function isDependencyDown(error: unknown): boolean {
  for (let e = error as { code?: unknown; cause?: unknown; message?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    const code = typeof e.code === "string" ? e.code : "";
    if (["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "53300", "57P01", "57P02", "57P03"].includes(code) || code.startsWith("08")) return true;
    if (typeof e.message === "string" && /Connection terminated|connection timeout|Stream isn't writeable|Connection is closed|not queryable/i.test(e.message)) return true;
  }
  return false;
}
