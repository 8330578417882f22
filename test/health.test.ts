import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPrivateRedis } from "./helpers/redis.js";
import { startTestRuntime, type TestRuntime } from "./helpers/runtime.js";

describe("/healthz and /readyz", () => {
  let redis: Awaited<ReturnType<typeof startPrivateRedis>>;
  let rt: TestRuntime;
  beforeAll(async () => {
    redis = await startPrivateRedis();
    rt = await startTestRuntime({ roles: { api: true, worker: false }, env: { REDIS_URL: redis.url } });
  });
  afterAll(async () => {
    await rt.close();
    await rt.db.drop();
    await redis.stop();
  });

  it("is ready while Redis and the database answer, 503 once Redis is unreachable", async () => {
    const ready = await rt.request("/readyz");
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready", checks: { redis: "ok", database: "ok" } });

    await redis.stop();
    const unready = await rt.request("/readyz");
    expect(unready.status).toBe(503);
    expect(unready.headers.get("retry-after")).toBe("5");
    const body = (await unready.json()) as { status: string; checks: { redis: string; database: string } };
    expect(body.status).toBe("unavailable");
    expect(body.checks.redis).toMatch(/^unavailable: /);
    expect(body.checks.database).toBe("ok");

    // The process itself is still alive.
    const health = await rt.request("/healthz");
    expect(health.status).toBe(200);
  });
});

describe("/metrics", () => {
  it("is open by default, and asks for METRICS_TOKEN when one is set", async () => {
    const open = await startTestRuntime({ roles: { api: true, worker: false } });
    try {
      expect((await open.rawRequest("/metrics")).status).toBe(200);
    } finally {
      await open.stop();
    }
    const token = "metrics-token-0123456789";
    const guarded = await startTestRuntime({ roles: { api: true, worker: false }, env: { METRICS_TOKEN: token } });
    try {
      const refused = await guarded.rawRequest("/metrics");
      expect(refused.status).toBe(401);
      expect(refused.headers.get("content-type")).toContain("application/problem+json");
      expect((await guarded.rawRequest("/metrics", { headers: { authorization: "Bearer wrong-token-000000000" } })).status).toBe(401);
      const scraped = await guarded.rawRequest("/metrics", { headers: { authorization: `Bearer ${token}` } });
      expect(scraped.status).toBe(200);
      const text = await scraped.text();
      expect(text).toContain("ricochet_callback_attempts_total");
      // Event-loop delay, the symptom of work that blocks the service.
      expect(text).toMatch(/^ricochet_nodejs_eventloop_lag_p99_seconds [\d.e-]+$/m);
      expect((await guarded.rawRequest("/healthz")).status).toBe(200); // health stays open for probes
    } finally {
      await guarded.stop();
    }
  });
});
