/** The queue contract between the API and the workers: names, payloads, pub/sub channels. */
export const QUEUE_NAMES = { jobs: "jobs", callbacks: "callbacks" } as const;

/** A `jobs` job carries only the request id: Postgres holds the input, so a job is never stale. */
/** The states of a queue's jobs operators see (admin API, CLI, dashboard), in the order shown. */
export const QUEUE_STATES = ["waiting", "active", "delayed", "prioritized", "failed", "completed", "paused"] as const;
export type QueueState = (typeof QUEUE_STATES)[number];
/** The states a queue's depth is measured in (metrics): completed jobs are trimmed, so their count says nothing. */
export const QUEUE_DEPTH_STATES = QUEUE_STATES.filter((state): state is Exclude<QueueState, "completed"> => state !== "completed");

/** `action` lets a worker apply the action's concurrency before it claims (absent in older jobs). */
export type RunActionJob = { requestId: string; action?: string };

/** Channel on which every status change is published, so any API process can wake its waiters. */
export function statusChannel(prefix: string): string {
  return `${prefix}:status-changes`;
}

/** Channel on which cancellations are broadcast to the worker that runs the request. */
export function cancelChannel(prefix: string): string {
  return `${prefix}:cancellations`;
}

/** Channel on which revoked token digests are broadcast, so API processes drop cached look-ups. */
export function tokenRevocationChannel(prefix: string): string {
  return `${prefix}:token-revocations`;
}

/** Channel on which a client id is broadcast when its webhook signing secrets change. */
export function secretRotationChannel(prefix: string): string {
  return `${prefix}:secret-rotations`;
}

export type StatusChangeMessage = { id: string; status: string };
