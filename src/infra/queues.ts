import { Queue, type JobsOptions } from "bullmq";
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
  return {
    jobs,
    callbacks,
    /** Idempotent: the job id is the request id, so a second add of the same request is a no-op. */
    enqueueRun: (requestId: string, action: string) => jobs.add("run", { requestId, action }, { ...RUN_ACTION_JOB_OPTIONS, jobId: requestId }),
    /** A batch of requests in one round trip (group commit's second half). */
    enqueueRuns: (requests: { id: string; action: string }[]) =>
      jobs.addBulk(requests.map(({ id, action }) => ({ name: "run", data: { requestId: id, action }, opts: { ...RUN_ACTION_JOB_OPTIONS, jobId: id } }))),
    /** Idempotent per series: the job id is derived from the request id and the series. */
    enqueueCallback: (requestId: string, series: number, resume: { offset: number; delayMs: number } = { offset: 0, delayMs: 0 }) =>
      callbacks.add(
        "deliver",
        { requestId, series, offset: resume.offset },
        { ...CALLBACK_JOB_OPTIONS, jobId: callbackJobId(requestId, series), attempts: schedule.attemptsFrom(resume.offset), delay: resume.delayMs },
      ),
    /** New series in one round trip (a bulk redelivery). */
    enqueueCallbacks: (series: { id: string; series: number }[]) =>
      callbacks.addBulk(
        series.map(({ id, series: n }) => ({
          name: "deliver",
          data: { requestId: id, series: n, offset: 0 },
          opts: { ...CALLBACK_JOB_OPTIONS, jobId: callbackJobId(id, n), attempts: schedule.attemptsFrom(0) },
        })),
      ),
    close: () => Promise.all([jobs.close(), callbacks.close()]).then(() => undefined),
  };
}

export type Queues = ReturnType<typeof createQueues>;
