import { and, asc, eq, gt, gte, inArray, isNotNull, lt, or, sql } from "drizzle-orm";
import type { CallbackStatus } from "../shared/callbacks.js";
import { FINAL_STATUSES } from "../shared/status.js";
import type { Db } from "./client.js";
import { asyncRequests, callbackAttempts, type AsyncRequestRow, type CallbackAttemptRow } from "./schema.js";

export type AttemptOutcome = {
  status: CallbackStatus;
  nextAttemptAt: Date | null;
};

/** What a new attempt series (a redelivery) writes: the next series number, nothing tried yet. */
const newSeries = (at: Date) => ({
  callbackStatus: "PENDING" as const,
  callbackSeries: sql`${asyncRequests.callbackSeries} + 1`,
  callbackAttempts: 0,
  callbackLastStatusCode: null,
  callbackLastError: null,
  callbackLastAttemptAt: null,
  callbackNextAttemptAt: null,
  callbackUpdatedAt: at,
});

/** Callback series and attempts: where every delivery attempt is recorded. */
export function callbacksRepository(db: Db) {
  return {
    /**
     * Starts a new attempt series (a redelivery) unless one is in flight. Undefined when the
     * request is unknown, not finished, has no callback URL, or its callback is PENDING/RETRYING.
     */
    async startSeries(tenantId: string, id: string, at: Date): Promise<AsyncRequestRow | undefined> {
      const [row] = await db
        .update(asyncRequests)
        .set(newSeries(at))
        .where(
          and(
            eq(asyncRequests.tenantId, tenantId),
            eq(asyncRequests.id, id),
            isNotNull(asyncRequests.callbackUrl),
            inArray(asyncRequests.status, [...FINAL_STATUSES]),
            or(sql`${asyncRequests.callbackStatus} is null`, inArray(asyncRequests.callbackStatus, ["DELIVERED", "EXHAUSTED"])),
          ),
        )
        .returning();
      return row;
    },

    /** Records one attempt and moves the series on, if it is still the current series. */
    async recordAttempt(attempt: typeof callbackAttempts.$inferInsert, outcome: AttemptOutcome): Promise<boolean> {
      return db.transaction(async (tx) => {
        const updated = await tx
          .update(asyncRequests)
          .set({
            callbackStatus: outcome.status,
            callbackAttempts: sql`${asyncRequests.callbackAttempts} + 1`,
            callbackLastStatusCode: attempt.statusCode ?? null,
            callbackLastError: attempt.delivered ? null : `${attempt.errorClass}: ${attempt.errorMessage}`,
            callbackLastAttemptAt: attempt.startedAt,
            callbackNextAttemptAt: outcome.nextAttemptAt,
            callbackUpdatedAt: attempt.startedAt,
          })
          .where(and(eq(asyncRequests.id, attempt.requestId), eq(asyncRequests.callbackSeries, attempt.series)))
          .returning({ id: asyncRequests.id });
        if (updated.length === 0) return false;
        await tx.insert(callbackAttempts).values(attempt);
        return true;
      });
    },

    listAttempts: (requestId: string): Promise<CallbackAttemptRow[]> =>
      db.select().from(callbackAttempts).where(eq(callbackAttempts.requestId, requestId)).orderBy(asc(callbackAttempts.series), asc(callbackAttempts.attempt)),

    /** Series in flight not touched since `before`: the sweeper checks that each has a job. */
    findInFlightSince: (before: Date, afterId: string | undefined, limit: number) =>
      db
        .select({
          id: asyncRequests.id,
          series: asyncRequests.callbackSeries,
          attempts: asyncRequests.callbackAttempts,
          nextAttemptAt: asyncRequests.callbackNextAttemptAt,
        })
        .from(asyncRequests)
        .where(
          and(
            inArray(asyncRequests.callbackStatus, ["PENDING", "RETRYING"]),
            lt(asyncRequests.callbackUpdatedAt, before),
            afterId ? gt(asyncRequests.id, afterId) : undefined,
          ),
        )
        .orderBy(asc(asyncRequests.id))
        .limit(limit),

    /**
     * Starts a new series for up to `limit` of a tenant's EXHAUSTED callbacks last tried at or
     * after `since`, in one statement (rows being redelivered by someone else are skipped). Pages
     * walk the table in id order from `afterId`, so a redelivery of n series reads each row once,
     * not once per page.
     */
    async startSeriesForExhausted(tenantId: string, since: Date, at: Date, limit: number, afterId?: string): Promise<{ id: string; series: number }[]> {
      const picked = db
        .select({ id: asyncRequests.id })
        .from(asyncRequests)
        .where(
          and(
            eq(asyncRequests.tenantId, tenantId),
            eq(asyncRequests.callbackStatus, "EXHAUSTED"),
            gte(asyncRequests.callbackLastAttemptAt, since),
            afterId ? gt(asyncRequests.id, afterId) : undefined,
          ),
        )
        .orderBy(asc(asyncRequests.id))
        .limit(limit)
        .for("update", { skipLocked: true });
      return db
        .update(asyncRequests)
        .set(newSeries(at))
        .where(inArray(asyncRequests.id, picked))
        .returning({ id: asyncRequests.id, series: asyncRequests.callbackSeries });
    },
  };
}

export type CallbacksRepository = ReturnType<typeof callbacksRepository>;
