import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tenantsRepository } from "../src/db/tenants.js";
import { REDIS_URL } from "./helpers/redis.js";
import { jsonBody, startTestRuntime, type TestRuntime } from "./helpers/runtime.js";

/**
 * Group commit on submit: concurrent submits share one INSERT and one addBulk, and a 202 still
 * means written and enqueued. Failures are injected by a real trigger in the test's own
 * database, so the INSERT itself fails inside PostgreSQL.
 */
const FAILING_TRIGGER = `
CREATE FUNCTION fail_marked() RETURNS trigger AS $$
BEGIN
  IF NEW.input->>'data' = 'lose-the-connection' THEN
    RAISE EXCEPTION 'simulated connection failure' USING ERRCODE = '08006';
  END IF;
  IF NEW.input->>'data' = 'bad-row' THEN
    RAISE EXCEPTION 'simulated bad row' USING ERRCODE = '22000';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER fail_marked BEFORE INSERT ON async_requests FOR EACH ROW EXECUTE FUNCTION fail_marked();`;

type Submitted = { status: number; id?: string; replayed: boolean; retryAfter: string | null; body: Record<string, unknown> };

describe("group commit on submit", () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startTestRuntime({ roles: { api: true, worker: false } });
    await rt.db.sql.query(FAILING_TRIGGER);
  });
  afterAll(() => rt.stop());

  const submit = async (client: { request: TestRuntime["request"] }, input: unknown, key?: string): Promise<Submitted> => {
    const init = jsonBody({ action: "echo", input });
    if (key) init.headers = { ...init.headers, "idempotency-key": key };
    const response = await client.request("/api/v1/async", init);
    const body = (await response.json()) as Record<string, unknown> & { asyncRequest?: { id: string } };
    return {
      status: response.status,
      id: body.asyncRequest?.id,
      replayed: response.headers.get("idempotent-replayed") === "true",
      retryAfter: response.headers.get("retry-after"),
      body,
    };
  };
  const rowsOf = async (tenantId: string) =>
    (await rt.db.sql.query<{ n: number }>("select count(*)::int as n from async_requests where tenant_id = $1", [tenantId]))[0]!.n;
  // The tenant's queued count as the service reads it: its row plus the changes not yet folded in.
  const counters = async (tenantId: string) => (await tenantsRepository(rt.db.db).get(tenantId))!.queuedCount;
  const jobsOf = async () => (await rt.services.admin.queueStats()).jobs;

  it("a batch whose INSERT fails answers every caller 503 with Retry-After, and leaves no row, no job, no counted slot", async () => {
    const client = await rt.createClient();
    const jobsBefore = await jobsOf();
    const answers = await Promise.all(Array.from({ length: 24 }, () => submit(client, { data: "lose-the-connection" })));
    expect(answers.map((a) => a.status)).toEqual(Array(24).fill(503));
    expect(answers.every((a) => a.retryAfter === "5" && a.body.code === "unavailable")).toBe(true);
    expect(await rowsOf(client.tenantId)).toBe(0);
    expect(await counters(client.tenantId)).toBe(0);
    expect(await jobsOf()).toEqual(jobsBefore);
    // They were written together: at least one batch held more than one submit.
    const batches = (await rt.services.metrics.submitBatchRows.get()).values.find((v) => v.metricName?.endsWith("_bucket") && v.labels.le === 1);
    const total = (await rt.services.metrics.submitBatchRows.get()).values.find((v) => v.metricName?.endsWith("_count"));
    expect(total!.value).toBeGreaterThan(batches!.value);
  });

  it("one bad row does not fail the rest of its batch", async () => {
    const client = await rt.createClient();
    const answers = await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => submit(client, { data: `good-${i}` })),
      submit(client, { data: "bad-row" }),
    ]);
    expect(answers.slice(0, 10).map((a) => a.status)).toEqual(Array(10).fill(202));
    expect(answers[10]!.status).toBe(500);
    expect(await rowsOf(client.tenantId)).toBe(10);
    expect(await counters(client.tenantId)).toBe(10);
    const queue = new Queue("jobs", { connection: { url: REDIS_URL }, prefix: rt.config.queuePrefix });
    try {
      const jobs = await Promise.all(answers.slice(0, 10).map((a) => queue.getJob(a.id!)));
      expect(jobs.map((job) => job?.id)).toEqual(answers.slice(0, 10).map((a) => a.id));
    } finally {
      await queue.close();
    }
  });

  it("the same Idempotency-Key twice in one batch gives one request, and both callers the same answer", async () => {
    const client = await rt.createClient();
    const [first, second] = await Promise.all([submit(client, { data: "once" }, "same-key"), submit(client, { data: "once" }, "same-key")]);
    expect([first!.status, second!.status]).toEqual([202, 202]);
    expect(first!.id).toBe(second!.id);
    expect(first!.body).toEqual(second!.body);
    expect([first!.replayed, second!.replayed].sort()).toEqual([false, true]);
    expect(await rowsOf(client.tenantId)).toBe(1);

    // The same key with another body in the same batch: one request, the other refused.
    const [a, b] = await Promise.all([submit(client, { data: "one" }, "contested"), submit(client, { data: "two" }, "contested")]);
    expect([a!.status, b!.status].sort()).toEqual([202, 422]);
    expect([a, b].find((x) => x!.status === 422)!.body.code).toBe("idempotency_key_reused");
    expect(await rowsOf(client.tenantId)).toBe(2);
  });

  it("a refused key is not kept: after a 429 the same key may be used again", async () => {
    const client = await rt.createClient();
    await rt.services.admin.setLimits(client.tenantId, { maxQueued: 1 });
    expect((await submit(client, { data: 1 })).status).toBe(202);
    expect((await submit(client, { data: 2 }, "later")).status).toBe(429);
    await rt.services.admin.setLimits(client.tenantId, { maxQueued: 2 });
    const retried = await submit(client, { data: 2 }, "later");
    expect(retried.status).toBe(202);
    expect(retried.replayed).toBe(false);
  });
});

