import { Queue } from "bullmq";
import { callbacksRepository } from "../src/db/callbacks.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REDIS_URL } from "./helpers/redis.js";
import { startTestRuntime, TEST_ADMIN_TOKEN, type TestRuntime } from "./helpers/runtime.js";

/**
 * A tenant-wide redelivery walks the EXHAUSTED callbacks in pages of 1,000, each page continuing
 * after the last id of the one before: every series restarted once, none twice, none skipped.
 * No worker runs here, so the restarted series stay PENDING with their jobs in the queue.
 */
describe("redelivering more EXHAUSTED callbacks than one page holds", () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startTestRuntime({ roles: { api: true, worker: false } });
  });
  afterAll(async () => {
    await rt.stop();
  });

  it("starts a page after the last id of the one before", async () => {
    const client = await rt.createClient();
    const ids = (
      await rt.db.sql.query<{ id: string }>(
        `insert into async_requests (id, tenant_id, created_by, action, status, input, callback_url, created_at, updated_at, finished_at,
           callback_status, callback_series, callback_attempts, callback_last_attempt_at, callback_updated_at)
         select gen_random_uuid(), $1, $2, 'echo', 'COMPLETED', '{}'::jsonb, 'http://127.0.0.1:9/hook', now(), now(), now(),
           'EXHAUSTED', 1, 11, now(), now()
         from generate_series(1, 9) returning id`,
        [client.tenantId, client.clientId],
      )
    )
      .map((row) => row.id)
      .sort();
    const repository = callbacksRepository(rt.db.db);
    const since = new Date(Date.now() - 3_600_000);
    const page = async (afterId?: string) => (await repository.startSeriesForExhausted(client.tenantId, since, new Date(), 4, afterId)).map((r) => r.id).sort();
    const first = await page();
    expect(first).toEqual(ids.slice(0, 4)); // in id order
    // From the middle of the first page (its rows are PENDING now, so only the cursor can tell):
    // the next page starts strictly after the id given, skipping none of the EXHAUSTED ones.
    expect(await page(ids[5])).toEqual(ids.slice(6, 9));
    expect(await page(ids[3])).toEqual([ids[4]!, ids[5]!]);
  });

  it("restarts each series exactly once, across pages, and leaves older ones alone", async () => {
    const client = await rt.createClient();
    const exhausted = (count: number, lastAttempt: string) =>
      rt.db.sql.query(
        `insert into async_requests (id, tenant_id, created_by, action, status, input, callback_url, created_at, updated_at, finished_at,
           callback_status, callback_series, callback_attempts, callback_last_attempt_at, callback_updated_at)
         select gen_random_uuid(), $1, $2, 'echo', 'COMPLETED', '{}'::jsonb, 'http://127.0.0.1:9/hook', now(), now(), now(),
           'EXHAUSTED', 1, 11, $3::timestamptz, $3::timestamptz
         from generate_series(1, $4::int)`,
        [client.tenantId, client.clientId, lastAttempt, count],
      );
    await exhausted(2_345, new Date().toISOString());
    await exhausted(7, new Date(Date.now() - 3 * 3_600_000).toISOString()); // before `since`

    const response = await rt.rawRequest(`/admin/v1/tenants/${client.tenantId}/callbacks/redeliver`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ since: new Date(Date.now() - 3_600_000).toISOString() }),
    });
    expect(await response.json()).toEqual({ redelivered: 2_345 });

    const rows = await rt.db.sql.query<{ callback_status: string; callback_series: number; n: number }>(
      "select callback_status, callback_series, count(*)::int as n from async_requests where tenant_id = $1 group by 1, 2 order by 1",
      [client.tenantId],
    );
    expect(rows).toEqual([
      { callback_status: "EXHAUSTED", callback_series: 1, n: 7 },
      { callback_status: "PENDING", callback_series: 2, n: 2_345 },
    ]);
    const queue = new Queue("callbacks", { connection: { url: REDIS_URL }, prefix: rt.config.queuePrefix });
    try {
      expect(await queue.getWaitingCount()).toBe(2_345); // one job per series, none twice
    } finally {
      await queue.close();
    }
  });
});
