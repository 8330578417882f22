/** The request state machine, shared by the API (cancel) and the worker (run). */
export const ASYNC_REQUEST_STATUSES = ["QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"] as const;
export type AsyncRequestStatus = (typeof ASYNC_REQUEST_STATUSES)[number];

export const FINAL_STATUSES: readonly AsyncRequestStatus[] = ["COMPLETED", "FAILED", "CANCELLED"];

/**
 * Which statuses each status may be entered from. RUNNING → RUNNING is a job that BullMQ
 * recovered after its worker crashed or stalled, and runs again.
 */
const ENTERED_FROM: Record<AsyncRequestStatus, readonly AsyncRequestStatus[]> = {
  QUEUED: [],
  RUNNING: ["QUEUED", "RUNNING"],
  COMPLETED: ["RUNNING"],
  FAILED: ["QUEUED", "RUNNING"],
  CANCELLED: ["QUEUED", "RUNNING"],
};

export function allowedPredecessors(to: AsyncRequestStatus): readonly AsyncRequestStatus[] {
  return ENTERED_FROM[to];
}

export function isFinal(status: AsyncRequestStatus): boolean {
  return FINAL_STATUSES.includes(status);
}
