import { randomUUID } from "node:crypto";
import { Queue, UnrecoverableError, Worker } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requestsRepository } from "../src/db/requests.js";
import { deleteKeys, REDIS_URL } from "./helpers/redis.js";
import { startTestRuntime, submit, waitForStatus, type TestRuntime } from "./helpers/runtime.js";

describe("the sweeper: Postgres is the source of truth", () => {
  let rt: TestRuntime;
  let queue: Queue;
  const insertWithoutEnqueue = (status: "QUEUED" | "RUNNING", input: unknown = { data: "swept" }) => {
    const now = new Date();
    return requestsRepository(rt.db.db).insert({
      id: randomUUID(),
      tenantId: "default",
      createdBy: "tester",
      action: "echo",
      status,
      input,
      createdAt: now,
      updatedAt: now,
    });
  };

  beforeAll(async () => {
    rt = await startTestRuntime({ env: { SWEEPER_INTERVAL: "200ms", SWEEPER_GRACE: "0ms" } });
    queue = new Queue("jobs", { connection: { url: REDIS_URL }, prefix: rt.config.queuePrefix });
  });
  afterAll(async () => {
    await queue.close();
    await rt.stop();
  });

  it("runs a row that was written but never enqueued (an API crash between the two)", async () => {
    const row = await insertWithoutEnqueue("QUEUED");
    expect(await queue.getJob(row.id)).toBeUndefined();
    await waitForStatus(rt, row.id, "COMPLETED");
    const result = await (await rt.request(`/api/v1/async/${row.id}/result`)).json();
    expect(result).toEqual({ echo: { data: "swept" } });
    expect(rt.logs.text).toContain("sweeper enqueued a request with no live job");
  });

  it("runs again a RUNNING row whose job Redis lost", async () => {
    const row = await insertWithoutEnqueue("RUNNING");
    await waitForStatus(rt, row.id, "COMPLETED");
  });

});

describe("the sweeper and jobs BullMQ gave up on", () => {
  it("ends FAILED a request whose job failed every attempt", async () => {
    const api = await startTestRuntime({ roles: { api: true, worker: false } });
    const queue = new Queue("jobs", { connection: { url: REDIS_URL }, prefix: api.config.queuePrefix });
    // A worker that fails the job for good, as after a long database outage.
    const failing = new Worker(
      "jobs",
      async () => {
        throw new UnrecoverableError("database unreachable");
      },
      { connection: { url: REDIS_URL }, prefix: api.config.queuePrefix },
    );
    let sweeperRuntime: TestRuntime | undefined;
    try {
      const failedEvent = new Promise<void>((resolve) => failing.once("failed", () => resolve()));
      const { id } = await submit(api, { action: "echo", input: {} });
      await failedEvent;
      await failing.close();
      expect(await (await queue.getJob(id))!.getState()).toBe("failed");

      sweeperRuntime = await startTestRuntime({
        db: api.db,
        env: { ...api.env, SWEEPER_INTERVAL: "200ms", SWEEPER_GRACE: "0ms" },
      });
      const failed = await waitForStatus(api, id, "FAILED");
      expect(failed.asyncResponse).toMatchObject({ errorCode: "WORKER_ERROR", errorDetails: [{ reason: "database unreachable" }] });
    } finally {
      await failing.close();
      await queue.close();
      await sweeperRuntime?.stop();
      await api.stop();
    }
  });
});

/** The `sweep` debug lines a runtime logged: when each sweep started and finished. */
function sweeps(rt: TestRuntime): { startedAt: number; finishedAt: number }[] {
  return rt.logs.lines.map((line) => JSON.parse(line) as { msg: string; startedAt: number; finishedAt: number }).filter((entry) => entry.msg === "sweep");
}

describe("one sweeper at a time", { timeout: 60_000 }, () => {
  it("holds its lock for as long as a sweep takes, so a slow sweep is never joined by another worker's", async () => {
    const env = { SWEEPER_INTERVAL: "100ms", SWEEPER_GRACE: "0ms", LOG_LEVEL: "debug", QUEUE_PREFIX: `{sweep-${randomUUID().slice(0, 8)}}` };
    const first = await startTestRuntime({ roles: { api: false, worker: true }, env });
    const second = await startTestRuntime({ roles: { api: false, worker: true }, env, db: first.db });
    try {
      // Make sweeps slow: hold the requests table locked for longer than a lock that is not
      // renewed would live (the old 1 s), while both workers keep trying every 100 ms.
      // Sweeps ran before the lock as well (many on a busy machine, while the second runtime
      // starts): only those that end after it is taken tell whether one was held up.
      const lockedAt = Date.now();
      await first.db.sql.transaction(async (tx) => {
        await tx.query("LOCK TABLE async_requests IN ACCESS EXCLUSIVE MODE");
        const blocked = async () =>
          Number((await first.db.sql.query<{ n: number }>("select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()"))[0]!.n);
        const deadline = Date.now() + 10_000;
        while ((await blocked()) === 0 && Date.now() < deadline) await new Promise((done) => setTimeout(done, 20));
        expect(await blocked()).toBeGreaterThan(0);
        await new Promise((done) => setTimeout(done, 2_500)); // the slow sweep: longer than 1 s
      });
      const until = Date.now() + 10_000;
      const since = () => [...sweeps(first), ...sweeps(second)].filter((s) => s.finishedAt > lockedAt);
      // The held-up sweep and two after it.
      while (since().length < 3 && Date.now() < until) await new Promise((done) => setTimeout(done, 20));
      expect(since().length).toBeGreaterThanOrEqual(3);
      expect(Math.max(...since().map((s) => s.finishedAt - s.startedAt)), "one sweep was held up by the lock").toBeGreaterThan(2_000);
      const all = [...sweeps(first), ...sweeps(second)].sort((a, b) => a.startedAt - b.startedAt);
      for (let i = 1; i < all.length; i++) expect(all[i]!.startedAt, `sweep ${i} started before sweep ${i - 1} finished`).toBeGreaterThanOrEqual(all[i - 1]!.finishedAt);
    } finally {
      await second.stop();
      await first.stop();
      // Named by this test, so the runtimes leave its keys to it.
      await deleteKeys(env.QUEUE_PREFIX);
    }
  });
});
