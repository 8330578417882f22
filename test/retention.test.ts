/**
 * Retention on an injected clock: finished requests older than RETENTION go with their callback
 * attempts; recent ones, unfinished ones and ones whose callback is still being delivered stay;
 * idempotency keys go after their 24 h window; the purge runs by itself every RETENTION_INTERVAL.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { manualClock } from "./helpers/clock.js";
import { startReceiver, type Receiver } from "./helpers/receiver.js";
import { jsonBody, startTestRuntime, submit, waitForCallback, waitForStatus, type TestRuntime } from "./helpers/runtime.js";

const HOUR = 3_600_000;

describe("retention", { timeout: 60_000 }, () => {
  let rt: TestRuntime;
  let receiver: Receiver;
  const clock = manualClock(new Date("2026-01-01T00:00:00Z"));
  const count = async (table: string, where = "true", params: unknown[] = []) =>
    (await rt.db.sql.query<{ n: number }>(`select count(*)::int as n from ${table} where ${where}`, params))[0]!.n;

  beforeAll(async () => {
    receiver = await startReceiver();
    receiver.on("/hooks/down", (_req, res) => res.writeHead(500).end());
    rt = await startTestRuntime({
      clock,
      env: { RETENTION: "1h", RETENTION_INTERVAL: "1h", OUTBOUND_ALLOW: "127.0.0.1/32", CALLBACK_RETRY_DELAYS: "1h" },
    });
  });
  afterAll(async () => {
    await rt.stop();
    await receiver.close();
  });

  it("deletes what finished more than RETENTION ago, keeps the rest", async () => {
    // At T0: one delivered callback (with its attempt), one failed request, one whose callback is
    // still retrying, one still running, one with an Idempotency-Key.
    const delivered = await submit(rt, { action: "echo", input: {}, callbackUrl: receiver.url("/hooks/ok") });
    await waitForCallback(rt, rt, delivered.id, "DELIVERED");
    const failed = await submit(rt, { action: "echo", input: { fail: {} } });
    await waitForStatus(rt, failed.id, "FAILED");
    const retrying = await submit(rt, { action: "echo", input: {}, callbackUrl: receiver.url("/hooks/down") });
    await waitForCallback(rt, rt, retrying.id, "RETRYING");
    const running = await submit(rt, { action: "echo", input: { delayMs: 60_000 } });
    await waitForStatus(rt, running.id, "RUNNING");
    const keyed = await rt.request("/api/v1/async", { ...jsonBody({ action: "echo", input: {} }), headers: { "content-type": "application/json", "idempotency-key": "retention-key" } });
    const keyedId = ((await keyed.json()) as { asyncRequest: { id: string } }).asyncRequest.id;
    await waitForStatus(rt, keyedId, "COMPLETED");
    expect(await count("callback_attempts", "request_id = $1", [delivered.id])).toBe(1);

    // 2 h later, one more finishes: recent.
    clock.advance(2 * HOUR);
    const recent = await submit(rt, { action: "echo", input: {} });
    await waitForStatus(rt, recent.id, "COMPLETED");

    expect(await rt.retention!.purgeOnce()).toEqual({ requests: 3, idempotencyKeys: 0 });
    const left = (await rt.db.sql.query<{ id: string }>("select id from async_requests")).map((r) => r.id).sort();
    expect(left).toEqual([retrying.id, running.id, recent.id].sort());
    expect(await count("callback_attempts", "request_id = $1", [delivered.id])).toBe(0);
    expect(await count("callback_attempts", "request_id = $1", [retrying.id])).toBe(1);
    expect((await rt.request(`/api/v1/async/${delivered.id}`)).status).toBe(404);

    // A day later: the recent one has aged too, and the idempotency key's window is over.
    clock.advance(24 * HOUR);
    expect(await rt.retention!.purgeOnce()).toEqual({ requests: 1, idempotencyKeys: 1 });
    expect(await count("async_requests")).toBe(2);
    await rt.request(`/api/v1/async/${running.id}`, { method: "DELETE" });
  });
});

describe("retention, scheduled", { timeout: 60_000 }, () => {
  it("runs by itself every RETENTION_INTERVAL in a worker", async () => {
    const clock = manualClock(new Date("2026-01-01T00:00:00Z"));
    const rt = await startTestRuntime({ clock, env: { RETENTION: "1h", RETENTION_INTERVAL: "1s" } });
    try {
      const old = await submit(rt, { action: "echo", input: {} });
      await waitForStatus(rt, old.id, "COMPLETED");
      clock.advance(2 * 3_600_000);
      const deadline = Date.now() + 10_000;
      while (!rt.logs.text.includes("retention purged old data") && Date.now() < deadline) await new Promise((done) => setTimeout(done, 50));
      expect(rt.logs.text).toContain("retention purged old data");
      expect((await rt.request(`/api/v1/async/${old.id}`)).status).toBe(404);
    } finally {
      await rt.stop();
    }
  });
});
