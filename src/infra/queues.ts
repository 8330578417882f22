import { Queue, type JobsOptions } from "bullmq";
import { createBatcher } from "../core/batcher.js";
import type { RedisConnection } from "./redis.js";
import { CALLBACK_BACKOFF, type CallbackSchedule } from "../core/callback-schedule.js";
import { callbackJobId, type DeliverCallbackJob } from "../shared/callbacks.js";
import { QUEUE_NAMES, type RunActionJob } from "../shared/queues.js";

/**
 * Attempts here cover infrastructure failures (the database unreachable while a result is
 * written); an action's own failure ends the request FAILED at once.
 */
export const RUN_ACTION_JOB_OPTIONS: JobsOptions = {
  attempts: 8,
  backoff: { type: "exponential", delay: 1_000 },
};

const CALLBACK_JOB_OPTIONS: JobsOptions = {
  backoff: { type: CALLBACK_BACKOFF },
};

/**
 * How long Redis keeps finished jobs, set on the workers rather than on every job (a job's
 * options are stored with it: what is not there costs no memory per waiting job). Postgres is
 * the record; these are for a look at recent activity.
 */
export const KEEP_FINISHED_JOBS = {
  removeOnComplete: { age: 3600, count: 1_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
} as const;

/**
 * BullMQ writes every job's events to a Redis stream for QueueEvents listeners, 10,000 per queue
 * by default. Ricochet has no such listener (status changes travel on its own pub/sub), so a
 * short stream is kept: memory stays with the jobs themselves.
 */
const QUEUE_OPTIONS = { streams: { events: { maxLen: 100 } } };

/**
 * One job per attempt series; its attempts are the series' attempts, spaced by the worker's
 * custom backoff strategy (the callback schedule).
 */
export function createQueues(connection: RedisConnection, prefix: string, schedule: CallbackSchedule) {
  const jobs = new Queue<RunActionJob>(QUEUE_NAMES.jobs, { connection, prefix, ...QUEUE_OPTIONS });
  const callbacks = new Queue<DeliverCallbackJob>(QUEUE_NAMES.callbacks, { connection, prefix, ...QUEUE_OPTIONS });
  const runJob = ({ id, action }: { id: string; action: string }) => ({ name: "run" as const, data: { requestId: id, action }, opts: { ...RUN_ACTION_JOB_OPTIONS, jobId: id } });
  const callbackJob = (requestId: string, series: number, resume: { offset: number; delayMs: number }) => ({
    name: "deliver" as const,
    data: { requestId, series, offset: resume.offset },
    opts: { ...CALLBACK_JOB_OPTIONS, jobId: callbackJobId(requestId, series), attempts: schedule.attemptsFrom(resume.offset), delay: resume.delayMs },
  });
  // A batch of one goes as a plain command: BullMQ's addBulk builds an ioredis Pipeline, and
  // ioredis copies every script BullMQ defines onto each one (tens of µs; most batches are of one
  // below saturation). The connection is not auto-pipelined for the same reason (src/infra/redis.ts).
  const addRuns = async (batch: ReturnType<typeof runJob>[]) =>
    batch.length === 1 ? [await jobs.add(batch[0]!.name, batch[0]!.data, batch[0]!.opts)] : jobs.addBulk(batch);
  const addCallbacks = async (batch: ReturnType<typeof callbackJob>[]) =>
    batch.length === 1 ? [await callbacks.add(batch[0]!.name, batch[0]!.data, batch[0]!.opts)] : callbacks.addBulk(batch);
  // Callback jobs enqueued in the same turn of the event loop (a batch of finishes whose first
  // attempts this process cannot make, retries scheduled together) travel as one pipeline.
  const callbackEnqueues = createBatcher<ReturnType<typeof callbackJob>, void>({
    maxBatch: 500,
    maxConcurrentFlushes: 4,
    flush: async (batch) => (await addCallbacks(batch)).map(() => undefined),
  });
  return {
    jobs,
    callbacks,
    /** Idempotent: the job id is the request id, so a second add of the same request is a no-op. */
    enqueueRun: (requestId: string, action: string) => addRuns([runJob({ id: requestId, action })]).then(() => undefined),
    /** A batch of requests in one round trip (group commit's second half). */
    enqueueRuns: (requests: { id: string; action: string }[]) => addRuns(requests.map(runJob)).then(() => undefined),
    /** Idempotent per series: the job id is derived from the request id and the series. */
    enqueueCallback: (requestId: string, series: number, resume: { offset: number; delayMs: number } = { offset: 0, delayMs: 0 }) =>
      callbackEnqueues.add(callbackJob(requestId, series, resume)),
    /** New series in one round trip (a bulk redelivery). */
    enqueueCallbacks: (series: { id: string; series: number }[]) =>
      addCallbacks(series.map(({ id, series: n }) => callbackJob(id, n, { offset: 0, delayMs: 0 }))).then(() => undefined),
    close: () =>
      callbackEnqueues
        .drain()
        .then(() => Promise.all([jobs.close(), callbacks.close()]))
        .then(() => undefined),
  };
}

export type Queues = ReturnType<typeof createQueues>;
