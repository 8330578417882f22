import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPrivateRedis } from "./helpers/redis.js";
import { jsonBody, startTestRuntime, waitForStatus, type TestRuntime } from "./helpers/runtime.js";

describe("a Redis restart that loses every job", { timeout: 60_000 }, () => {
  let redis: Awaited<ReturnType<typeof startPrivateRedis>>;
  let api: TestRuntime;
  beforeAll(async () => {
    redis = await startPrivateRedis();
    api = await startTestRuntime({ roles: { api: true, worker: false }, env: { REDIS_URL: redis.url } });
  });
  afterAll(async () => {
    await api.stop();
    await redis.stop();
  });

  it("loses no accepted request: the sweeper re-enqueues from Postgres; while Redis is down a submit is refused (503) and leaves nothing", async () => {
    const submit = async () => {
      const response = await api.request("/api/v1/async", jsonBody({ action: "echo", input: { data: "kept" } }));
      expect(response.status).toBe(202);
      return ((await response.json()) as { asyncRequest: { id: string } }).asyncRequest.id;
    };
    const before = await submit(); // its job is in Redis…
    await redis.stop(); // …which dies without persistence
    // A 202 means written and enqueued: with the enqueue failing, the row is taken back.
    const during = await api.request("/api/v1/async", jsonBody({ action: "echo", input: { data: "refused" } }));
    expect(during.status).toBe(503);
    expect(during.headers.get("retry-after")).toBe("5");
    expect(api.logs.text).toContain("enqueue failed; taking the batch back");
    const rows = await api.db.sql.query<{ n: number }>("select count(*)::int as n from async_requests where input->>'data' = 'refused'");
    expect(rows[0]?.n).toBe(0);
    const limits = (await (await api.request("/api/v1/async/limits")).json()) as { queued: { count: number } };
    expect(limits.queued.count).toBe(1); // only `before`: the refused one gave its slot back
    expect((await api.rawRequest("/readyz")).status).toBe(503);
    await redis.restart(); // empty

    const worker = await startTestRuntime({
      roles: { api: false, worker: true },
      db: api.db,
      env: { ...api.env, SWEEPER_INTERVAL: "200ms", SWEEPER_GRACE: "0ms" },
    });
    try {
      for (const id of [before]) {
        const done = await waitForStatus(api, id, "COMPLETED");
        expect(done.asyncResponse?.errorCode).toBeNull();
      }
      const after = await submit(); // and the API's own connection has come back
      await waitForStatus(api, after, "COMPLETED");
      expect((await api.rawRequest("/readyz")).status).toBe(200);
    } finally {
      await worker.stop();
    }
  });
});
