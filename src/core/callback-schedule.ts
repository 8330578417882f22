import type { MinimalJob } from "bullmq";
import type { DeliverCallbackJob } from "../shared/callbacks.js";
import { parseDuration } from "../shared/duration.js";

/**
 * The callback retry schedule, in one place: the first attempt at once, then a wait per retry.
 * The queue (how many attempts a series job has), the worker (BullMQ's backoff strategy), the
 * delivery (RETRYING or EXHAUSTED, and nextAttemptAt) and the sweeper (resuming a series) all
 * ask this module.
 */

/** 2, 4, 8, 16, then 30 minutes, up to 10 retries: 11 attempts, the last 3 h 30 min after the first. */
export const DEFAULT_CALLBACK_RETRY_DELAYS = "2m,4m,8m,16m,30m,30m,30m,30m,30m,30m";

/** The backoff type name BullMQ hands to the worker's custom strategy. */
export const CALLBACK_BACKOFF = "callback-schedule";

export function parseRetryDelays(text: string): number[] {
  const delays = text.split(",").map((part) => parseDuration(part.trim()));
  if (delays.length > 100) throw new Error("at most 100 retries");
  return delays;
}

/** The wait after failed attempt `attempt` (1-based) before the next one; undefined after the last. */
export function retryDelayFor(delays: readonly number[], attempt: number): number | undefined {
  return delays[attempt - 1];
}

/** A failed attempt that names when the next one is due (epoch ms); the backoff strategy honours it. */
export class RetryAt extends Error {
  override name = "RetryAt";
  constructor(
    message: string,
    readonly at: number,
  ) {
    super(message);
  }
}

export type CallbackSchedule = ReturnType<typeof createCallbackSchedule>;

export function createCallbackSchedule(delays: readonly number[]) {
  const totalAttempts = delays.length + 1;
  return {
    delays,
    totalAttempts,
    /** The wait after failed attempt `attempt` (1-based); undefined after the last. */
    delayAfter: (attempt: number) => retryDelayFor(delays, attempt),
    /** Attempts left for a series job that resumes after `offset` attempts were made. */
    attemptsFrom: (offset: number) => Math.max(1, totalAttempts - offset),
    /**
     * BullMQ's custom backoff strategy: after failed attempt n of a series, wait delays[n - 1],
     * counted from the end of the attempt (the time spent recording it is not added on top).
     */
    backoffStrategy(attemptsMade: number, type?: string, error?: Error, job?: MinimalJob): number {
      if (type !== CALLBACK_BACKOFF) return 0;
      if (error instanceof RetryAt) return Math.max(0, error.at - Date.now());
      const offset = (job?.data as DeliverCallbackJob | undefined)?.offset ?? 0;
      return delays[offset + attemptsMade - 1] ?? -1;
    },
  };
}
