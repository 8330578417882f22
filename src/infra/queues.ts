import { Queue, type JobsOptions } from "bullmq";
import type { Redis } from "ioredis";
import { QUEUE_NAMES, type RunActionJob } from "../shared/queues.js";

/**
 * Attempts here cover infrastructure failures (the database unreachable while a result is
 * written); an action's own failure ends the request FAILED at once.
 */
export const RUN_ACTION_JOB_OPTIONS: JobsOptions = {
  attempts: 8,
  backoff: { type: "exponential", delay: 1_000 },
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

export function createQueues(connection: Redis, prefix: string) {
  const jobs = new Queue<RunActionJob>(QUEUE_NAMES.jobs, { connection, prefix });
  return {
    jobs,
    /** Idempotent: the job id is the request id, so a second add of the same request is a no-op. */
    enqueueRun: (requestId: string) => jobs.add("run", { requestId }, { ...RUN_ACTION_JOB_OPTIONS, jobId: requestId }),
    close: () => jobs.close(),
  };
}

export type Queues = ReturnType<typeof createQueues>;
