import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import type { Logger } from "pino";
import type { Metrics } from "../infra/metrics.js";
import type { Caller } from "../services/caller.js";

/** Methods outside this set (llhttp accepts a few dozen) are counted as OTHER: labels stay bounded. */
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
/** Probes and scrapes arrive every few seconds: their lines are debug, so they do not drown the rest. */
const PROBES = new Set(["/healthz", "/readyz", "/metrics"]);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Routes whose `:id` is an async request's id. */
const ASYNC_REQUEST_ROUTE = /^\/api\/v1\/async\/:id(\/|$)/;

/**
 * The route template a request went to, as Hono matched it (`/api/v1/async/:id`), never the raw
 * path: the first matched route with a method is the one Hono dispatches to (middleware added
 * with `use` is registered for every method), even when a middleware answered first (401).
 * `unmatched` when no route has the path and method (404, 405).
 */
export function routeTemplate(c: Context): string {
  return matchedRoutes(c).find((route) => route.method !== "ALL")?.path ?? "unmatched";
}

/**
 * One log line and the HTTP metrics for each request: method, route template, status, duration,
 * request id, and the tenant and async request when known. No header, query or body is logged.
 */
export function observeRequests(deps: { metrics: Metrics; logger: Logger }): MiddlewareHandler<{ Variables: { requestId: string; caller: Caller } }> {
  return async (c, next) => {
    const started = performance.now();
    await next(); // errors are turned into responses inside (app.onError), so c.res is the answer
    const seconds = (performance.now() - started) / 1000;
    const method = METHODS.has(c.req.method) ? c.req.method : "OTHER";
    const route = routeTemplate(c);
    const status = c.res.status;
    deps.metrics.httpRequests.inc({ method, route, status: String(status) });
    deps.metrics.httpDuration.observe({ method, route }, seconds);

    const level = PROBES.has(route) ? "debug" : "info";
    if (!deps.logger.isLevelEnabled(level)) return; // the line is not built when it is not written
    const line: Record<string, unknown> = { requestId: c.get("requestId"), method, route, status, durationMs: Math.round(seconds * 1000) };
    if (route === "unmatched") line.path = c.req.path;
    const tenantId = (c.get("caller") as Caller | undefined)?.tenantId;
    if (tenantId) line.tenantId = tenantId;
    const asyncRequestId = ASYNC_REQUEST_ROUTE.test(route) ? c.req.path.split("/")[4] : status === 202 ? c.res.headers.get("location")?.split("/").pop() : undefined;
    if (asyncRequestId && UUID.test(asyncRequestId)) line.asyncRequestId = asyncRequestId;
    deps.logger[level](line, "http request");
  };
}
