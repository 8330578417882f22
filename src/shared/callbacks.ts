import { parseDuration } from "./duration.js";

/** The callback contract: statuses, the retry schedule, and what a delivery job carries. */
export const CALLBACK_STATUSES = ["PENDING", "RETRYING", "DELIVERED", "EXHAUSTED"] as const;
export type CallbackStatus = (typeof CALLBACK_STATUSES)[number];

/** 2, 4, 8, 16, then 30 minutes, up to 10 retries: 11 attempts, the last 3 h 30 min after the first. */
export const DEFAULT_CALLBACK_RETRY_DELAYS = "2m,4m,8m,16m,30m,30m,30m,30m,30m,30m";

export function parseRetryDelays(text: string): number[] {
  const delays = text.split(",").map((part) => parseDuration(part.trim()));
  if (delays.length > 100) throw new Error("at most 100 retries");
  return delays;
}

/** The wait after failed attempt `attempt` (1-based) before the next one; undefined after the last. */
export function retryDelayFor(delays: readonly number[], attempt: number): number | undefined {
  return delays[attempt - 1];
}

/**
 * A `callbacks` job delivers one attempt series. `offset` is how many attempts of the series
 * were made before this job (non-zero when the sweeper re-creates a job Redis lost).
 */
export type DeliverCallbackJob = { requestId: string; series: number; offset: number };

export const callbackJobId = (requestId: string, series: number) => `${requestId}.${series}`;

/** The backoff type name BullMQ hands to the worker's custom strategy. */
export const CALLBACK_BACKOFF = "callback-schedule";

/** `webhook-id`: the same on every attempt of a series, so receivers can de-duplicate. */
export const callbackMessageId = (requestId: string, series: number) => `msg_${requestId.replaceAll("-", "")}_${series}`;
