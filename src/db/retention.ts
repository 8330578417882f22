import type { Sql } from "./client.js";

/**
 * The retention rule's statements: finished requests older than the retention age go, with their
 * callback attempts, in batches (one statement each: the attempts and the requests of a batch
 * together); a request whose callback is still being delivered stays until its series ends.
 * Idempotency keys go once their window is over (a replay past it is a new request anyway).
 */
export function retentionStatements(sql: Sql) {
  return {
    /** Deletes up to `limit` requests finished before `before`; answers how many. */
    async purgeRequests(before: Date, limit: number): Promise<number> {
      const rows = await sql.query<{ n: number }>(
        `WITH doomed AS (
           SELECT id FROM async_requests
           WHERE finished_at < $1::timestamptz
             AND (status IN ('COMPLETED', 'FAILED', 'CANCELLED')) IS TRUE
             AND (callback_status IS NULL OR callback_status IN ('DELIVERED', 'EXHAUSTED')) IS TRUE
           ORDER BY finished_at
           LIMIT $2
           FOR UPDATE SKIP LOCKED
         ),
         attempts AS (DELETE FROM callback_attempts WHERE request_id = ANY (ARRAY(SELECT id FROM doomed)))
         , requests AS (DELETE FROM async_requests WHERE id = ANY (ARRAY(SELECT id FROM doomed)) RETURNING 1)
         SELECT count(*)::int AS n FROM requests`,
        [before.toISOString(), limit],
      );
      return rows[0]?.n ?? 0;
    },
    async purgeIdempotencyKeys(before: Date): Promise<number> {
      const rows = await sql.query<{ n: number }>(
        "WITH gone AS (DELETE FROM idempotency_keys WHERE created_at < $1::timestamptz RETURNING 1) SELECT count(*)::int AS n FROM gone",
        [before.toISOString()],
      );
      return rows[0]?.n ?? 0;
    },
  };
}

export type RetentionStatements = ReturnType<typeof retentionStatements>;
