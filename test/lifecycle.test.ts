import { monitorEventLoopDelay } from "node:perf_hooks";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseStatusMessages } from "../src/infra/pubsub.js";
import { statusChannel } from "../src/shared/queues.js";
import { answer, startReceiver, type Receiver } from "./helpers/receiver.js";
import { REDIS_URL, startPrivateRedis } from "./helpers/redis.js";
import { jsonBody, startTestRuntime, submit, waitForCallback, waitForStatus, type TestRuntime } from "./helpers/runtime.js";

describe("the running limit by counters, over several tenants and worker processes", () => {
  let api: TestRuntime;
  let workers: TestRuntime[];
  beforeAll(async () => {
    api = await startTestRuntime({ roles: { api: true, worker: false } });
    const env = { ...api.env, WORKER_CONCURRENCY: "12", TENANT_SLOT_RETRY: "20ms" };
    workers = await Promise.all([1, 2].map(() => startTestRuntime({ roles: { api: false, worker: true }, db: api.db, env })));
  });
  afterAll(async () => {
    for (const worker of workers) await worker.stop();
    await api.stop();
  });

  it("never runs more than a tenant's limit at once; every request completes; the counters end at zero", async () => {
    const limits = [1, 2, 3];
    const tenants = await Promise.all(limits.map(() => api.createClient()));
    await Promise.all(tenants.map((t, i) => api.services.admin.setLimits(t.tenantId, { maxConcurrent: limits[i]! })));
    const runningNow = async () =>
      api.db.sql.query<{ tenant_id: string; n: number }>(
        "select tenant_id, count(*)::int as n from async_requests where status = 'RUNNING' group by tenant_id",
      );
    // Each time any request starts, in whichever worker, the table must respect every limit.
    const peaks = new Map<string, number>();
    const checks: Promise<void>[] = [];
    const subscriber = new Redis(REDIS_URL);
    await subscriber.subscribe(statusChannel(api.config.queuePrefix));
    subscriber.on("message", (_channel: string, raw: string) => {
      if (!parseStatusMessages(raw).some((m) => m.status === "RUNNING")) return;
      checks.push(
        runningNow().then((rows) => {
          for (const row of rows) peaks.set(row.tenant_id, Math.max(peaks.get(row.tenant_id) ?? 0, row.n));
        }),
      );
    });
    try {
      const ids = await Promise.all(
        tenants.flatMap((t) => Array.from({ length: 8 }, (_, n) => submit(t, { action: "echo", input: { data: n, delayMs: 60 } }).then((r) => ({ t, id: r.id })))),
      );
      for (const { t, id } of ids) await waitForStatus(t, id, "COMPLETED");
      await Promise.all(checks);
    } finally {
      subscriber.disconnect();
    }
    for (const [i, t] of tenants.entries()) {
      expect(peaks.get(t.tenantId)).toBeLessThanOrEqual(limits[i]!);
      const usage = (await (await t.request("/api/v1/async/limits")).json()) as { concurrentRequests: { count: number }; queued: { count: number } };
      expect(usage).toMatchObject({ concurrentRequests: { count: 0 }, queued: { count: 0 } });
    }
    // The limit was reached, not merely respected by accident.
    expect(peaks.get(tenants[2]!.tenantId)).toBe(3);
  });
});

