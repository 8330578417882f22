import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { safeEqual } from "../../auth/credentials.js";
import { AppError } from "../../shared/errors.js";
import type { AppEnv } from "../env.js";
import { headers, problemResponses } from "../schemas.js";

const tags = ["Operations"];

const ReadinessSchema = z
  .object({
    status: z.enum(["ready", "unavailable"]),
    checks: z.record(z.string(), z.string()).openapi({
      description: "`ok`, or why not, per dependency (`redis`, `database`; `process` while shutting down)",
      example: { redis: "ok", database: "ok" },
    }),
  })
  .openapi("Readiness");

const routes = {
  metrics: createRoute({
    method: "get", path: "/metrics", operationId: "getMetrics", tags,
    // Open unless METRICS_TOKEN is set: then that token, as a bearer token.
    security: [{}, { metricsToken: [] as string[] }],
    summary: "Prometheus metrics",
    responses: {
      200: { description: "The Prometheus text exposition format", content: { "text/plain": { schema: z.string() } } },
      ...problemResponses(401),
    },
  }),
  healthz: createRoute({
    method: "get", path: "/healthz", operationId: "getLiveness", tags, security: [],
    summary: "Liveness: the process answers",
    responses: { 200: { description: "Alive", content: { "application/json": { schema: z.object({ status: z.literal("ok") }) } } } },
  }),
  readyz: createRoute({
    method: "get", path: "/readyz", operationId: "getReadiness", tags, security: [],
    summary: "Readiness: Redis and the database answer, and the process is not shutting down",
    responses: {
      200: { description: "Ready", content: { "application/json": { schema: ReadinessSchema } } },
      503: { description: "Not ready: take it out of the load balancer", headers: headers("Retry-After"), content: { "application/json": { schema: ReadinessSchema } } },
    },
  }),
};

/** Liveness says the process answers; readiness says its dependencies do too; /metrics for Prometheus. */
export function registerHealthRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(routes.metrics, async (c) => {
    const { registry } = c.get("services").metrics;
    const token = c.get("services").metricsToken;
    if (token && !safeEqual(/^Bearer +(\S+)$/i.exec(c.req.header("authorization") ?? "")?.[1] ?? "", token)) {
      throw new AppError("unauthorized", "Send Authorization: Bearer <METRICS_TOKEN>", { headers: { "www-authenticate": 'Bearer realm="ricochet-metrics"' } });
    }
    return c.body(await registry.metrics(), 200, { "content-type": registry.contentType });
  });
  app.openapi(routes.healthz, (c) => c.json({ status: "ok" as const }, 200));
  app.openapi(routes.readyz, async (c) => {
    const checks = await c.get("services").readiness();
    const ready = Object.values(checks).every((check) => check === "ok");
    if (!ready) c.header("Retry-After", "5");
    return c.json({ status: ready ? ("ready" as const) : ("unavailable" as const), checks }, ready ? 200 : 503);
  });
}
