import { and, count, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { asyncRequests } from "../src/db/schema.js";
import { parseStatusMessages } from "../src/infra/pubsub.js";
import { statusChannel } from "../src/shared/queues.js";
import { REDIS_URL } from "./helpers/redis.js";
import { jsonBody, startTestRuntime, waitForStatus, type TestRuntime } from "./helpers/runtime.js";

type Limits = { concurrentRequests: { limit: number; count: number }; queued: { limit: number; count: number } };

describe("per-tenant queued limit", () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startTestRuntime({ roles: { api: true, worker: false }, env: { DEFAULT_MAX_QUEUED: "3" } });
  });
  afterAll(() => rt.stop());

  it("answers 429 with Retry-After past the limit, writes nothing, and reports usage", async () => {
    const client = await rt.createClient();
    for (let i = 0; i < 3; i++) expect((await client.request("/api/v1/async", jsonBody({ action: "echo", input: {} }))).status).toBe(202);
    const refused = await client.request("/api/v1/async", jsonBody({ action: "echo", input: {} }));
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("5");
    expect(((await refused.json()) as { code: string }).code).toBe("limit_exceeded");
    const [row] = await rt.db.db.select({ n: count() }).from(asyncRequests).where(eq(asyncRequests.tenantId, client.tenantId));
    expect(row?.n).toBe(3);
    const limits = (await (await client.request("/api/v1/async/limits")).json()) as Limits;
    expect(limits).toEqual({ concurrentRequests: { limit: 10, count: 0 }, queued: { limit: 3, count: 3 } });

    // Another tenant is not affected; an operator raises this one's limit.
    const other = await rt.createClient();
    expect((await other.request("/api/v1/async", jsonBody({ action: "echo", input: {} }))).status).toBe(202);
    await rt.services.admin.setLimits(client.tenantId, { maxQueued: 4 });
    expect((await client.request("/api/v1/async", jsonBody({ action: "echo", input: {} }))).status).toBe(202);
    expect((await client.request("/api/v1/async", jsonBody({ action: "echo", input: {} }))).status).toBe(429);
  });

  it("holds under concurrent submits", async () => {
    const client = await rt.createClient();
    const statuses = await Promise.all(Array.from({ length: 8 }, () => client.request("/api/v1/async", jsonBody({ action: "echo", input: {} })).then((r) => r.status)));
    expect(statuses.filter((s) => s === 202)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(5);
  });
});

describe("per-tenant concurrency limit (enforced in the worker)", () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startTestRuntime({ env: { WORKER_CONCURRENCY: "8", TENANT_SLOT_RETRY: "50ms" } });
  });
  afterAll(() => rt.stop());

  it("never runs more than N at once; the rest wait QUEUED and all complete", async () => {
    const client = await rt.createClient();
    await rt.services.admin.setLimits(client.tenantId, { maxConcurrent: 2 });
    const running = async () =>
      (await rt.db.db.select({ n: count() }).from(asyncRequests).where(and(eq(asyncRequests.tenantId, client.tenantId), eq(asyncRequests.status, "RUNNING"))))[0]!.n;
    const queued = async () =>
      (await rt.db.db.select({ n: count() }).from(asyncRequests).where(and(eq(asyncRequests.tenantId, client.tenantId), eq(asyncRequests.status, "QUEUED"))))[0]!.n;

    // Each time any request starts, the database must show at most 2 RUNNING for the tenant.
    const observations: { running: number; queued: number }[] = [];
    const checks: Promise<void>[] = [];
    const subscriber = new Redis(REDIS_URL);
    await subscriber.subscribe(statusChannel(rt.config.queuePrefix));
    subscriber.on("message", (_channel: string, raw: string) => {
      // One observation per start (one message may carry several status changes).
      for (const message of parseStatusMessages(raw)) {
        if (message.status !== "RUNNING") continue;
        checks.push((async () => void observations.push({ running: await running(), queued: await queued() }))());
      }
    });

    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const response = await client.request("/api/v1/async", jsonBody({ action: "echo", input: { data: i, delayMs: 300 } }));
      ids.push(((await response.json()) as { asyncRequest: { id: string } }).asyncRequest.id);
    }
    for (const id of ids) await waitForStatus(client, id, "COMPLETED");
    await Promise.all(checks);
    subscriber.disconnect();

    expect(observations).toHaveLength(6);
    expect(Math.max(...observations.map((o) => o.running))).toBeLessThanOrEqual(2);
    expect(observations.some((o) => o.running === 2 && o.queued > 0)).toBe(true);
    const limits = (await (await client.request("/api/v1/async/limits")).json()) as Limits;
    expect(limits.concurrentRequests).toEqual({ limit: 2, count: 0 });
  });
});
