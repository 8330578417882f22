import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../env.js";

/** Liveness says the process answers; readiness says its dependencies do too; /metrics for Prometheus. */
export function registerHealthRoutes(app: OpenAPIHono<AppEnv>) {
  app.get("/metrics", async (c) => {
    const { registry } = c.var.services.metrics;
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
