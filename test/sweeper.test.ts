import { randomUUID } from "node:crypto";
import { Queue, UnrecoverableError, Worker } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requestsRepository } from "../src/db/requests.js";
import { REDIS_URL } from "./helpers/redis.js";
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
