import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseStatusMessages } from "../src/infra/pubsub.js";
import { statusChannel } from "../src/shared/queues.js";
import { createTestDatabase, type TestDatabase } from "./helpers/db.js";
import { spawnRicochet, type RicochetProcess } from "./helpers/process.js";
import { startReceiver, type Receiver } from "./helpers/receiver.js";
import { deleteKeys, freePort, REDIS_URL, uniquePrefix } from "./helpers/redis.js";
import { TEST_ADMIN_TOKEN, TEST_SECRETS_KEY } from "./helpers/runtime.js";

/**
 * Two API processes and two worker processes (real ones, as an operator runs them) on one Redis
 * and one PostgreSQL give the guarantees one of each gives: exact tenant limits, idempotency,
 * one run per request, one delivery series per callback, long-polls and event streams woken by
 * whichever process changed the request, and one sweeper at a time.
 */
describe("2 API + 2 worker processes", { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let receiver: Receiver;
  const prefix = uniquePrefix();
  const processes: RicochetProcess[] = [];
  const apis: string[] = [];
  let env: Record<string, string>;
  let token: string;
  let tenantId: string;

  beforeAll(async () => {
    db = await createTestDatabase("postgres");
    receiver = await startReceiver();
    env = {
      DATABASE_URL: db.url!,
      REDIS_URL,
      QUEUE_PREFIX: prefix,
      SECRETS_KEY: TEST_SECRETS_KEY,
      ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      OUTBOUND_ALLOW: "127.0.0.1/32",
      SWEEPER_INTERVAL: "500ms",
      LOG_LEVEL: "warn",
    };
    const ports = [await freePort(), await freePort()];
    for (const port of ports) {
      const api = spawnRicochet("api", { ...env, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "info" });
      processes.push(api);
      apis.push(`http://127.0.0.1:${port}`);
    }
    await Promise.all(processes.map((p) => p.waitForOutput("ricochet is listening", 60_000)));
    tenantId = `mp-${randomBytes(3).toString("hex")}`;
    const admin = (path: string, body: unknown) =>
      fetch(`${apis[0]}${path}`, { method: "POST", headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, "content-type": "application/json" }, body: JSON.stringify(body) }).then(
        (r) => r.json() as Promise<Record<string, string>>,
      );
    await admin("/admin/v1/tenants", { id: tenantId, maxQueued: 20, maxConcurrent: 2 });
    const client = await admin(`/admin/v1/tenants/${tenantId}/clients`, { name: "multi" });
    const issued = await fetch(`${apis[1]}/oauth/token`, {
      method: "POST",
      body: new URLSearchParams({ grant_type: "client_credentials", client_id: client.clientId!, client_secret: client.clientSecret! }),
    });
    token = ((await issued.json()) as { access_token: string }).access_token;
  });
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.kill("SIGTERM")));
    await receiver.close();
    await db.drop();
    await deleteKeys(prefix);
  });

  const post = (api: string, body: unknown, key?: string) =>
    fetch(`${api}/api/v1/async`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...(key ? { "idempotency-key": key } : {}) },
      body: JSON.stringify(body),
    });
  const rows = () =>
    db.sql.query<{ id: string; status: string; runs: number; callback_series: number; callback_status: string | null }>(
      "select id, status, runs, callback_series, callback_status from async_requests where tenant_id = $1",
      [tenantId],
    );

  it("admits exactly the queued limit across API processes, and an Idempotency-Key once", async () => {
    const callbackUrl = receiver.url("/mp");
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, n) => post(apis[n % 2]!, { action: "echo", input: { data: n, delayMs: 150 }, callbackUrl }).then((r) => r.status)),
    );
    expect(answers.filter((s) => s === 202)).toHaveLength(20);
    expect(answers.filter((s) => s === 429)).toHaveLength(40);

    // The limit is full: the same key sent to both APIs at once is refused by both, consistently…
    const keyed = await Promise.all(apis.map((api) => post(api, { action: "echo", input: { data: "k" } }, "mp-key")));
    expect(keyed.map((r) => r.status)).toEqual([429, 429]);
    expect(await rows()).toHaveLength(20);
  });

  it("runs every request once with at most 2 RUNNING, delivers one series per callback, and wakes long-polls and event streams in the other API process", async () => {
    // Each time any request starts, in whichever worker, the table must respect the limit.
    let peak = 0;
    const checks: Promise<void>[] = [];
    const subscriber = new Redis(REDIS_URL);
    await subscriber.subscribe(statusChannel(prefix));
    subscriber.on("message", (_channel: string, raw: string) => {
      if (!parseStatusMessages(raw).some((m) => m.status === "RUNNING")) return;
      checks.push(rows().then((all) => void (peak = Math.max(peak, all.filter((r) => r.status === "RUNNING").length))));
    });
    try {
      const queued = await rows();
      const first = queued[0]!.id;
      // A long-poll on API 1 for a request a worker will finish: it must be woken, not time out.
      const pollStarted = performance.now();
      const polled = fetch(`${apis[1]}/api/v1/async/${first}?wait=25`, { headers: { authorization: `Bearer ${token}` } }).then(async (r) => ({
        ...((await r.json()) as { asyncRequest: { status: string } }),
        afterMs: performance.now() - pollStarted,
      }));
      // An event stream on API 0 for another request: it must see the worker's changes and end
      // with the final state, though neither API process ran the job.
      const second = queued[1]!.id;
      const streamed = fetch(`${apis[0]}/api/v1/async/${second}/events`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.text());
      for (const _ of [1, 2]) {
        // debug: each sweep logs when it started and finished (checked for overlap below).
        const worker = spawnRicochet("worker", { ...env, WORKER_CONCURRENCY: "8", LOG_LEVEL: "debug" });
        processes.push(worker);
      }
      await Promise.all(processes.slice(2).map((p) => p.waitForOutput("ricochet worker started", 60_000)));
      const deliveries = await receiver.waitFor("/mp", 20, 60_000);
      const done = await rows();
      expect(done.every((r) => r.status === "COMPLETED" && r.runs === 1 && r.callback_series === 1)).toBe(true);
      const ids = deliveries.map((d) => String(d.headers["webhook-id"]));
      expect(new Set(ids).size).toBe(20);
      expect(ids).toHaveLength(20);
      const events = (await streamed)
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => (JSON.parse(line.slice(5)) as { asyncRequest: { status: string } }).asyncRequest.status);
      expect(events.at(-1)).toBe("COMPLETED");
      expect(events).toContain("QUEUED");
      // Woken by the first change a worker made (QUEUED → RUNNING), not by its 25 s timeout.
      const poll = await polled;
      expect(poll.asyncRequest.status).not.toBe("QUEUED");
      expect(poll.afterMs).toBeLessThan(20_000);
      await Promise.all(checks);
      expect(peak).toBeGreaterThan(0);
      expect(peak).toBeLessThanOrEqual(2);
      // And now that the queue drained, the key is free: both APIs give the same request.
      const keyed = await Promise.all(apis.map((api) => post(api, { action: "echo", input: { data: "k" } }, "mp-key-2")));
      const bodies = (await Promise.all(keyed.map((r) => r.json()))) as { asyncRequest: { id: string } }[];
      expect(keyed.map((r) => r.status)).toEqual([202, 202]);
      expect(bodies[0]!.asyncRequest.id).toBe(bodies[1]!.asyncRequest.id);
    } finally {
      subscriber.disconnect();
    }
    for (const p of processes) expect(p.child.exitCode).toBeNull(); // nobody died along the way
  });

  it("sweeps with one worker at a time", async () => {
    const workers = processes.slice(2);
    const sweepsOf = (p: RicochetProcess) =>
      p
        .output()
        .split("\n")
        .filter((line) => line.includes('"msg":"sweep"'))
        .map((line) => JSON.parse(line) as { startedAt: number; finishedAt: number });
    // SWEEPER_INTERVAL is 500 ms: wait until the two workers have swept a few times between them.
    const deadline = Date.now() + 20_000;
    while (workers.flatMap(sweepsOf).length < 6 && Date.now() < deadline) await new Promise((done) => setTimeout(done, 100));
    const all = workers.flatMap(sweepsOf).sort((a, b) => a.startedAt - b.startedAt);
    expect(all.length).toBeGreaterThanOrEqual(6);
    for (let i = 1; i < all.length; i++) expect(all[i]!.startedAt, "a sweep started while another was running").toBeGreaterThanOrEqual(all[i - 1]!.finishedAt);
    // …and at most one per interval across both (the lock outlives a sweep until the interval is up).
    // (less a few ms: a sweep's start is read just before its SET reaches Redis)
    for (let i = 1; i < all.length; i++) expect(all[i]!.startedAt - all[i - 1]!.startedAt).toBeGreaterThanOrEqual(490);
  });
});