describe("counters and callbacks without the sweeper's help", () => {
  let rt: TestRuntime;
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await startReceiver();
    rt = await startTestRuntime({ env: { OUTBOUND_ALLOW: "127.0.0.1/32", SWEEPER_INTERVAL: "1h" } });
  });
  afterAll(async () => {
    await rt.stop();
    await receiver.close();
  });

  it("reconciles drifted counters from the table (as after a crash or a hand edit)", async () => {
    const client = await rt.createClient();
    const held = await submit(client, { action: "echo", input: { delayMs: 60_000 } });
    await waitForStatus(client, held.id, "RUNNING");
    await submit(client, { action: "echo", input: { delayMs: 60_000 } });
    await rt.db.sql.query("update tenants set queued_count = 500, running_count = -4 where id = $1", [client.tenantId]);
    const stats = await rt.workers!.sweeper.sweepOnce();
    expect(stats.countersFixed).toBeGreaterThanOrEqual(1);
    const [row] = await rt.db.sql.query<{ queued_count: number; running_count: number; queued: number; running: number }>(
      `select queued_count, running_count,
         (select count(*)::int from async_requests where tenant_id = $1 and status = 'QUEUED') as queued,
         (select count(*)::int from async_requests where tenant_id = $1 and status = 'RUNNING') as running
       from tenants where id = $1`,
      [client.tenantId],
    );
    expect(row!.queued_count).toBe(row!.queued);
    expect(row!.running_count).toBe(row!.running);
    expect(row!.queued + row!.running).toBe(2);
    expect(rt.logs.text).toContain("tenant counters differed from the table; reconciled");
    expect((await rt.workers!.sweeper.sweepOnce()).countersFixed).toBe(0);
  });

  it("makes a finished request's first callback attempt at once, in the finishing process (no job, no sweeper)", async () => {
    const done = await submit(rt, { action: "echo", input: { data: "direct" }, callbackUrl: receiver.url("/direct") });
    const [delivery] = await receiver.waitFor("/direct", 1);
    expect(JSON.parse(delivery!.body)).toMatchObject({ asyncRequest: { id: done.id, status: "COMPLETED" }, echo: { data: "direct" } });
    await waitForCallback(rt, rt, done.id, "DELIVERED");
    expect(rt.logs.text).not.toContain("sweeper enqueued");
    const queue = new Queue("callbacks", { connection: { url: REDIS_URL }, prefix: rt.config.queuePrefix });
    try {
      expect(await queue.getJob(`${done.id}.1`)).toBeUndefined();
    } finally {
      await queue.close();
    }
  });
});

describe("first attempts when every in-process slot is taken", () => {
  it("wait in process while few wait, then go through the callbacks queue; all are delivered", async () => {
    const slowReceiver = await startReceiver();
    const receiver = await startReceiver(); // another origin: the busy one's limit does not apply
    // One slot, so one first attempt may wait for it in process (CALLBACK_CONCURRENCY of them).
    // The slow receiver answers when the test says so, well within CALLBACK_TIMEOUT.
    const rt = await startTestRuntime({ env: { OUTBOUND_ALLOW: "127.0.0.1/32", CALLBACK_CONCURRENCY: "1", CALLBACK_TIMEOUT: "30s" } });
    let release: () => void = () => {};
    try {
      const held = new Promise<void>((resolve) => (release = resolve));
      slowReceiver.on("/slow", (_req, res) => void held.then(() => res.writeHead(200).end("late")));
      const slow = await submit(rt, { action: "echo", input: {}, callbackUrl: slowReceiver.url("/slow") });
      await slowReceiver.waitFor("/slow", 1); // the one in-process slot is now busy
      const waiting = await submit(rt, { action: "echo", input: {}, callbackUrl: receiver.url("/fast") });
      await waitForStatus(rt, waiting.id, "COMPLETED");
      const queued = await submit(rt, { action: "echo", input: {}, callbackUrl: receiver.url("/fast") });
      await waitForStatus(rt, queued.id, "COMPLETED");
      const queue = new Queue("callbacks", { connection: { url: REDIS_URL }, prefix: rt.config.queuePrefix });
      try {
        // The second found one attempt waiting already: it went to the queue (fetched, and put back
        // for a while while its origin has one waiting here), delivered once a slot frees.
        expect(await (await queue.getJob(`${queued.id}.1`))?.getState()).toMatch(/waiting|active|delayed|completed/);
        expect(receiver.requestsTo("/fast")).toHaveLength(0);
        release();
        await receiver.waitFor("/fast", 2);
        await waitForCallback(rt, rt, waiting.id, "DELIVERED");
        await waitForCallback(rt, rt, queued.id, "DELIVERED");
        expect(await (await queue.getJob(`${queued.id}.1`))?.getState()).toBe("completed");
        // The first waited in process for the slot: no job, no second read of its row.
        expect(await queue.getJob(`${waiting.id}.1`)).toBeUndefined();
        expect(await queue.getJob(`${slow.id}.1`)).toBeUndefined();
      } finally {
        await queue.close();
      }
      await waitForCallback(rt, rt, slow.id, "DELIVERED");
    } finally {
      release();
      await rt.stop();
      await receiver.close();
      await slowReceiver.close();
    }
  });
});

