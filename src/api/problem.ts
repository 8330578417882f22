import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Logger } from "pino";
import { OAuthError } from "../auth/oauth-error.js";
import type { z } from "zod";
import { AppError, ERROR_STATUS, isDependencyDown, zodFieldErrors, type ErrorCode, type FieldError } from "../shared/errors.js";

const TITLES: Record<ErrorCode, string> = {
  bad_request: "Bad request",
  malformed_json: "Malformed JSON",
  unauthorized: "Unauthorized",
  forbidden: "Forbidden",
  not_found: "Not found",
  method_not_allowed: "Method not allowed",
  conflict: "Conflict",
  request_timeout: "Request timeout",
  payload_too_large: "Payload too large",
  unsupported_media_type: "Unsupported media type",
  header_fields_too_large: "Request header fields too large",
  invalid: "Invalid request",
  idempotency_key_reused: "Idempotency-Key reused",
  limit_exceeded: "Limit exceeded",
  internal: "Internal server error",
  unavailable: "Service unavailable",
};

/** A request's params, query, headers or body failed their schema: one 422 problem shape for all. */
export function invalidRequest(target: string, error: z.ZodError): AppError {
  const where = target === "json" ? "request body" : target === "param" ? "path" : target;
  return new AppError("invalid", `Invalid ${where}`, { errors: zodFieldErrors(error, "") });
}

export type Problem = {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  code: ErrorCode;
  requestId: string;
  errors?: FieldError[];
};

/** The RFC 9457 body: the one shape of every error answer, whoever writes it. */
export function problemBody(code: ErrorCode, detail: string, instance: string, requestId: string, errors?: FieldError[]): Problem {
  return {
    type: `https://ricochet.dev/problems/${code.replaceAll("_", "-")}`,
    title: TITLES[code],
    status: ERROR_STATUS[code],
    detail,
    instance,
    code,
    requestId,
    ...(errors ? { errors } : {}),
  };
}

/** Writes an RFC 9457 problem+json response. */
export function problemResponse(
  c: Context,
  code: ErrorCode,
  detail: string,
  extra: { errors?: FieldError[]; headers?: Record<string, string> } = {},
): Response {
  const body = problemBody(code, detail, c.req.path, c.get("requestId") ?? "", extra.errors);
  return new Response(JSON.stringify(body), {
    status: body.status,
    headers: {
      "content-type": "application/problem+json",
      "x-request-id": c.get("requestId") ?? "",
      // The body was not read: the connection cannot carry another request, so say so and close it.
      ...(code === "payload_too_large" ? { connection: "close" } : {}),
      ...extra.headers,
    },
  });
}

/** The one place where errors become HTTP responses. Unknown errors are logged, never shown. */
export function errorToResponse(error: unknown, c: Context, logger: Logger): Response {
  if (error instanceof OAuthError) {
    // The token endpoints speak RFC 6749 §5.2, not problem+json: OAuth client libraries expect it.
    const headers: Record<string, string> = { "content-type": "application/json", "cache-control": "no-store", "x-request-id": c.get("requestId") ?? "" };
    if (error.challenge) headers["www-authenticate"] = error.challenge;
    return new Response(JSON.stringify({ error: error.error, error_description: error.description }), { status: error.status, headers });
  }
  if (error instanceof AppError) {
    const headers = { ...error.extra.headers };
    if (error.extra.retryAfter !== undefined) headers["retry-after"] = String(error.extra.retryAfter);
    return problemResponse(c, error.code, error.message, { errors: error.extra.errors, headers });
  }
  if (error instanceof HTTPException) {
    if (error.status === 400) return problemResponse(c, "malformed_json", "The request body is not valid JSON");
    if (error.status === 413) return problemResponse(c, "payload_too_large", "The request body is too large");
    const code = (Object.entries(ERROR_STATUS).find(([, status]) => status === error.status)?.[0] ?? "bad_request") as ErrorCode;
    return problemResponse(c, code, error.message || TITLES[code]);
  }
  if (isDependencyDown(error)) {
    logger.warn({ err: error, requestId: c.get("requestId"), path: c.req.path }, "a dependency is unavailable");
    return problemResponse(c, "unavailable", "A dependency of the service is unavailable; retry shortly", { headers: { "retry-after": "5" } });
  }
  logger.error({ err: error, requestId: c.get("requestId"), path: c.req.path }, "unhandled error");
  return problemResponse(c, "internal", "Something went wrong on our side; quote the requestId if you report it");
}
