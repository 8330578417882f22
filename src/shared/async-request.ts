import type { RequestWithoutInput } from "../db/schema.js";
import { isFinal } from "./status.js";

/** The public AsyncRequest object (DESIGN.md), as GET /api/v1/async/{id} and callbacks show it. */
export function toAsyncRequest(row: RequestWithoutInput) {
  return {
    id: row.id,
    action: row.action,
    status: row.status,
    createdBy: { clientId: row.createdBy },
    dateCreated: row.createdAt.toISOString(),
    dateStarted: row.startedAt?.toISOString() ?? null,
    dateFinished: row.finishedAt?.toISOString() ?? null,
    progress: row.progress,
    // Runs of the action so far: retries under its retry policy and re-runs after a crash count.
    attempts: row.runs,
    metadata: row.metadata ?? null,
    callbackUrl: row.callbackUrl,
    // With a callbackUrl the callback is PENDING until the request finishes and delivery starts.
    callback: row.callbackUrl
      ? {
          status: row.callbackStatus ?? "PENDING",
          attempts: row.callbackAttempts,
          lastStatusCode: row.callbackLastStatusCode,
          lastError: row.callbackLastError,
          lastAttemptAt: row.callbackLastAttemptAt?.toISOString() ?? null,
          nextAttemptAt: row.callbackNextAttemptAt?.toISOString() ?? null,
        }
      : null,
    asyncResponse: isFinal(row.status)
      ? {
          dateCreated: (row.finishedAt ?? row.updatedAt).toISOString(),
          errorCode: row.errorCode,
          errorDesc: row.errorDesc,
          errorDetails: row.errorDetails,
          warnings: row.warnings,
        }
      : null,
  };
}

export type AsyncRequest = ReturnType<typeof toAsyncRequest>;
