/** The callback contract: statuses and what a delivery job carries (the schedule: src/core/callback-schedule.ts). */
export const CALLBACK_STATUSES = ["PENDING", "RETRYING", "DELIVERED", "EXHAUSTED"] as const;
export type CallbackStatus = (typeof CALLBACK_STATUSES)[number];

/**
 * A `callbacks` job delivers one attempt series. `offset` is how many attempts of the series
 * were made before this job (non-zero when the sweeper re-creates a job Redis lost).
 */
export type DeliverCallbackJob = { requestId: string; series: number; offset: number };

export const callbackJobId = (requestId: string, series: number) => `${requestId}.${series}`;

/** `webhook-id`: the same on every attempt of a series, so receivers can de-duplicate. */
export const callbackMessageId = (requestId: string, series: number) => `msg_${requestId.replaceAll("-", "")}_${series}`;
