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

  it("loses no accepted request: the sweeper re-enqueues from Postgres, including ones accepted while Redis was down", async () => {
    const submit = async () => {
      const response = await api.request("/api/v1/async", jsonBody({ action: "echo", input: { data: "kept" } }));
      expect(response.status).toBe(202);
      return ((await response.json()) as { asyncRequest: { id: string } }).asyncRequest.id;
    };
    const before = await submit(); // its job is in Redis…
    await redis.stop(); // …which dies without persistence
    const during = await submit(); // accepted: the row is written, the enqueue fails fast
    expect(api.logs.text).toContain("enqueue failed; the sweeper will enqueue the request");
    expect((await api.rawRequest("/readyz")).status).toBe(503);
    await redis.restart(); // empty

    const worker = await startTestRuntime({
      roles: { api: false, worker: true },
      db: api.db,
      env: { ...api.env, SWEEPER_INTERVAL: "200ms", SWEEPER_GRACE: "0ms" },
    });
    try {
      for (const id of [before, during]) {
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
