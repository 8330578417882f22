import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Redis } from "ioredis";
import { createCallbackSchedule } from "../src/core/callback-schedule.js";
import { createQueues, RUN_ACTION_JOB_OPTIONS, type Queues } from "../src/infra/queues.js";
import { connectRedis, createRedis } from "../src/infra/redis.js";
import { callbackJobId } from "../src/shared/callbacks.js";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.js";

/**
 * The enqueue paths against a real Redis: what lands in the queues, and how many ioredis
 * pipelines it takes (each copies every BullMQ script, so a single job must not build one).
 */
describe("queues", () => {
  const prefix = uniquePrefix();
  const schedule = createCallbackSchedule([20, 40, 80]);
  let connection: Redis;
  let queues: Queues;
  let pipelines = 0;

  beforeAll(async () => {
    connection = createRedis({ mode: "single", url: REDIS_URL }, "client") as Redis;
    await connectRedis(connection);
    // Counts every pipeline built on the connection: BullMQ's addBulk and ioredis's auto-pipelining both go through here.
    const pipeline = connection.pipeline.bind(connection);
    connection.pipeline = ((...args: Parameters<typeof pipeline>) => {
      pipelines++;
      return pipeline(...args);
    }) as typeof connection.pipeline;
    queues = createQueues(connection, prefix, schedule);
  });

  afterAll(async () => {
    await queues.close();
    connection.disconnect();
    await deleteKeys(prefix);
  });

  it("enqueues a single run and a single callback without building a pipeline", async () => {
    pipelines = 0;
    await queues.enqueueRuns([{ id: "00000000-0000-4000-8000-000000000001", action: "echo" }]);
    await queues.enqueueCallback("00000000-0000-4000-8000-000000000001", 1);
    expect(pipelines).toBe(0);

    const run = await queues.jobs.getJob("00000000-0000-4000-8000-000000000001");
    expect(run?.data).toEqual({ requestId: "00000000-0000-4000-8000-000000000001", action: "echo" });
    expect(run?.opts.attempts).toBe(RUN_ACTION_JOB_OPTIONS.attempts);
    const callback = await queues.callbacks.getJob(callbackJobId("00000000-0000-4000-8000-000000000001", 1));
    expect(callback?.data).toEqual({ requestId: "00000000-0000-4000-8000-000000000001", series: 1, offset: 0 });
    expect(callback?.opts.attempts).toBe(4);
  });

  it("enqueues a batch of runs with one pipeline", async () => {
    pipelines = 0;
    const ids = ["00000000-0000-4000-8000-000000000011", "00000000-0000-4000-8000-000000000012", "00000000-0000-4000-8000-000000000013"];
    await queues.enqueueRuns(ids.map((id) => ({ id, action: "echo" })));
    expect(pipelines).toBe(1);
    const jobs = await Promise.all(ids.map((id) => queues.jobs.getJob(id)));
    expect(jobs.map((job) => job?.data.requestId)).toEqual(ids);
  });

  it("sends the callback jobs enqueued in one turn together, each with its own attempts and delay", async () => {
    pipelines = 0;
    const ids = ["00000000-0000-4000-8000-000000000021", "00000000-0000-4000-8000-000000000022", "00000000-0000-4000-8000-000000000023"];
    await Promise.all([
      queues.enqueueCallback(ids[0]!, 1),
      queues.enqueueCallback(ids[1]!, 2, { offset: 1, delayMs: 60_000 }),
      queues.enqueueCallback(ids[2]!, 1, { offset: 3, delayMs: 120_000 }),
      // The same series twice is one job (its id is derived from the request and the series).
      queues.enqueueCallback(ids[0]!, 1),
    ]);
    expect(pipelines).toBe(1);

    const [first, second, third] = await Promise.all([
      queues.callbacks.getJob(callbackJobId(ids[0]!, 1)),
      queues.callbacks.getJob(callbackJobId(ids[1]!, 2)),
      queues.callbacks.getJob(callbackJobId(ids[2]!, 1)),
    ]);
    expect(first?.opts).toMatchObject({ attempts: 4 });
    expect(await first?.getState()).toBe("waiting");
    expect(second?.data).toEqual({ requestId: ids[1], series: 2, offset: 1 });
    expect(second?.opts).toMatchObject({ attempts: 3, delay: 60_000 });
    expect(await second?.getState()).toBe("delayed");
    expect(third?.opts).toMatchObject({ attempts: 1, delay: 120_000 });
    expect(await queues.callbacks.getJobCountByTypes("waiting", "delayed")).toBe(4); // 3 here + the one of the first test
  });
});