describe("tenant limits by counters, under concurrency over several tenants and API processes", () => {
  let first: TestRuntime;
  let second: TestRuntime;
  beforeAll(async () => {
    first = await startTestRuntime({ roles: { api: true, worker: false } });
    // A second API runtime on the same database and queues: its own pool and its own batches.
    second = await startTestRuntime({ roles: { api: true, worker: false }, db: first.db, env: { QUEUE_PREFIX: first.config.queuePrefix } });
  });
  afterAll(async () => {
    await second.stop();
    await first.stop();
  });

  it("admits exactly each tenant's queued limit, never more, and the counters equal the table", async () => {
    const limits = [3, 7, 11];
    const tenants = await Promise.all(limits.map(() => first.createClient()));
    await Promise.all(tenants.map((t, i) => first.services.admin.setLimits(t.tenantId, { maxQueued: limits[i]! })));
    const secondClients = tenants.map((t) => ({
      request: (path: string, init: RequestInit = {}) => second.rawRequest(path, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${t.token}` } }),
    }));
    const answers = await Promise.all(
      tenants.flatMap((t, i) =>
        Array.from({ length: 30 }, (_, n) =>
          (n % 2 ? t : secondClients[i]!).request("/api/v1/async", jsonBody({ action: "echo", input: { data: n } })).then((r) => ({ tenant: i, status: r.status })),
        ),
      ),
    );
    for (const [i, limit] of limits.entries()) {
      const mine = answers.filter((a) => a.tenant === i);
      expect(mine.filter((a) => a.status === 202)).toHaveLength(limit);
      expect(mine.filter((a) => a.status === 429)).toHaveLength(30 - limit);
      const [row] = await first.db.sql.query<{ queued_count: number; n: number }>(
        "select queued_count, (select count(*)::int from async_requests where tenant_id = $1 and status = 'QUEUED') as n from tenants where id = $1",
        [tenants[i]!.tenantId],
      );
      expect(row).toEqual({ queued_count: limit, n: limit });
    }
  });
});
