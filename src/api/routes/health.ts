import type { OpenAPIHono } from "@hono/zod-openapi";
import { safeEqual } from "../../auth/credentials.js";
import { AppError } from "../../shared/errors.js";
import type { AppEnv } from "../env.js";

/** Liveness says the process answers; readiness says its dependencies do too; /metrics for Prometheus. */
export function registerHealthRoutes(app: OpenAPIHono<AppEnv>) {
  app.get("/metrics", async (c) => {
    const { registry } = c.var.services.metrics;
    const token = c.var.services.metricsToken;
    if (token && !safeEqual(/^Bearer +(\S+)$/i.exec(c.req.header("authorization") ?? "")?.[1] ?? "", token)) {
      throw new AppError("unauthorized", "Send Authorization: Bearer <METRICS_TOKEN>", { headers: { "www-authenticate": 'Bearer realm="ricochet-metrics"' } });
    }
    return c.body(await registry.metrics(), 200, { "content-type": registry.contentType });
  });
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", async (c) => {
    const checks = await c.var.services.readiness();
    const ready = Object.values(checks).every((check) => check === "ok");
    if (!ready) c.header("Retry-After", "5");
    return c.json({ status: ready ? "ready" : "unavailable", checks }, ready ? 200 : 503);
  });
}