describe("the callback schedule at millisecond scale", { timeout: 60_000 }, () => {
  let redis: Awaited<ReturnType<typeof startPrivateRedis>>;
  let rt: TestRuntime;
  let receiver: Receiver;
  const delays = [50, 100, 150, 100, 50];
  beforeAll(async () => {
    // hz 100: Redis's own timer then wakes a waiting worker within 10 ms of a retry's time (see README).
    redis = await startPrivateRedis({ hz: 100 });
    receiver = await startReceiver();
    rt = await startTestRuntime({
      env: { REDIS_URL: redis.url, OUTBOUND_ALLOW: "127.0.0.1/32", CALLBACK_RETRY_DELAYS: delays.map((d) => `${d}ms`).join(","), CALLBACK_TIMEOUT: "500ms" },
    });
  });
  afterAll(async () => {
    await rt.stop();
    await receiver.close();
    await redis.stop();
  });

  it("waits each delay after the failed attempt, and not much more", async () => {
    receiver.on("/down", answer(503, "down"));
    // The worker, the API and the receiver share this process's event loop: time it was held (by
    // a collection, or by the rest of a busy suite taking the cores) makes any attempt late by
    // as much, whatever the schedule; it is allowed for below, the schedule's own lateness is not.
    const loop = monitorEventLoopDelay({ resolution: 5 });
    loop.enable();
    const { id } = await submit(rt, { action: "echo", input: {}, callbackUrl: receiver.url("/down") });
    const exhausted = await waitForCallback(rt, rt, id, "EXHAUSTED");
    loop.disable();
    expect(exhausted.callback.attempts).toBe(delays.length + 1);
    const deliveries = receiver.requestsTo("/down");
    const gaps = deliveries.slice(1).map((d, n) => d.at - deliveries[n]!.at);
    for (const [n, delay] of delays.entries()) {
      expect(gaps[n]).toBeGreaterThanOrEqual(delay - 2); // 2 ms: timer granularity
      // The attempt, its record, Redis's 10 ms tick, and the longest the loop was held.
      expect(gaps[n]).toBeLessThanOrEqual(delay + 40 + loop.max / 1e6);
    }
    const request = (await (await rt.request(`/api/v1/async/${id}`)).json()) as { asyncRequest: { callback: { nextAttemptAt: string | null } } };
    expect(request.asyncRequest.callback.nextAttemptAt).toBeNull();
    expect(rt.logs.text).not.toContain("Redis hz is low");
  });

  it("warns at start-up when Redis's hz would make retries late", async () => {
    const slow = await startPrivateRedis({ hz: 10 });
    const worker = await startTestRuntime({ roles: { api: false, worker: true }, env: { REDIS_URL: slow.url } });
    try {
      expect(worker.logs.text).toContain("Redis hz is low");
      expect(worker.logs.text).toContain('"lateByUpToMs":100');
    } finally {
      await worker.stop();
      await slow.stop();
    }
  });
});

describe("submit → callback, end to end with group commit", () => {
  it("accepts a burst, runs every request once and delivers every callback once", async () => {
    const receiver = await startReceiver();
    const rt = await startTestRuntime({ env: { OUTBOUND_ALLOW: "127.0.0.1/32", WORKER_CONCURRENCY: "20" } });
    try {
      const ids = await Promise.all(
        Array.from({ length: 60 }, (_, n) =>
          rt.request("/api/v1/async", jsonBody({ action: "echo", input: { data: n }, callbackUrl: receiver.url("/burst") })).then(async (r) => {
            expect(r.status).toBe(202);
            return ((await r.json()) as { asyncRequest: { id: string } }).asyncRequest.id;
          }),
        ),
      );
      const deliveries = await receiver.waitFor("/burst", 60);
      const delivered = deliveries.map((d) => (JSON.parse(d.body) as { asyncRequest: { id: string } }).asyncRequest.id);
      expect(new Set(delivered)).toEqual(new Set(ids));
      for (const id of ids) await waitForCallback(rt, rt, id, "DELIVERED");
      expect(receiver.requestsTo("/burst")).toHaveLength(60);
      const [row] = await rt.db.sql.query<{ runs: number; n: number }>("select max(runs)::int as runs, count(*)::int as n from async_requests");
      expect(row).toEqual({ runs: 1, n: 60 });
    } finally {
      await rt.stop();
      await receiver.close();
    }
  });
});
