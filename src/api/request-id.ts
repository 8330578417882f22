import { randomUUID } from "node:crypto";
import type { MiddlewareHandler } from "hono";

/**
 * What a caller's X-Request-Id may be to be kept: up to 200 of letters, digits and `._:=+/@;,-`,
 * which covers UUIDs, W3C trace ids and AWS trace headers. Anything else (spaces, quotes,
 * control characters) is replaced by a fresh UUID, so a request id is always safe in a header
 * and a log line.
 */
export const REQUEST_ID = /^[A-Za-z0-9._:=+/@;,-]{1,200}$/;

/** Sets `requestId` (the caller's, if acceptable, else a new one) and echoes it in X-Request-Id. */
export function requestIds(): MiddlewareHandler<{ Variables: { requestId: string } }> {
  return async (c, next) => {
    const given = c.req.header("x-request-id");
    const id = given !== undefined && REQUEST_ID.test(given) ? given : randomUUID();
    c.set("requestId", id);
    c.header("X-Request-Id", id);
    await next();
  };
}
