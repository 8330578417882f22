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
